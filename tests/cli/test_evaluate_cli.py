"""``campaign-opt evaluate`` and ``campaign-opt train --from-log``, end to end through typer's runner
(assertions on the JSON output and on the one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from experiments.logs import simulate_log
from simulators import Simulator, load_scenario

runner = CliRunner(env={"COLUMNS": "200"})
HILLSTROM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hillstrom.csv"
ARMS = {"none": "no_contact", "mens": "email/mens/none", "womens": "email/womens/none"}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """A uniformly randomized 3-arm experiment file drawn from the hillstrom world, its mapping, and
    the true value of always sending the men's e-mail."""
    folder = tmp_path_factory.mktemp("exp")
    sim = Simulator(load_scenario("hillstrom"), n_customers=6000)
    log = simulate_log(sim, 0)
    d = log.data
    names = list(ARMS)
    lines = ["x0,x1,x2,arm,buy,spend"]
    for i in range(len(d)):
        f = d.features[i]
        lines.append(
            f"{f[0]:.6f},{f[1]:.6f},{f[2]:.6f},{names[d.action[i]]},{d.conversion[i]:g},{d.revenue[i]:.4f}"
        )
    (folder / "exp.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = {
        "action": "arm",
        "arms": ARMS,
        "numeric": {"x0": [0, 1], "x1": [0, 1], "x2": [0, 1]},
        "conversion": "buy",
        "revenue": "spend",
        "arm_cost": {"email/mens/none": 0.001, "email/womens/none": 0.001},
        "assignment": {k: 1 / 3 for k in ARMS},
        "margin": sim.margin,
    }
    (folder / "mapping.yaml").write_text(json.dumps(mapping), encoding="utf-8")
    truth = float(np.mean(log.truth[:, 1]))
    return folder / "exp.csv", folder / "mapping.yaml", truth


def _json(args: list[str], env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, args, env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_evaluate_a_mapped_file(experiment: tuple[Path, Path, float]) -> None:
    csv, mapping, truth = experiment
    out = _json(
        ["evaluate", "--log", str(csv), "--mapping", str(mapping), "--policy", "fixed:email/mens/none",
         "--bootstrap", "200", "--reward-model", "ridge", "--baselines", "--replay", "--json"]
    )  # fmt: skip
    assert out["log"]["rows"] == 6000 and out["log"]["uniform"] and not out["log"]["contacts_only"]
    assert out["target_method"] == "deterministic"
    res = out["results"]["fixed:email/mens/none"]
    assert set(res["estimates"]) == {"ips", "snips", "dr", "switch_dr"}
    dr = res["estimates"]["dr"]
    assert dr["low"] <= truth <= dr["high"]
    assert set(out["results"]) == {"fixed:email/mens/none", "no_contact", "always email/mens/none",
                                   "always email/womens/none"}  # fmt: skip
    assert out["replay"]["matched"] == res["diagnostics"]["matched"]
    assert out["replay"]["low"] <= truth <= out["replay"]["high"]


def test_evaluate_a_campaign_folder(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sim_args = ["simulate", "--max-iterations", "3", "--customers-per-iteration", "2000", "--seed", "3",
                "--policy", "random", "--export-log", str(logs), "--json"]  # fmt: skip
    assert runner.invoke(app, sim_args).exit_code == 0
    out = _json(
        ["evaluate", "--log", str(logs), "--campaign-seed", "3", "--policy", "fixed:email/new_arrivals/none",
         "--estimators", "ips,dr", "--bootstrap", "50", "--reward-model", "ridge", "--json"]
    )  # fmt: skip
    assert out["log"]["contacts_only"]
    res = out["results"]["fixed:email/new_arrivals/none"]
    assert set(res["estimates"]) == {"ips", "dr"}
    assert any("contacts only" in w for w in res["diagnostics"]["warnings"])


def test_train_from_log_registers_and_keeps_the_champion(
    experiment: tuple[Path, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv, mapping, _ = experiment
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    saved = str(tmp_path / "saved")
    args = ["train", "--from-log", str(csv), "--mapping", str(mapping), "--bootstrap", "100",
            "--register", "exp_policy", "--tracking-uri", uri, "--out", saved, "--json"]  # fmt: skip
    monkeypatch.chdir(tmp_path)  # MLflow artifacts under tmp_path/mlruns
    first = _json(args)
    second = _json(args)
    assert first["registration"]["promoted"] and first["registration"]["version"] == "1"
    assert not second["registration"]["promoted"] and "stays on version 1" in second["registration"]["reason"]
    assert first["policy"] == "offline_value" and first["train_rows"] + first["holdout_rows"] == 6000
    assert {r["policy"] for r in first["table"]} >= {"offline_value", "no_contact"}
    assert (tmp_path / "saved" / "policy.json").is_file()
    out = _json(["evaluate", "--log", str(csv), "--mapping", str(mapping), "--policy", saved,
                 "--bootstrap", "50", "--json"])  # fmt: skip
    assert out["target_method"] == "exact"


@pytest.mark.skipif(not HILLSTROM.is_file(), reason="../shared/data/hillstrom.csv is absent")
def test_evaluate_hillstrom_by_name() -> None:
    out = _json(
        ["evaluate", "--log", str(HILLSTROM), "--mapping", "hillstrom", "--policy", "fixed:email/mens/none",
         "--estimators", "ips", "--bootstrap", "50", "--json"]
    )  # fmt: skip
    assert out["log"]["rows"] == 64_000 and out["log"]["margin"] == 0.35
    assert out["results"]["fixed:email/mens/none"]["estimates"]["ips"]["value"] == pytest.approx(
        1.4226 * 0.35 - 0.001, abs=0.002
    )


BAD = [
    (["--log", "{tmp}/nope.csv", "--policy", "random"], "--log"),
    (["--log", "{csv}", "--policy", "random"], "--mapping"),
    (["--log", "{csv}", "--mapping", "{tmp}/nope.yaml", "--policy", "random"], "--mapping"),
    (["--log", "{csv}", "--mapping", "{mapping}", "--policy", "nope"], "--policy"),
    (["--log", "{csv}", "--mapping", "{mapping}", "--policy", "oracle"], "--policy"),
    (
        ["--log", "{csv}", "--mapping", "{mapping}", "--policy", "random", "--estimators", "ips,magic"],
        "--estimators",
    ),
    (["--log", "{csv}", "--mapping", "{mapping}", "--policy", "random", "--bootstrap", "-1"], "--bootstrap"),
    (
        ["--log", "{csv}", "--mapping", "{mapping}", "--policy", "random", "--reward-model", "nn"],
        "--reward-model",
    ),
    (
        ["--log", "{csv}", "--mapping", "{mapping}", "--policy", "random", "--scenario", "retail"],
        "--scenario",
    ),
    (["--log", "{bad_csv}", "--mapping", "{mapping}", "--policy", "random"], "--log"),
]


@pytest.mark.parametrize(("args", "option"), BAD, ids=[f"{o}-{i}" for i, (_, o) in enumerate(BAD)])
def test_evaluate_bad_input_exits_2_naming_the_option(
    experiment: tuple[Path, Path, float], tmp_path: Path, args: list[str], option: str
) -> None:
    csv, mapping, _ = experiment
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("x0,x1,x2,arm,buy\n0.1,0.2,0.3,none,0\n", encoding="utf-8")
    subs = {"{tmp}": str(tmp_path), "{csv}": str(csv), "{mapping}": str(mapping), "{bad_csv}": str(bad_csv)}
    full = ["evaluate"]
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        full.append(a)
    res = runner.invoke(app, full)
    assert res.exit_code == 2, res.output
    error = " ".join(res.output.split()).lower().split("error:", 1)
    assert len(error) == 2 and option in error[1], res.output


def test_train_from_log_bad_input(experiment: tuple[Path, Path, float], tmp_path: Path) -> None:
    csv, mapping, _ = experiment
    base = ["train", "--from-log", str(csv), "--mapping", str(mapping)]
    for extra, option in (
        (["--holdout", "1"], "--holdout"),
        (["--holdout", "0"], "--holdout"),
        (["--policy", "random"], "--policy"),
        (["--tracking-uri", "file:/tmp/x"], "--tracking-uri"),
    ):
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 2, res.output
        error = " ".join(res.output.split()).lower().split("error:", 1)
        assert len(error) == 2 and option in error[1], res.output


def test_replay_a_budgeted_learner(experiment: tuple[Path, Path, float]) -> None:
    """A budgeted learner replays with and without a budget (it sees what is left of it)."""
    csv, mapping, _ = experiment
    base = ["evaluate", "--log", str(csv), "--mapping", str(mapping), "--policy", "budgeted_ts",
            "--estimators", "ips", "--bootstrap", "10", "--replay", "--json"]  # fmt: skip
    tight = _json([*base, "--budget", "0.3"])["replay"]
    loose = _json(base)["replay"]
    assert tight["budget"] == 0.3 and loose["budget"] is None
    assert tight["matched"] > 0 and loose["matched"] > 0
    res = runner.invoke(app, [*base, "--budget", "-1"])
    assert res.exit_code == 2 and "--budget" in res.output
