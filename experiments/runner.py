"""The experiment runner: expand a config into trials, train and evaluate each, in parallel with Ray.

A **trial** is one (scenario, policy, hyperparameter point, seed): the policy is trained (a
learning bandit warm-started on simulated campaigns, ``ppo``/``a2c`` trained with
Stable-Baselines3, baselines not at all), then evaluated on campaigns of the evaluation protocol.
Every evaluation campaign also runs the oracle with the same campaign seed: the regret curve and
the ratio to the oracle compare against it.

Execution:
    * ``workers=1`` and no ``address``: trials run one after the other in this process;
    * ``workers=N``: trials run as Ray tasks (one CPU each) on a local Ray started on loopback
      with usage stats off; ``address=...`` joins an existing cluster instead (every node needs
      this package installed);
    * policies whose grid holds a search space are tuned with Ray Tune (``tune`` section).

A trial is a pure function of its :class:`TrialSpec` (seeds are derived from it; BLAS and torch
run single-threaded inside a trial), so serial and parallel runs give identical metrics.

Tracking: workers return typed :class:`TrialResult` objects (metrics, curves, the saved policy
as a zip archive, a sample of the decision log) and **the driver logs everything to MLflow**
after the results come back: one parent run per experiment invocation, one nested run per
trial. Logging from one process keeps the SQLite store free of concurrent writers, works when
the workers are on other machines, and makes the logged values independent of scheduling.

The code, by job: :mod:`experiments.records` (trial specs and results, their serializations),
:mod:`experiments.trials` (expanding a config, one trial), :mod:`experiments.ray_backend` (serial
or Ray execution, Ray Tune) and this module (the whole experiment: :func:`run_experiment`); every
public name of the first three is importable from here.

Example:
    >>> from experiments.config import parse_config
    >>> cfg = parse_config({"name": "demo", "scenarios": ["retail"], "policies": [{"name": "random"}]})
    >>> [t.trial_id for t in expand_trials(cfg)]
    ['retail/random/seed=0']
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from experiments.config import ExperimentConfig
from experiments.ray_backend import (
    ResultCallback,
    ray_session,
    run_trials,
    tune_policy,
    warm_worker,
)
from experiments.records import (
    TIMING_METRICS,
    Registration,
    RunnerError,
    TrialResult,
    TrialSpec,
    best_trial,
    decision_sample_csv,
    effective_cost,
    git_commit,
    package_versions,
    results_json,
    unzip_policy,
)
from experiments.trials import (
    DECISION_SAMPLE,
    OracleRuns,
    evaluation_spec,
    expand_trials,
    oracle_runs,
    run_trial,
)

__all__ = [  # the records are re-exported: callers import them from here as before
    "DECISION_SAMPLE",
    "TIMING_METRICS",
    "ExperimentResult",
    "OracleRuns",
    "Registration",
    "ResultCallback",
    "RunnerError",
    "TrialResult",
    "TrialSpec",
    "best_trial",
    "decision_sample_csv",
    "effective_cost",
    "evaluation_spec",
    "expand_trials",
    "git_commit",
    "oracle_runs",
    "package_versions",
    "ray_session",
    "results_json",
    "run_experiment",
    "run_trial",
    "run_trials",
    "total_trials",
    "tune_policy",
    "unzip_policy",
    "warm_worker",
]


@dataclass(frozen=True)
class ExperimentResult:
    """An experiment run: its trials and where they are tracked."""

    name: str
    results: list[TrialResult]
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    run_ids: dict[str, str] = field(default_factory=dict)
    """MLflow run id per trial id."""
    registered: Registration | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (trials with their run ids, the comparison rows, the registration)."""
        from experiments.compare import compare_results

        return {
            "name": self.name,
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "seconds": self.seconds,
            "trials": [r.to_dict() | {"run_id": self.run_ids.get(r.trial_id)} for r in self.results],
            "rows": [asdict(row) for row in compare_results(self.results)],
            "registered": asdict(self.registered) if self.registered else None,
        }


def total_trials(cfg: ExperimentConfig) -> int:
    """Upper bound of the trials the experiment runs (Tune may stop samples early)."""
    return cfg.n_trials()


def run_experiment(
    cfg: ExperimentConfig,
    workers: int = 1,
    address: str | None = None,
    on_result: ResultCallback | None = None,
    track: bool = True,
    register: str | None = None,
    tracking_uri: str | None = None,
) -> ExperimentResult:
    """Run every trial of ``cfg``, log them to MLflow, optionally register the best policy.

    Args:
        cfg: the validated experiment.
        workers: parallel trials (Ray tasks on a local Ray when > 1).
        address: join this Ray cluster instead of starting one.
        on_result: called as each trial finishes (progress).
        track: log to MLflow (parent run + nested trial runs).
        register: register the best trial's policy under this model name (alias ``champion``).
        tracking_uri: overrides ``MLFLOW_TRACKING_URI`` and the config's URI.

    Raises:
        RunnerError: Ray or the tracking store cannot be used.
    """
    from experiments.tracking import log_experiment, register_best, resolve_tracking_uri

    start = time.perf_counter()
    uri = resolve_tracking_uri(cfg, tracking_uri) if track or register else None
    specs = expand_trials(cfg)
    search = [(s, p) for s in cfg.scenarios for p in cfg.policies if p.is_search]
    results: list[TrialResult]
    if search:
        with ray_session(workers, address):
            results = run_trials(specs, workers=workers, address=address, on_result=on_result)
            for scenario, pol in search:
                results += tune_policy(cfg, pol, scenario, workers, on_result)
    else:
        results = run_trials(specs, workers=workers, address=address, on_result=on_result)
    seconds = time.perf_counter() - start
    if not (track or register):
        return ExperimentResult(name=cfg.name, results=results, seconds=seconds)
    assert uri is not None
    logged = log_experiment(cfg, results, uri, workers=workers, address=address)
    registered = register_best(cfg, results, logged, register, uri) if register else None
    return ExperimentResult(
        name=cfg.name,
        results=results,
        tracking_uri=uri,
        experiment_id=logged.experiment_id,
        parent_run_id=logged.parent_run_id,
        run_ids=logged.run_ids,
        registered=registered,
        seconds=seconds,
    )
