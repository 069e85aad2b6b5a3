"""Learning from logs: fit a policy on logged data, evaluate it off-policy on held-out rows, track
it in MLflow and register it when it beats the champion.

* :class:`OfflineValuePolicy` (``offline_value``): a per-arm ridge model of the net value
  ``revenue * margin - cost`` on the features and their pairwise products, greedy with epsilon
  exploration over the allowed arms, so its action probabilities are known exactly
  (``action_probabilities``). It learns from a log in one pass (:meth:`OfflineValuePolicy.fit`,
  importance-weighted by ``1 / pscore`` so non-uniform logs do not tilt the per-arm fits) or from
  campaign feedback through ``update`` (sufficient statistics, so both give the same model).
* :func:`fit_by_replay`: any catalogue learning policy learns from a log by replaying its rows,
  in logged order, as ``Feedback`` through ``update`` (the logged arms as its decisions).
* :func:`train_from_log`: split, fit, evaluate with :mod:`experiments.ope` beside the one-arm
  baselines on the held-out part; :func:`track_and_register` logs it to MLflow and moves the
  ``champion`` alias only when the new policy's DR lower bound beats the champion's DR estimate
  on the same held-out rows.

The policy lives here until it has a catalogue entry in :mod:`policies.registry` (it is training
code's product; :func:`load_any_policy` loads it and every catalogue policy).

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
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from experiments.logs import LoggedData, lookup
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
from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators.types import NO_CONTACT, ArmTable, EventKind, FloatArray, IntArray

# -- the offline value policy -------------------------------------------------------------------


def value_basis(features: NDArray[np.floating[Any]], interactions: bool = True) -> FloatArray:
    """``(n, 1 + d + d (d + 1) / 2)``: intercept, features and their pairwise products (squares
    included), the basis of :class:`OfflineValuePolicy`'s per-arm models; ``(n, 1 + d)`` without
    ``interactions``."""
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    if not interactions:
        return np.concatenate([np.ones((n, 1)), x], axis=1)
    iu, ju = np.triu_indices(d)
    return np.concatenate([np.ones((n, 1)), x, x[:, iu] * x[:, ju]], axis=1)


class OfflineValuePolicy(Policy):
    """Greedy on a per-arm ridge model of net value, epsilon-exploring among allowed arms.

    Propensity of arm ``a``: ``(1 - epsilon) [a is the greedy arm] + epsilon / allowed arms``;
    no contact is an arm like the others (its value is the organic net value).

    Args:
        epsilon: exploration probability (> 0 keeps every allowed arm's propensity positive).
        ridge: ridge penalty on the basis coefficients (the intercept is not penalized).
        margin: profit share of revenue when learning from campaign feedback (logs carry their
            own net value).
        interactions: add the features' pairwise products to the basis (for few features and
            many rows per arm, like Hillstrom's 11 and thousands; off for many arms).
        seed: the policy's seed.
    """

    name: ClassVar[str] = "offline_value"

    def __init__(
        self,
        epsilon: float = 0.05,
        ridge: float = 10.0,
        margin: float = 0.35,
        interactions: bool = True,
        seed: int | None = None,
    ):
        super().__init__(seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        if not (ridge > 0 and math.isfinite(ridge)):
            raise ValueError(f"ridge must be a positive finite number, got {ridge}")
        self.epsilon, self.ridge, self.margin, self.interactions = epsilon, ridge, margin, interactions
        self.xtx: FloatArray | None = None  # (n_arms, p, p)
        self.xty: FloatArray | None = None  # (n_arms, p)
        self.weight: FloatArray | None = None  # (n_arms,)
        self._coef: FloatArray | None = None

    def config(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "ridge": self.ridge,
            "margin": self.margin,
            "interactions": self.interactions,
            "seed": self.seed,
        }

    # learning
    def _ensure(self, n_arms: int, n_features: int) -> None:
        p = value_basis(np.zeros((1, n_features)), self.interactions).shape[1]
        if self.xtx is None:
            self.xtx, self.xty, self.weight = (
                np.zeros((n_arms, p, p)),
                np.zeros((n_arms, p)),
                np.zeros(n_arms),
            )
        elif self.xtx.shape != (n_arms, p, p):
            raise ValueError(
                f"the policy was fitted on {self.xtx.shape[0]} arms and a basis of {self.xtx.shape[1]}, "
                f"got {n_arms} arms and {n_features} features"
            )

    def observe(
        self,
        features: NDArray[np.floating[Any]],
        arms: IntArray,
        values: FloatArray,
        weights: FloatArray,
        n_arms: int,
    ) -> None:
        """Add observations: ``(n, d)`` features, ``(n,)`` arms, net values and weights."""
        self._ensure(n_arms, features.shape[1])
        assert self.xtx is not None and self.xty is not None and self.weight is not None
        b = value_basis(features, self.interactions)
        for a in np.unique(arms):
            m = arms == a
            bw = b[m] * weights[m, None]
            self.xtx[a] += bw.T @ b[m]
            self.xty[a] += bw.T @ values[m]
            self.weight[a] += weights[m].sum()
        self._coef = None

    def fit(self, data: LoggedData, weighted: bool = True) -> OfflineValuePolicy:
        """Learn from a whole log (weights ``1 / pscore`` when ``weighted``, normalized per arm to
        the arm's row count); returns ``self``."""
        w = 1.0 / data.pscore if weighted else np.ones(len(data))
        for a in range(data.n_arms):
            m = data.action == a
            if m.any():
                w[m] *= m.sum() / w[m].sum()
        self.observe(data.features, data.action, data.reward, w, data.n_arms)
        return self

    def update(self, feedback: Feedback) -> None:
        """Learn from one iteration's decisions and the events observed in it (conversions
        joined on the decision id, organic ones of customers not contacted on the customer; a
        conversion that arrives in a later iteration is not counted)."""
        ctx, dec, ev = feedback.ctx, feedback.decisions, feedback.events
        arms = np.asarray(dec.arms, np.int64)
        n = arms.shape[0]
        conv = ev.kind == EventKind.CONVERTED
        revenue, offer = np.zeros(n), np.zeros(n)
        sent = conv & (ev.decision_id >= 0)
        organic = conv & (ev.decision_id < 0)
        for sel, (row, hit) in (
            (sent, lookup(np.asarray(feedback.decision_ids, np.int64), ev.decision_id[sent])),
            (organic, lookup(np.asarray(ctx.customers, np.int64), ev.customer[organic])),
        ):
            if sel is organic:
                hit &= arms[row] == NO_CONTACT
            np.add.at(revenue, row[hit], ev.revenue[sel][hit])
            np.add.at(offer, row[hit], ev.offer_cost[sel][hit])
        value = revenue * self.margin - ctx.arms.send_cost[arms] - offer
        self.observe(np.asarray(ctx.features, np.float64), arms, value, np.ones(n), len(ctx.arms))

    # deciding
    def coefficients(self) -> FloatArray:
        """``(n_arms, p)`` ridge coefficients (solved once per change)."""
        if self.xtx is None or self.xty is None:
            raise ValueError("the offline_value policy has not learned anything yet (fit it on a log first)")
        if self._coef is None:
            p = self.xtx.shape[1]
            pen = np.full(p, self.ridge)
            pen[0] = 1e-8
            self._coef = np.stack(
                [np.linalg.solve(self.xtx[a] + np.diag(pen), self.xty[a]) for a in range(self.xtx.shape[0])]
            )
        return self._coef

    def values(self, features: NDArray[np.floating[Any]]) -> FloatArray:
        """``(n, n_arms)`` predicted net value of each arm."""
        return np.asarray(value_basis(features, self.interactions) @ self.coefficients().T, dtype=np.float64)

    def action_probabilities(self, ctx: DecisionContext) -> FloatArray:
        """``(n, n_arms)`` the policy's exact probabilities (see the class docstring)."""
        v = np.where(ctx.mask, self.values(ctx.features), -np.inf)
        greedy = np.argmax(v, axis=1)
        allowed = np.asarray(ctx.mask, dtype=np.float64)
        pi: FloatArray = self.epsilon * allowed / allowed.sum(axis=1, keepdims=True)
        pi[np.arange(len(ctx)), greedy] += 1.0 - self.epsilon
        return pi

    def act(self, ctx: DecisionContext) -> Decisions:
        pi = self.action_probabilities(ctx)
        u = self.rng.random(len(ctx))[:, None]
        arms = np.minimum((u > np.cumsum(pi, axis=1)).sum(axis=1), pi.shape[1] - 1).astype(np.int64)
        pscores = pi[np.arange(len(ctx)), arms]
        priority = self.values(ctx.features)[np.arange(len(ctx)), arms]
        return Decisions(arms=arms, pscores=pscores, priority=priority)

    def _state(self) -> dict[str, Any]:
        if self.xtx is None or self.xty is None or self.weight is None:
            return {}
        return {"xtx": self.xtx.tolist(), "xty": self.xty.tolist(), "weight": self.weight.tolist()}

    def _restore(self, state: dict[str, Any]) -> None:
        if state:
            self.xtx = np.asarray(state["xtx"], np.float64)
            self.xty = np.asarray(state["xty"], np.float64)
            self.weight = np.asarray(state["weight"], np.float64)
        self._coef = None


OFFLINE_POLICIES: dict[str, type[Policy]] = {OfflineValuePolicy.name: OfflineValuePolicy}
"""Policies defined here (until the catalogue has them), by name."""


def load_any_policy(folder: str | Path, simulator: Any) -> Policy:
    """A saved policy folder: one of :data:`OFFLINE_POLICIES` or any catalogue policy.

    Raises:
        policies.UnknownPolicyError: not a loadable policy folder.
    """
    from policies import UnknownPolicyError, load_policy

    file = Path(folder) / "policy.json"
    try:
        name = json.loads(file.read_text(encoding="utf-8")).get("policy")
    except (OSError, ValueError, AttributeError) as err:
        raise UnknownPolicyError(f"{file} is not a readable policy file: {err}") from None
    if name in OFFLINE_POLICIES:
        try:
            return OFFLINE_POLICIES[name].load(folder)
        except (KeyError, TypeError, ValueError) as err:
            raise UnknownPolicyError(f"{file} does not hold a usable {name} policy: {err!r}") from None
    return load_policy(folder, simulator)


def resolve_target(name: str, simulator: Any, seed: int | None = 0, tracking: str | None = None) -> Policy:
    """A policy to evaluate: a folder holding ``policy.json``, ``models:/NAME@ALIAS`` or
    ``models:/NAME/VERSION`` (the MLflow registry), ``offline_value[:key=value,...]``, or any
    name :func:`policies.make_policy` accepts.

    Raises:
        policies.UnknownPolicyError: unknown name or unusable folder.
        serving.registry.RegistryError: a registered policy that cannot be found.
    """
    from policies import UnknownPolicyError
    from policies.registry import parse_hyperparameters
    from serving.registry import download_policy, resolve_policy

    if name.startswith("models:/"):
        return load_any_policy(download_policy(name, tracking=tracking), simulator)
    if (Path(name) / "policy.json").is_file():
        return load_any_policy(name, simulator)
    base, _, params = name.partition(":")
    if base in OFFLINE_POLICIES:
        cls = OFFLINE_POLICIES[base]
        try:
            return cls(seed=seed, **parse_hyperparameters(cls, params))
        except ValueError as err:
            raise UnknownPolicyError(str(err)) from None
    return resolve_policy(name, simulator, seed=seed, tracking=tracking)


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
    from serving.registry import download_policy

    c = client(tracking)
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    folder = download_policy(f"models:/{name}/{mv.version}", tracking=tracking)
    champ = load_any_policy(folder, simulator)
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
