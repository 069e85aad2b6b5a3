"""Learning from logs: fit a policy on logged data, evaluate it off-policy on held-out rows, track
it in MLflow and register it when it beats the champion.

* :class:`policies.offline_value.OfflineValuePolicy` (``offline_value``, in the policy catalogue)
  learns from a log in one pass (its ``fit``); its ridge penalty is tuned here
  (:func:`tune_ridge`).
* :func:`fit_by_replay`: any catalogue learning policy learns from a log by replaying its rows,
  in logged order, as ``Feedback`` through ``update`` (the logged arms as its decisions).
* :func:`train_from_log`: split, fit, evaluate with :mod:`experiments.ope` beside the one-arm
  baselines on the held-out part; :func:`track_and_register` logs it to MLflow and moves the
  ``champion`` alias only when the new policy's DR lower bound beats the champion's DR estimate
  on the same held-out rows.

A registered champion is loaded from the MLflow registry by :func:`registered_policy` (experiments
and serving are siblings: this module does not import :mod:`serving`).

Example (Hillstrom, the table of the README):
    python -m cli train --from-log ../shared/data/hillstrom.csv --mapping hillstrom --holdout 0.5 --json
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.logs import LoggedData
from experiments.ope import (
    OPEConfig,
    OPEResult,
    compare,
    context_for,
    evaluate_many,
    feedback_events,
    fit_reward_model,
    target_probabilities,
)
from policies.base import Decisions, Feedback, Policy
from policies.offline_value import OfflineValuePolicy
from simulators.types import NO_CONTACT, ArmTable, FloatArray

# -- loading policies ---------------------------------------------------------------------------


def registered_policy(uri: str, simulator: Any, tracking: str) -> Policy:
    """The policy of a registered model version, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``
    (its ``policy/`` folder downloaded from the MLflow registry and loaded with
    :func:`policies.registry.load_policy`; ``serving.registry.resolve_policy`` is the serving side's
    resolver of every source, which the CLI uses).

    Raises:
        policies.UnknownPolicyError: a malformed URI, an unknown model, alias or version, or a
            version without a loadable policy.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from experiments.tracking import client
    from policies.registry import UnknownPolicyError, load_policy

    ref = uri.removeprefix("models:/")
    name, at, alias = ref.partition("@")
    version = ""
    if not at:
        name, _, version = ref.rpartition("/")
    if not uri.startswith("models:/") or not name or not (alias or version):
        raise UnknownPolicyError(f"{uri!r} is not models:/NAME@ALIAS nor models:/NAME/VERSION")
    c = client(tracking)
    try:
        mv = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, version)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=c.get_model_version_download_uri(name, str(mv.version)),
                dst_path=tempfile.mkdtemp(prefix="policy-"),
                tracking_uri=tracking,
            )
        )
    except MlflowException as err:
        raise UnknownPolicyError(f"cannot load {uri!r}: {err.message}") from None
    found = sorted(local.rglob("policy.json"), key=lambda p: len(p.parts))
    if not found:
        raise UnknownPolicyError(f"{uri!r} (version {mv.version}) holds no policy.json")
    return load_policy(found[0].parent, simulator)


def scenario_for(data: LoggedData, name: str | None = None) -> Any:
    """The scenario whose arm table a log's policies act on: ``name`` if given, else the built-in
    scenario whose arm names are the log's (``hillstrom`` for the Hillstrom mapping).

    Raises:
        ValueError: no built-in scenario has the log's arms, or ``name``'s arms differ.
    """
    from simulators import load_scenario
    from simulators.scenario import builtin_scenarios
    from simulators.simulator import build_arms

    candidates = [name] if name else builtin_scenarios()
    for cand in candidates:
        sc = load_scenario(cand)
        if build_arms(sc).names == data.arm_names:
            return sc
    if name:
        raise ValueError(f"scenario {name!r} does not have the log's arms {list(data.arm_names)}")
    raise ValueError(f"no built-in scenario has the log's arms {list(data.arm_names)}; name one")


def world_for(data: LoggedData, scenario: str | None = None) -> tuple[Any, ArmTable]:
    """A small simulator of :func:`scenario_for` (policies read its arms) and its arm table."""
    from simulators import Simulator

    sim = Simulator(scenario_for(data, scenario), n_customers=1)
    sim.reset(seed=0)
    return sim, sim.arms


# -- learning from logs -------------------------------------------------------------------------


RIDGE_GRID: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
"""Ridge penalties :func:`tune_ridge` tries (the largest is close to one mean per arm)."""


def tune_ridge(
    data: LoggedData, policy: OfflineValuePolicy, grid: Sequence[float] = RIDGE_GRID, seed: int = 0
) -> dict[float, float]:
    """Pick the offline value policy's ridge penalty on the training rows alone: fit on a seeded
    half for each penalty, score the greedy policy by DR on the other half (a cross-fitted ridge
    reward model), and set on ``policy`` the largest penalty whose score is within one standard
    error of the best (the one-standard-error rule: with noisy rewards the best score is partly
    luck, and the largest penalty is the closest to one value per arm). Returns each penalty's score.
    """
    from experiments.ope import dr_terms

    inner, val = data.split(0.5, seed + 1)
    q = fit_reward_model(val, "ridge", 2, seed)
    scores: dict[float, float] = {}
    errors: dict[float, float] = {}
    for ridge in grid:
        cand = OfflineValuePolicy(policy.epsilon, ridge, policy.margin, policy.interactions).fit(inner)
        v = np.where(val.mask, cand.values(val.features), -np.inf)
        pi = np.zeros((len(val), val.n_arms))
        pi[np.arange(len(val)), v.argmax(axis=1)] = 1.0
        terms = dr_terms(val, pi, q)
        scores[ridge] = float(terms.mean())
        errors[ridge] = float(terms.std(ddof=1) / math.sqrt(max(len(val), 1)))
    best = max(scores, key=lambda r: scores[r])
    policy.ridge = max(r for r in grid if scores[r] >= scores[best] - errors[best])
    policy._coef = None
    return scores


def fit_by_replay(policy: Policy, data: LoggedData, arms: ArmTable, batch_size: int = 1000) -> Policy:
    """Teach ``policy`` from a log: rows in logged order (one batch per logged iteration, else
    batches of ``batch_size``) as ``Feedback`` through ``update``, the logged arms and pscores as
    its decisions and the logged outcomes as events (:func:`experiments.ope.feedback_events`).
    Returns the policy (updated in place)."""
    if isinstance(policy, OfflineValuePolicy):
        return policy.fit(data)
    if data.iteration is not None:
        batches = [(int(t), np.flatnonzero(data.iteration == t)) for t in np.unique(data.iteration)]
    else:
        starts = range(0, len(data), batch_size)
        batches = [(i, np.arange(s, min(s + batch_size, len(data)))) for i, s in enumerate(starts)]
    next_id = 0
    for j, (t, rows) in enumerate(batches):
        ctx = context_for(data, arms, rows, t, len(batches) - j)
        ids = np.arange(next_id, next_id + rows.size, dtype=np.int64)
        next_id += rows.size
        sent = np.where(data.action[rows] != NO_CONTACT, ids, -1)
        decisions = Decisions(arms=data.action[rows].copy(), pscores=data.pscore[rows].copy())
        policy.update(Feedback(ctx, decisions, sent, feedback_events(data, rows, ids, t)))
    return policy


def fixed_pi(data: LoggedData, arm: int) -> FloatArray:
    """``(n, n_arms)`` always ``arm`` where allowed, else no contact."""
    pi = np.zeros((len(data), data.n_arms))
    ok = data.mask[:, arm]
    pi[ok, arm] = 1.0
    pi[~ok, NO_CONTACT] = 1.0
    return pi


@dataclass(frozen=True)
class Row:
    """One line of the evaluation table: a policy under one estimator, per logged customer."""

    policy: str
    estimator: str
    value: float
    low: float
    high: float
    ess: float


@dataclass(frozen=True)
class OfflineRun:
    """What :func:`train_from_log` did.

    Attributes:
        policy: the fitted policy.
        policy_label: its name with hyperparameters.
        train_rows, holdout_rows: sizes of the two parts.
        results: OPE of the learned policy and of the baselines on the held-out rows, by label.
        differences: paired DR differences ``learned - baseline`` (value, low, high) by baseline.
        method: how the learned policy's action distribution was obtained.
        config: the OPE configuration.
        holdout: the held-out rows (for comparing a champion on the same data).
        q: the held-out reward model predictions shared by every estimate.
        tuning: DR score on an inner validation half of each ridge penalty tried (if tuned).
    """

    policy: Policy
    policy_label: str
    train_rows: int
    holdout_rows: int
    results: dict[str, OPEResult]
    differences: dict[str, tuple[float, float, float]]
    method: str
    config: OPEConfig
    holdout: LoggedData = field(repr=False)
    q: FloatArray = field(repr=False)
    tuning: dict[float, float] = field(default_factory=dict)

    @property
    def learned(self) -> OPEResult:
        """The learned policy's OPE."""
        return self.results[self.policy_label]

    def rows(self) -> list[Row]:
        """The table: every policy under every estimator."""
        return [
            Row(label, e.estimator, e.value, e.low, e.high, r.diagnostics.ess)
            for label, r in self.results.items()
            for e in r.estimates
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "policy": self.policy_label,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "target_method": self.method,
            "policy_config": self.policy.config(),
            "tuning": {str(k): v for k, v in self.tuning.items()},
            "level": self.config.level,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "table": [asdict(r) for r in self.rows()],
            "dr_difference_vs": {
                k: {"value": v, "low": lo, "high": hi} for k, (v, lo, hi) in self.differences.items()
            },
        }


def baseline_targets(data: LoggedData) -> dict[str, FloatArray]:
    """One fixed-arm target per arm (``always ARM``; no contact as ``no_contact``)."""
    return {
        ("no_contact" if a == NO_CONTACT else f"always {name}"): fixed_pi(data, a)
        for a, name in enumerate(data.arm_names)
    }


def train_from_log(
    data: LoggedData,
    policy: Policy,
    arms: ArmTable,
    holdout: float = 0.5,
    seed: int = 0,
    config: OPEConfig | None = None,
    label: str | None = None,
    tune: bool = True,
) -> OfflineRun:
    """Fit ``policy`` on a seeded random ``1 - holdout`` of the rows and evaluate it by OPE beside
    the one-arm baselines on the rest (same bootstrap resamples, one cross-fitted reward model).

    Args:
        data: the log.
        policy: a fresh policy (fitted in place).
        arms: the arm table the policy acts on (the log's arms).
        holdout: share of rows held out for evaluation, in (0, 1).
        seed: the split's seed (the OPE seed is ``config.seed``).
        config: OPE settings (default :class:`OPEConfig` with ``reward_model="gbt"``).
        label: the policy's label in the table (default its name).
        tune: for :class:`OfflineValuePolicy`, choose its ridge penalty on the training rows
            (:func:`tune_ridge`) before fitting.
    """
    cfg = config if config is not None else OPEConfig(reward_model="gbt", seed=seed)
    train, held = data.split(holdout, seed)
    tuning: dict[float, float] = {}
    if isinstance(policy, OfflineValuePolicy) and tune:
        tuning = tune_ridge(train, policy, seed=seed)
    fit_by_replay(policy, train, arms)
    label = label or policy.name
    target = target_probabilities(policy, held, arms)
    q = fit_reward_model(held, cfg.reward_model, cfg.folds, cfg.seed)
    targets = {label: target.pi, **baseline_targets(held)}
    results = evaluate_many(held, targets, cfg, q)
    diffs = {}
    for name, pi in targets.items():
        if name != label:
            d = compare(held, (label, target.pi), (name, pi), "dr", cfg, q)
            diffs[name] = (d.value, d.low, d.high)
    return OfflineRun(
        policy, label, len(train), len(held), results, diffs, target.method, cfg, held, q, tuning
    )


# -- tracking and the champion ------------------------------------------------------------------


@dataclass(frozen=True)
class ChampionDecision:
    """Whether a newly registered version became the ``champion``.

    Attributes:
        promoted: the alias moved to the new version.
        version: the new model version.
        challenger_low: the new policy's DR lower bound on the held-out rows.
        champion_value: the current champion's DR estimate on the same rows (None: no champion).
        champion_version: the champion's version before the decision.
        reason: why, in words.
    """

    promoted: bool
    version: str
    challenger_low: float
    champion_value: float | None
    champion_version: str | None
    reason: str


@dataclass(frozen=True)
class TrackedRun:
    """The MLflow run of an offline training, and the registration if one was asked for."""

    run_id: str
    experiment: str
    registration: ChampionDecision | None = None


def champion_value(run: OfflineRun, name: str, simulator: Any, tracking: str) -> tuple[float, str] | None:
    """The DR estimate of model ``name``'s current champion on ``run``'s held-out rows and its
    version, or ``None`` when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    from experiments.ope import evaluate
    from experiments.tracking import CHAMPION, client

    c = client(tracking)
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    champ = registered_policy(f"models:/{name}/{mv.version}", simulator, tracking)
    arms = simulator.arms
    pi = target_probabilities(champ, run.holdout, arms).pi
    res = evaluate(run.holdout, pi, run.config, run.q, policy="champion")
    return res.get("dr").value, str(mv.version)


def track_and_register(
    run: OfflineRun,
    simulator: Any,
    tracking: str,
    experiment: str = "offline",
    register: str | None = None,
    params: dict[str, Any] | None = None,
    artifact_location: str = "mlruns/",
) -> TrackedRun:
    """Log ``run`` to MLflow (params, metrics per policy and estimator, ``ope.json``, the saved
    policy under ``policy/``) and, with ``register``, register the policy as a new version of that
    model, moving the ``champion`` alias only when the new DR lower bound beats the champion's DR
    estimate on the same held-out rows (or there is no champion). A new MLflow experiment keeps its
    artifacts under ``artifact_location`` (a folder or URI), as :mod:`experiments.tracking` does."""
    from experiments.tracking import CHAMPION, client, flatten

    c = client(tracking)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        root = artifact_location
        if "://" not in root and not root.startswith("file:"):
            root = (Path(root).expanduser().resolve() / experiment).as_uri()
        exp_id = c.create_experiment(experiment, artifact_location=root)
    else:
        exp_id = exp.experiment_id
    mlrun = c.create_run(exp_id, tags={"campaign_opt.role": "offline", "policy": run.policy_label})
    rid = mlrun.info.run_id
    flat = flatten(
        {
            "policy": run.policy_label,
            "policy_config": run.policy.config(),
            "train_rows": run.train_rows,
            "holdout_rows": run.holdout_rows,
            "ope": {k: v for k, v in asdict(run.config).items()},
            **(params or {}),
        }
    )
    for k, v in flat.items():
        c.log_param(rid, k[:250], v[:6000])
    for label, res in run.results.items():
        key = "learned" if label == run.policy_label else label.replace(" ", "_").replace("/", "_")
        for e in res.estimates:
            for what in ("value", "low", "high"):
                x = getattr(e, what)
                if math.isfinite(x):
                    c.log_metric(rid, f"{key}.{e.estimator}.{what}", x)
        c.log_metric(rid, f"{key}.ess", res.diagnostics.ess)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ope.json").write_text(
            json.dumps(run.to_dict(), indent=2, default=float), encoding="utf-8"
        )
        c.log_artifact(rid, str(Path(tmp) / "ope.json"))
        run.policy.save(Path(tmp) / "policy")
        c.log_artifacts(rid, str(Path(tmp) / "policy"), artifact_path="policy")
    decision = None
    if register:
        decision = _register(c, run, simulator, tracking, register, rid, CHAMPION)
        c.set_tag(rid, "champion_decision", decision.reason)
    c.set_terminated(rid, "FINISHED")
    return TrackedRun(rid, experiment, decision)


def _register(
    c: Any, run: OfflineRun, simulator: Any, tracking: str, name: str, rid: str, alias: str
) -> ChampionDecision:
    from mlflow.exceptions import MlflowException

    current = champion_value(run, name, simulator, tracking)
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(
            name, description="A campaign policy folder (policy.json); load with serving.registry."
        )
    low = run.learned.get("dr").low
    source = c.get_run(rid).info.artifact_uri.rstrip("/") + "/policy"
    mv = c.create_model_version(
        name, source=source, run_id=rid, tags={"dr_low": str(low), "policy": run.policy_label}
    )
    version = str(mv.version)
    if current is None:
        c.set_registered_model_alias(name, alias, version)
        return ChampionDecision(
            True, version, low, None, None, f"no {alias} yet: version {version} is the {alias}"
        )
    value, old = current
    if low > value:
        c.set_registered_model_alias(name, alias, version)
        reason = (
            f"DR lower bound {low:.4f} beats the {alias} (version {old}) DR estimate {value:.4f}: "
            f"{alias} moved to {version}"
        )
        return ChampionDecision(True, version, low, value, old, reason)
    reason = (
        f"DR lower bound {low:.4f} does not beat the {alias} (version {old}) DR estimate {value:.4f} on the "
        f"same held-out rows: {alias} stays on version {old}"
    )
    return ChampionDecision(False, version, low, value, old, reason)


def format_table(rows: Sequence[Row], level: float) -> str:
    """The evaluation table as Markdown."""
    pct = f"{level:.0%}"
    lines = [f"| policy | estimator | value per customer | {pct} CI | ESS |", "|---|---|---:|---|---:|"]
    for r in rows:
        lines.append(
            f"| {r.policy} | {r.estimator} | {r.value:.4f} | [{r.low:.4f}, {r.high:.4f}] | {r.ess:,.0f} |"
        )
    return "\n".join(lines)
