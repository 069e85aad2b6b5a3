"""What an experiment's trials are and return, below the runner, tracking, compare and plots.

:class:`TrialSpec` (a trial, a pure function of it), :class:`TrialResult` (what it returns to the
driver), :class:`Registration`, :class:`RunnerError`, the ranking of trials (:func:`best_trial`,
:func:`effective_cost`) and the serializations the tracking logs (policy archives, the decision
sample, results JSON, the run's git commit and package versions). It imports no other module of
``experiments/`` but :mod:`experiments.config`, so the modules that read results import it and
not the runner.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.config import EvaluationConfig, Scalar, TrainingConfig, policy_name

TIMING_METRICS = ("seconds_train", "seconds_eval")
"""Wall-clock metrics: the only ones that differ between two runs of the same trial."""


class RunnerError(RuntimeError):
    """An experiment that cannot run (bad tracking URI, Ray unavailable, ...)."""


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial needs; a trial is a pure function of it.

    Attributes:
        scenario: built-in scenario name or absolute YAML path.
        policy: the config's policy name (``epsilon_greedy``, ``ppo``, ``fixed:ARM``).
        params: hyperparameters of this grid point or Tune sample.
        seed: trial seed (training and policy seed; the campaign seed unless evaluation seeds).
        training: the training budget.
        evaluation: the evaluation protocol.
        sample: the Tune sample this trial belongs to (``""`` for grid trials).
    """

    scenario: str
    policy: str
    params: dict[str, Scalar]
    seed: int
    training: TrainingConfig
    evaluation: EvaluationConfig
    sample: str = ""

    @property
    def family(self) -> str:
        """``epsilon_greedy:epsilon=0.1`` -> ``epsilon_greedy``."""
        return self.policy.partition(":")[0]

    @property
    def label(self) -> str:
        """The policy with its hyperparameters, as shown in tables: ``ppo:learning_rate=0.001``."""
        if not self.params:
            return self.policy
        return self.policy + ":" + ",".join(f"{k}={_short(v)}" for k, v in self.params.items())

    @property
    def make_name(self) -> str:
        """The name :func:`policies.make_policy` takes (RL hyperparameters go to the trainer)."""
        return policy_name(self.policy, self.params)

    @property
    def scenario_label(self) -> str:
        """The scenario's short name (file stem for a path)."""
        return Path(self.scenario).stem if self.scenario.endswith((".yaml", ".yml")) else self.scenario

    @property
    def trial_id(self) -> str:
        """``scenario/label/seed=N`` (unique within an experiment)."""
        return f"{self.scenario_label}/{self.label}/seed={self.seed}"

    @property
    def campaign_seeds(self) -> list[int]:
        """Seeds of the evaluation campaigns."""
        return list(self.evaluation.seeds) if self.evaluation.seeds is not None else [self.seed]


def _short(v: Scalar) -> str:
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.4g}"
    return str(v).lower() if isinstance(v, bool) else str(v)


@dataclass(frozen=True)
class TrialResult:
    """What a trial returns to the driver (picklable, JSON-ready but for the archive).

    Attributes:
        spec: the trial.
        metrics: final metrics (means over the evaluation campaigns; ``None`` where undefined,
            e.g. ``cost_to_goal`` of a trial that never reached its goal).
        curve: per iteration (index = iteration): ``spend``, ``spend_iteration``, ``reserved``,
            ``conversions``, ``revenue``, ``goal_progress``, ``oracle_goal_progress``, ``regret``
            (oracle's achieved goal metric minus the policy's, so far), ``budget``.
        campaigns: per evaluation campaign: seed, stop reason, goal reached, cost to goal, ...
        policy_archive: the trained policy's folder (``policy.json``, ``model.zip``...) as a zip.
        decision_sample: the first decisions of the first evaluation campaign.
    """

    spec: TrialSpec
    metrics: dict[str, float | None]
    curve: list[dict[str, float]]
    campaigns: list[dict[str, Any]]
    policy_archive: bytes = field(repr=False)
    decision_sample: list[dict[str, Any]] = field(repr=False)

    @property
    def trial_id(self) -> str:
        """The trial's id."""
        return self.spec.trial_id

    def deterministic_metrics(self) -> dict[str, float | None]:
        """Every metric but wall-clock timings."""
        return {k: v for k, v in self.metrics.items() if k not in TIMING_METRICS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no archive, no decision sample)."""
        return {
            "trial_id": self.trial_id,
            "scenario": self.spec.scenario_label,
            "policy": self.spec.label,
            "family": self.spec.family,
            "params": dict(self.spec.params),
            "seed": self.spec.seed,
            "sample": self.spec.sample,
            "metrics": dict(self.metrics),
            "campaigns": list(self.campaigns),
        }


def zip_folder(folder: Path) -> bytes:
    """A policy folder as a zip archive (fixed timestamps: the same folder gives the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(str(p.relative_to(folder)), date_time=(2000, 1, 1, 0, 0, 0))
                zf.writestr(info, p.read_bytes())
    return buf.getvalue()


def unzip_policy(archive: bytes, folder: Path) -> Path:
    """Write a trial's policy archive into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        zf.extractall(folder)
    return folder


def effective_cost(cost_to_goal: float | None, spend: float, progress: float, budget: float) -> float:
    """Cost to goal, or for a campaign that missed its goal its spend extrapolated to the goal
    (at least the budget, at most 100x the spend): what Tune and ``--register`` rank by."""
    if cost_to_goal is not None:
        return cost_to_goal
    return max(budget, spend / max(progress, 0.01))


@dataclass(frozen=True)
class Registration:
    """A policy registered in the MLflow model registry."""

    name: str
    version: str
    alias: str
    run_id: str
    trial_id: str
    uri: str


def best_trial(results: Sequence[TrialResult], metric: str, mode: str) -> TrialResult | None:
    """The trial whose policy to register: the best (scenario, policy) group by the median of
    ``metric`` over its seeds, then that group's best trial. Oracles (they read the simulator's
    ground truth) are never candidates. ``cost_to_goal`` ranks a missed goal by its
    :func:`effective_cost`."""
    key = "effective_cost_to_goal" if metric == "cost_to_goal" else metric
    sign = 1.0 if mode == "min" else -1.0

    def score(r: TrialResult) -> float:
        v = r.metrics.get(key)
        return math.inf if v is None or not math.isfinite(v) else sign * v

    groups: dict[tuple[str, str], list[TrialResult]] = {}
    for r in results:
        if r.spec.family != "oracle":
            groups.setdefault((r.spec.scenario_label, r.spec.label), []).append(r)
    if not groups:
        return None
    best_group = min(groups.values(), key=lambda g: (float(np.median([score(r) for r in g])), g[0].trial_id))
    return min(best_group, key=lambda r: (score(r), r.trial_id))


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit of ``cwd`` (or of this package's checkout), if any."""
    folder = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def package_versions() -> dict[str, str]:
    """Versions of the packages a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in (
        "campaign-optimizer",
        "numpy",
        "mlflow",
        "ray",
        "torch",
        "stable-baselines3",
        "gymnasium",
        "pydantic",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def decision_sample_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The decision-log sample as CSV text."""
    buf = io.StringIO()
    cols = ["decision_id", "iteration", "customer", "arm", "arm_name", "pscore", "reserved"]
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({c: r[c] for c in cols})
    return buf.getvalue()


def results_json(results: Sequence[TrialResult]) -> str:
    """Every trial's summary as JSON text."""
    return json.dumps([r.to_dict() for r in results], indent=2, default=float)
