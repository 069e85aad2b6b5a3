"""MLflow tracking of experiments: one parent run per invocation, one nested run per trial.

Everything is logged from the driver process after the trials return (see
:mod:`experiments.runner`), through :class:`mlflow.MlflowClient` with explicit run ids.

Per trial run:
    * tags: ``scenario``, ``policy`` (with hyperparameters), ``policy_family``, ``seed``,
      ``trial_id``, ``mlflow.parentRunId`` (nesting), ``tune_sample`` for Tune trials;
    * params: the trial's resolved config (hyperparameters as ``hp.*``, ``training.*``,
      ``evaluation.*``), ``seed``, ``git_commit``, ``version.*`` of the main packages;
    * metrics per iteration (``step`` = iteration): ``spend`` (cumulative), ``spend_iteration``,
      ``reserved``, ``conversions``, ``revenue``, ``goal_progress``, ``oracle_goal_progress``,
      ``regret`` (oracle's achieved goal metric minus the policy's, same campaign seed);
    * final metrics: ``goal_reached``, ``cost_to_goal`` (absent when the goal was missed),
      ``effective_cost_to_goal``, ``ratio_to_oracle``, ``oracle_cost_to_goal``, ``roi``,
      ``iterations``, ``final_regret``, ``seconds_train``, ``seconds_eval``;
    * artifacts: ``curves.png`` (budget and learning curves), ``policy/`` (the saved trained
      policy, loadable with :func:`policies.load_policy`), ``decisions_sample.csv`` and
      ``campaigns.json``.

The parent run holds the whole resolved config (params ``config.*`` and ``config.yaml``), the
git commit, package versions, the execution settings, ``results.json`` and a comparison plot.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from experiments.config import ExperimentConfig
from experiments.records import (
    Registration,
    RunnerError,
    TrialResult,
    best_trial,
    decision_sample_csv,
    git_commit,
    package_versions,
    results_json,
    unzip_policy,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

ROLE_TAG = "campaign_opt.role"
"""Tag telling experiment (parent) runs from trial runs."""

CHAMPION = "champion"
"""The alias ``--register`` sets on the registered version."""


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def check_tracking_uri(uri: str) -> str:
    """``uri`` if MLflow may use it: a database (``sqlite:///...``, ``postgresql://...``) or a
    tracking server (``http(s)://``); the parent folder of a local SQLite file is created.

    Raises:
        RunnerError: a ``file:`` store or a plain path.
    """
    if uri.startswith("file:") or "://" not in uri:
        raise RunnerError(
            f"tracking URI {uri!r}: use a database store such as sqlite:///mlruns/mlflow.db or an "
            "http(s):// tracking server (file stores are not supported)"
        )
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return uri


def resolve_tracking_uri(cfg: ExperimentConfig | None = None, override: str | None = None) -> str:
    """The tracking URI: ``override``, else ``MLFLOW_TRACKING_URI``, else the config's, else
    ``sqlite:///mlruns/mlflow.db``."""
    uri = (
        override
        or os.environ.get("MLFLOW_TRACKING_URI")
        or (cfg.tracking.tracking_uri if cfg is not None else "sqlite:///mlruns/mlflow.db")
    )
    return check_tracking_uri(uri)


def client(uri: str) -> MlflowClient:
    """An MLflow client on ``uri`` (telemetry and progress bars off)."""
    _quiet()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _artifact_root(location: str, experiment: str) -> str:
    if "://" in location or location.startswith("file:"):
        return location.rstrip("/") + "/" + experiment
    return (Path(location).expanduser().resolve() / experiment).as_uri()


def experiment_id(c: MlflowClient, cfg: ExperimentConfig) -> str:
    """The MLflow experiment of ``cfg`` (created with its artifact location when missing)."""
    name = cfg.experiment_name
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return c.create_experiment(
            name, artifact_location=_artifact_root(cfg.tracking.artifact_location, name)
        )
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    return str(exp.experiment_id)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists as ``a.b.0.c`` -> text (MLflow params)."""
    out: dict[str, str] = {}
    if isinstance(data, Mapping):
        if not data and prefix:
            out[prefix] = "{}"
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list | tuple):
        if not data and prefix:
            out[prefix] = "[]"
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        out[prefix] = "null" if data is None else str(data)
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _log_params(c: MlflowClient, run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k[:250], v[:6000]) for k, v in params.items()]
    for chunk in _chunks(items, 100):
        c.log_batch(run_id, params=list(chunk))


def _log_metrics(c: MlflowClient, run_id: str, values: Sequence[tuple[str, float, int]], ts: int) -> None:
    from mlflow.entities import Metric

    items = [Metric(k, float(v), ts, step) for k, v, step in values]
    for chunk in _chunks(items, 1000):
        c.log_batch(run_id, metrics=list(chunk))


@dataclass(frozen=True)
class LoggedExperiment:
    """Where an experiment was logged."""

    experiment_id: str
    parent_run_id: str
    run_ids: dict[str, str]


def trial_params(result: TrialResult, common: Mapping[str, str]) -> dict[str, str]:
    """A trial's params: its resolved config, seed, git commit and versions."""
    s = result.spec
    params = {
        "scenario": s.scenario,
        "policy": s.label,
        "policy_family": s.family,
        "policy_name": s.make_name,
        "seed": str(s.seed),
        "campaign_seeds": ",".join(map(str, s.campaign_seeds)),
        **{f"hp.{k}": str(v) for k, v in s.params.items()},
        **flatten(s.training.model_dump(), "training"),
        **flatten(s.evaluation.model_dump(), "evaluation"),
        **common,
    }
    if s.sample:
        params["tune_sample"] = s.sample
    return params


def _log_trial(
    c: MlflowClient,
    exp_id: str,
    parent: str,
    result: TrialResult,
    common: Mapping[str, str],
    ts: int,
    index: int,
) -> str:
    from experiments.plots import plot_trial

    s = result.spec
    tags = {
        "mlflow.parentRunId": parent,
        ROLE_TAG: "trial",
        "scenario": s.scenario_label,
        "policy": s.label,
        "policy_family": s.family,
        "seed": str(s.seed),
        "trial_id": s.trial_id,
        "trial_index": str(index),
    }
    if s.sample:
        tags["tune_sample"] = s.sample
    run = c.create_run(exp_id, start_time=ts, tags=tags, run_name=s.trial_id)
    rid = run.info.run_id
    _log_params(c, rid, trial_params(result, common))
    curve_keys = set(result.curve[0]) if result.curve else set()
    values = [(k, v, i) for i, point in enumerate(result.curve) for k, v in point.items() if k != "budget"]
    values += [(k, v, 0) for k, v in result.metrics.items() if v is not None and k not in curve_keys]
    _log_metrics(c, rid, values, ts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plot_trial(result, folder / "curves.png")
        (folder / "decisions_sample.csv").write_text(
            decision_sample_csv(result.decision_sample), encoding="utf-8"
        )
        (folder / "campaigns.json").write_text(json.dumps(result.campaigns, indent=1, default=float), "utf-8")
        for name in ("curves.png", "decisions_sample.csv", "campaigns.json"):
            c.log_artifact(rid, str(folder / name))
        c.log_artifacts(rid, str(unzip_policy(result.policy_archive, folder / "policy")), "policy")
    c.set_terminated(rid, "FINISHED")
    return str(rid)


def log_experiment(
    cfg: ExperimentConfig,
    results: Sequence[TrialResult],
    uri: str,
    workers: int = 1,
    address: str | None = None,
) -> LoggedExperiment:
    """Log an experiment's trials: a parent run and one nested run per trial."""
    import time

    from experiments.compare import compare_results
    from experiments.plots import plot_comparison

    c = client(uri)
    exp_id = experiment_id(c, cfg)
    ts = int(time.time() * 1000)
    commit = git_commit()
    versions = {f"version.{k}": v for k, v in package_versions().items()}
    common = {"git_commit": commit or "unknown", **versions}
    parent = c.create_run(
        exp_id,
        start_time=ts,
        run_name=f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={ROLE_TAG: "experiment", "experiment_config": cfg.name},
    )
    pid = parent.info.run_id
    params = {
        **flatten(cfg.model_dump(mode="json"), "config"),
        **common,
        "workers": str(workers),
        "ray_address": address or "local",
        "trials": str(len(results)),
    }
    _log_params(c, pid, params)
    run_ids = {r.trial_id: _log_trial(c, exp_id, pid, r, common, ts, i) for i, r in enumerate(results)}
    rows = compare_results(results)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.yaml").write_text(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        (folder / "results.json").write_text(results_json(results), encoding="utf-8")
        plot_comparison(rows, folder / "comparison.png")
        for name in ("config.yaml", "results.json", "comparison.png"):
            c.log_artifact(pid, str(folder / name))
    c.set_terminated(pid, "FINISHED")
    return LoggedExperiment(experiment_id=exp_id, parent_run_id=pid, run_ids=run_ids)


def register_run_policy(
    c: MlflowClient, name: str, run_id: str, tags: Mapping[str, str] | None = None
) -> str:
    """Register the ``policy/`` artifact of ``run_id`` as a new version of model ``name``, set
    the ``champion`` alias on it; returns the version."""
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(
            name, description="A campaign policy folder (policy.json); load with serving.registry."
        )
    source = c.get_run(run_id).info.artifact_uri.rstrip("/") + "/policy"
    mv = c.create_model_version(name, source=source, run_id=run_id, tags=dict(tags or {}))
    c.set_registered_model_alias(name, CHAMPION, mv.version)
    return str(mv.version)


def register_best(
    cfg: ExperimentConfig,
    results: Sequence[TrialResult],
    logged: LoggedExperiment,
    name: str,
    uri: str,
) -> Registration:
    """Register the best trial's policy (see :func:`experiments.records.best_trial`) as ``name``
    with alias ``champion``.

    Raises:
        RunnerError: no candidate (only oracles) in the experiment.
    """
    best = best_trial(results, cfg.tune.metric, cfg.tune.mode)
    if best is None:
        raise RunnerError("nothing to register: the experiment has no trial of a non-oracle policy")
    run_id = logged.run_ids[best.trial_id]
    metric = "effective_cost_to_goal" if cfg.tune.metric == "cost_to_goal" else cfg.tune.metric
    tags = {
        "scenario": best.spec.scenario_label,
        "policy": best.spec.label,
        "trial_id": best.trial_id,
        "experiment": cfg.name,
        metric: str(best.metrics.get(metric)),
    }
    version = register_run_policy(client(uri), name, run_id, tags)
    return Registration(
        name=name,
        version=version,
        alias=CHAMPION,
        run_id=run_id,
        trial_id=best.trial_id,
        uri=f"models:/{name}@{CHAMPION}",
    )


def latest_parent_run(c: MlflowClient, experiment: str, parent_run_id: str | None = None) -> Any:
    """The experiment's latest parent run (or the one given).

    Raises:
        RunnerError: unknown experiment or no runs.
    """
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in c.search_experiments())
        raise RunnerError(f"no MLflow experiment {experiment!r} in this store; experiments: {names}")
    if parent_run_id is not None:
        return c.get_run(parent_run_id)
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{ROLE_TAG}` = 'experiment'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise RunnerError(f"experiment {experiment!r} has no experiment runs yet")
    return runs[0]


def trial_records(
    uri: str, experiment: str, parent_run_id: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The trial runs under an experiment's latest (or given) parent run, as records
    ``{scenario, policy, seed, run_id, metrics}``; returns the parent run id too."""
    c = client(uri)
    parent = latest_parent_run(c, experiment, parent_run_id)
    pid = parent.info.run_id
    runs = c.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{pid}'",
        max_results=50_000,
    )
    records = [
        {
            "scenario": r.data.tags.get("scenario", ""),
            "policy": r.data.tags.get("policy", ""),
            "seed": int(r.data.tags.get("seed", "0")),
            "trial_id": r.data.tags.get("trial_id", ""),
            "index": int(r.data.tags.get("trial_index", "0")),
            "run_id": r.info.run_id,
            "metrics": dict(r.data.metrics),
        }
        for r in runs
    ]
    records.sort(key=lambda d: (d["index"], d["trial_id"]))
    return pid, records
