"""The runner end to end: Ray on 2 workers into a temporary SQLite store; serial == parallel."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from experiments.runner import (
    ExperimentResult,
    best_trial,
    expand_trials,
    run_experiment,
    run_trial,
)
from tests.experiments.conftest import tiny_config


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture(scope="module")
def parallel(store: Path, ray_local: None) -> ExperimentResult:
    """The tiny experiment on 2 Ray workers, tracked in a temporary SQLite store."""
    return run_experiment(tiny_config(store), workers=2)


def _client(store: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{store / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_trials_expand_scenario_policy_grid_seed(tmp_path: Path) -> None:
    specs = expand_trials(tiny_config(tmp_path))
    assert len(specs) == 4 * 2
    assert [s.trial_id for s in specs[:3]] == [
        "retail/oracle/seed=0",
        "retail/oracle/seed=1",
        "retail/random/seed=0",
    ]
    assert specs[-1].make_name == "epsilon_greedy:epsilon=0.3" and specs[-1].seed == 1


def test_ray_run_logs_runs_params_metrics_and_artifacts(parallel: ExperimentResult, store: Path) -> None:
    c = _client(store)
    exp = c.get_experiment_by_name("tiny")
    assert exp is not None and parallel.experiment_id == exp.experiment_id
    parent = c.get_run(parallel.parent_run_id)
    assert parent.data.params["config.name"] == "tiny"
    assert parent.data.params["config.policies.2.grid.epsilon.1"] == "0.3"
    assert parent.data.params["workers"] == "2"
    assert "version.mlflow" in parent.data.params and "git_commit" in parent.data.params
    assert {a.path for a in c.list_artifacts(parent.info.run_id)} >= {
        "config.yaml",
        "results.json",
        "comparison.png",
    }
    children = c.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 8 == len(parallel.results)
    by_trial = {r.data.tags["trial_id"]: r for r in children}
    assert set(by_trial) == {r.trial_id for r in parallel.results}
    for res in parallel.results:
        run = by_trial[res.trial_id]
        assert run.data.tags["scenario"] == "retail" and run.data.tags["policy"] == res.spec.label
        assert run.data.params["seed"] == str(res.spec.seed)
        assert run.data.params["evaluation.n_customers"] == "800"
        m = run.data.metrics
        for key in (
            "goal_reached",
            "effective_cost_to_goal",
            "iterations",
            "spend",
            "regret",
            "goal_progress",
        ):
            assert key in m, key
        assert m["goal_reached"] == res.metrics["goal_reached"]
        history = c.get_metric_history(run.info.run_id, "spend")
        assert [h.step for h in sorted(history, key=lambda h: h.step)] == list(range(len(res.curve)))
        assert [h.value for h in sorted(history, key=lambda h: h.step)] == [p["spend"] for p in res.curve]
        assert len(c.get_metric_history(run.info.run_id, "regret")) == len(res.curve)
        top = {a.path for a in c.list_artifacts(run.info.run_id)}
        assert {"curves.png", "decisions_sample.csv", "campaigns.json", "policy"} <= top
        assert [a.path for a in c.list_artifacts(run.info.run_id, "policy")] == ["policy/policy.json"]
    oracle = by_trial["retail/oracle/seed=0"].data.metrics
    assert oracle["goal_reached"] == 1.0 and oracle["ratio_to_oracle"] == 1.0
    assert oracle["final_regret"] == 0.0


def test_serial_and_parallel_runs_give_identical_metrics(parallel: ExperimentResult, tmp_path: Path) -> None:
    serial = run_experiment(tiny_config(tmp_path), workers=1, track=False)
    assert [r.trial_id for r in serial.results] == [r.trial_id for r in parallel.results]
    for a, b in zip(serial.results, parallel.results, strict=True):
        assert a.deterministic_metrics() == b.deterministic_metrics(), a.trial_id
        assert a.curve == b.curve and a.campaigns == b.campaigns
        assert a.policy_archive == b.policy_archive and a.decision_sample == b.decision_sample
    # ...and the comparison can fail: seeds and hyperparameters change the outcome.
    by_id = {r.trial_id: r for r in serial.results}
    r0, r1 = by_id["retail/random/seed=0"], by_id["retail/random/seed=1"]
    assert r0.curve != r1.curve
    e05 = by_id["retail/epsilon_greedy:epsilon=0.05/seed=0"]
    e30 = by_id["retail/epsilon_greedy:epsilon=0.3/seed=0"]
    assert e05.decision_sample != e30.decision_sample


def test_the_trial_is_a_pure_function_of_its_spec(tmp_path: Path) -> None:
    spec = expand_trials(tiny_config(tmp_path))[4]  # epsilon_greedy, warm-started
    a, b = run_trial(spec), run_trial(spec)
    assert a.deterministic_metrics() == b.deterministic_metrics() and a.curve == b.curve
    with zipfile.ZipFile(io.BytesIO(a.policy_archive)) as zf:
        saved = json.loads(zf.read("policy.json"))
    assert saved["policy"] == "epsilon_greedy" and saved["state"]  # warm-started: learned state


def test_best_trial_excludes_oracles_and_ranks_by_the_metric(parallel: ExperimentResult) -> None:
    best = best_trial(parallel.results, "cost_to_goal", "min")
    assert best is not None and best.spec.family != "oracle"
    fams = {r.spec.label for r in parallel.results}
    assert best.spec.label in fams
    worst = best_trial(parallel.results, "cost_to_goal", "max")
    assert worst is not None and worst.metrics["effective_cost_to_goal"] is not None
    assert best.metrics["effective_cost_to_goal"] <= worst.metrics["effective_cost_to_goal"]  # type: ignore[operator]


def test_tune_samples_a_search_space_with_a_scheduler(ray_local: None, tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        policies=[
            {"name": "epsilon_greedy", "grid": {"epsilon": {"type": "uniform", "low": 0.01, "high": 0.5}}}
        ],
        seeds=[0, 1],
        tune={"num_samples": 2, "scheduler": "asha", "metric": "cost_to_goal", "mode": "min", "seed": 3},
    )
    first = run_experiment(cfg, workers=2, track=False)
    eps = sorted({float(r.spec.params["epsilon"]) for r in first.results})
    assert len(eps) == 2 and all(0.01 <= e <= 0.5 for e in eps)
    assert all(r.spec.sample for r in first.results)
    assert 2 <= len(first.results) <= 4  # ASHA may stop a sample after its first seed
    # Results are deterministic given the sample: the same epsilon and seed, the same metrics.
    for r in first.results:
        again = run_trial(r.spec)
        assert again.deterministic_metrics() == r.deterministic_metrics()


def test_cli_run_and_compare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    cfg = tiny_config(tmp_path, seeds=[0], policies=[{"name": "oracle"}, {"name": "random"}])
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "run", str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["trials"]) == 2 and all(t["run_id"] for t in data["trials"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cfg.tracking.tracking_uri)
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["experiment", "compare", "tiny", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert [r["policy"] for r in rows] == ["oracle", "random"]
    assert rows == data["rows"]  # the same table from MLflow as from the run
    assert (out / "comparison.png").stat().st_size > 0


def test_cli_reports_a_bad_config_with_its_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nscenarios: [retail]\npolicies:\n  - name: ucb\n    grid: {lr: [0.1]}\n")
    res = CliRunner().invoke(app, ["experiment", "run", str(bad)])
    assert res.exit_code == 2
    assert "policies.0.grid.lr" in res.output


def test_a_file_store_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.runner import RunnerError
    from experiments.tracking import resolve_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}")
    with pytest.raises(RunnerError, match="file stores are not supported"):
        resolve_tracking_uri(tiny_config(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/sub/m.db")
    assert resolve_tracking_uri(tiny_config(tmp_path)).endswith("sub/m.db")
    assert (tmp_path / "sub").is_dir()
