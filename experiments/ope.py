"""Off-policy evaluation: what would a target policy have earned on logged data?

Estimators, written by hand on numpy (the Open Bandit Pipeline, the usual reference, does not
install on Python 3.11 with pandas 3, so its formulas are followed here instead; names as there):

* ``ips``: inverse propensity scoring, ``mean(w_i r_i)`` with ``w_i = pi(a_i|x_i) / p_i``;
* ``snips``: self-normalized IPS, ``sum(w_i r_i) / sum(w_i)``;
* ``dr``: doubly robust, ``mean(sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)))`` with a
  cross-fitted reward model ``q`` (:func:`fit_reward_model`);
* ``switch_dr``: DR whose correction term is dropped where the weight exceeds ``tau`` (the model
  alone answers there), trading a little bias for much less variance under poor overlap.

Every estimate has a percentile bootstrap interval: resamples are multinomial row counts from one
seeded generator, evaluated as matrix products (the reward model is held fixed across resamples),
so intervals of several policies on one log share their resamples and paired differences are
meaningful (:func:`evaluate_many`). Diagnostics: the effective sample size ``(sum w)^2 / sum w^2``,
the largest importance weight and its share of the total, the target's probability mass on arms the
logging policy could not take, and warnings when those look poor or the estimators disagree
beyond their intervals.

Replay (:func:`replay`, Li et al. 2011) evaluates sequential and budgeted policies, which learn
while they act, on a uniformly randomized log: rows are streamed in logged order through the
policy's ``act``; the rows where it picks the logged arm are kept, their outcomes counted and fed
back through ``update``.

A target policy's action distribution (:func:`target_probabilities`): a policy with an
``action_probabilities(ctx)`` method (the offline value policy of :mod:`experiments.offline`) gives
it exactly; any other :class:`~policies.base.Policy` is asked to ``act`` and its chosen arm is taken
as a one-hot distribution, averaged over ``samples`` calls. For a deterministic (greedy) policy
(``Decisions.pscores`` all 1) that is exact; for a stochastic one, ``E[1{chosen = a}] = pi(a|x)``,
so the estimators stay unbiased with a little more variance (the report notes it).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from experiments.logs import LoggedData
from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators.types import NO_CONTACT, ArmTable, EventBatch, EventKind, FloatArray, IntArray

Estimator = Literal["ips", "snips", "dr", "switch_dr"]
ESTIMATORS: tuple[Estimator, ...] = ("ips", "snips", "dr", "switch_dr")
RewardModelKind = Literal["ridge", "gbt"]


@dataclass(frozen=True)
class OPEConfig:
    """How :func:`evaluate` estimates.

    Attributes:
        estimators: which estimators to compute.
        n_bootstrap: bootstrap resamples for the intervals (0: no intervals).
        level: interval coverage (0.95: a 95% percentile interval).
        seed: seed of the bootstrap generator.
        tau: Switch-DR's weight threshold; ``None`` picks it per target from the quantiles of the
            positive weights by the smallest estimated MSE (the squared gap to DR, DR being
            unbiased, plus the variance of the per-row terms over ``n``), as the Open Bandit
            Pipeline's tuning does.
        reward_model: ``ridge`` (per-arm ridge regression) or ``gbt`` (per-arm histogram
            gradient boosting) for DR's ``q``.
        folds: cross-fitting folds of the reward model.
    """

    estimators: tuple[Estimator, ...] = ESTIMATORS
    n_bootstrap: int = 500
    level: float = 0.95
    seed: int = 0
    tau: float | None = None
    reward_model: RewardModelKind = "ridge"
    folds: int = 2

    def __post_init__(self) -> None:
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown or not self.estimators:
            raise ValueError(f"estimators: unknown {unknown}; allowed: {list(ESTIMATORS)}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.n_bootstrap < 0 or self.folds < 2 or (self.tau is not None and not self.tau > 0):
            raise ValueError("n_bootstrap >= 0, folds >= 2 and tau > 0 are required")


@dataclass(frozen=True)
class Estimate:
    """One estimator's value of one policy per logged row (e.g. net dollars per customer).

    Attributes:
        estimator: the estimator's name.
        value: the point estimate.
        low, high: the bootstrap interval (NaN without bootstrap).
        std: bootstrap standard deviation (NaN without bootstrap).
    """

    estimator: str
    value: float
    low: float
    high: float
    std: float


@dataclass(frozen=True)
class Diagnostics:
    """How much the log says about the target policy.

    Attributes:
        n: logged rows.
        ess: effective sample size of the importance weights, ``(sum w)^2 / sum w^2``.
        max_weight: the largest importance weight.
        max_weight_share: the largest weight over the sum of weights.
        matched: rows where the target gives the logged arm positive probability.
        unsupported_mass: average target probability on arms the logging policy could not take.
        warnings: what looks wrong, in words.
    """

    n: int
    ess: float
    max_weight: float
    max_weight_share: float
    matched: int
    unsupported_mass: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class OPEResult:
    """The estimates of one target policy on one log, with diagnostics."""

    policy: str
    estimates: tuple[Estimate, ...]
    diagnostics: Diagnostics
    level: float
    tau: float | None = None
    """Switch-DR's weight threshold (chosen or given)."""

    def get(self, estimator: str) -> Estimate:
        """The estimate of ``estimator``."""
        for e in self.estimates:
            if e.estimator == estimator:
                return e
        raise KeyError(f"no {estimator!r} estimate; have {[e.estimator for e in self.estimates]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "policy": self.policy,
            "level": self.level,
            "switch_tau": self.tau,
            "estimates": {e.estimator: asdict(e) for e in self.estimates},
            "diagnostics": asdict(self.diagnostics),
        }


# -- the reward model ---------------------------------------------------------------------------


def fit_reward_model(
    data: LoggedData, kind: RewardModelKind = "ridge", folds: int = 2, seed: int = 0
) -> FloatArray:
    """Cross-fitted per-arm models of the reward given the features.

    Rows are split into ``folds`` seeded folds; each fold's predictions come from models fitted on
    the other folds, one model per arm on that arm's rows (an arm with fewer than 10 rows there is
    predicted by its mean, or the overall mean).

    Args:
        data: the log.
        kind: ``ridge`` (sklearn ``Ridge``, alpha 1) or ``gbt`` (``HistGradientBoostingRegressor``).
        folds: number of folds (>= 2).
        seed: seeds the fold assignment and the boosting.

    Returns:
        ``(n, n_arms)`` predicted reward of every row under every arm.
    """
    n, k = len(data), data.n_arms
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    q = np.zeros((n, k))
    x = data.features.astype(np.float64)
    for f in range(folds):
        test, train = fold == f, fold != f
        for a in range(k):
            rows = train & (data.action == a)
            q[test, a] = _fit_predict(x[rows], data.reward[rows], x[test], kind, seed, data.reward[train])
    return q


def _fit_predict(
    x: FloatArray, y: FloatArray, x_new: FloatArray, kind: RewardModelKind, seed: int, fallback: FloatArray
) -> FloatArray:
    if y.shape[0] < 10:
        return np.full(
            x_new.shape[0], float(y.mean()) if y.size else float(fallback.mean()) if fallback.size else 0.0
        )
    if kind == "gbt":
        from sklearn.ensemble import HistGradientBoostingRegressor

        model: Any = HistGradientBoostingRegressor(
            max_iter=100, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=200, random_state=seed
        )
    else:
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0)
    model.fit(x, y)
    return np.asarray(model.predict(x_new), dtype=np.float64)


# -- estimators ---------------------------------------------------------------------------------


def importance_weights(data: LoggedData, pi: FloatArray) -> FloatArray:
    """``(n,)`` ``pi(a_i | x_i) / p_i`` for target probabilities ``pi`` of shape ``(n, n_arms)``."""
    return pi[np.arange(len(data)), data.action] / data.pscore


def _terms(
    data: LoggedData, pi: FloatArray, q: FloatArray | None, estimator: Estimator, tau: float
) -> tuple[FloatArray, FloatArray]:
    """Per-row numerator and denominator: the estimate is ``sum(num) / sum(den)``."""
    w = importance_weights(data, pi)
    r = data.reward
    ones = np.ones_like(w)
    if estimator == "ips":
        return w * r, ones
    if estimator == "snips":
        return w * r, w
    if q is None:
        raise ValueError(f"{estimator} needs a reward model")
    direct = np.sum(pi * q, axis=1)
    correction = w * (r - q[np.arange(len(data)), data.action])
    if estimator == "switch_dr":
        correction = np.where(w <= tau, correction, 0.0)
    return direct + correction, ones


def dr_terms(data: LoggedData, pi: FloatArray, q: FloatArray) -> FloatArray:
    """``(n,)`` per-row doubly robust terms (their mean is the DR estimate)."""
    return _terms(data, pi, q, "dr", math.inf)[0]


def choose_tau(data: LoggedData, pi: FloatArray, q: FloatArray | None) -> float:
    """Switch-DR's threshold with the smallest estimated MSE among the quantiles (50% to 100%) of
    the positive importance weights.

    The MSE of threshold ``tau`` is estimated as ``(|gap| + 2 se(gap))^2 + var(terms_tau) / n``,
    where ``gap`` is the mean of the correction terms Switch-DR drops (its bias against DR, which
    is unbiased) and ``se(gap)`` that mean's standard error: a bias upper bound, so the model is
    trusted alone only where dropping the corrections saves more variance than the bias could
    cost (with the plain squared gap, a noisy gap near 0 would pick the reward model alone even on
    a uniform log). Without a reward model: the largest weight (Switch-DR is DR).
    """
    w = importance_weights(data, pi)
    pos = w[w > 0]
    if q is None or pos.size == 0:
        return float(pos.max()) if pos.size else 1.0
    n = len(data)
    best, best_mse = float(pos.max()), math.inf
    for tau in np.unique(np.quantile(pos, [0.5, 0.75, 0.9, 0.95, 0.99, 1.0])):
        t = _terms(data, pi, q, "switch_dr", float(tau))[0]
        dropped = _terms(data, pi, q, "dr", math.inf)[0] - t
        gap = abs(float(dropped.mean())) + 2.0 * float(dropped.std()) / math.sqrt(n)
        mse = gap**2 + float(t.var()) / n
        if mse < best_mse:
            best, best_mse = float(tau), mse
    return best


def _bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator, chunk: int) -> Any:
    """Multinomial resample counts, ``chunk`` resamples at a time: arrays ``(b, n)``."""
    done = 0
    p = np.full(n, 1.0 / n)
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield rng.multinomial(n, p, size=b).astype(np.float64)
        done += b


def bootstrap_ratios(
    terms: Sequence[tuple[FloatArray, FloatArray]], n_boot: int, seed: int, chunk: int = 64
) -> FloatArray:
    """Bootstrap distribution of ``sum(num) / sum(den)`` for several term pairs on the same resamples.

    Args:
        terms: ``k`` pairs of ``(n,)`` numerator and denominator terms.
        n_boot: resamples.
        seed: the generator's seed (same seed and ``n``: same resamples).
        chunk: resamples drawn at once (memory ``chunk * n`` floats).

    Returns:
        ``(n_boot, k)`` the ratio in each resample.
    """
    if not terms:
        return np.zeros((n_boot, 0))
    num = np.stack([t[0] for t in terms], axis=1)  # (n, k)
    den = np.stack([t[1] for t in terms], axis=1)
    rng = np.random.default_rng(seed)
    out = [
        (c @ num) / np.where((d := c @ den) == 0, np.nan, d)
        for c in _bootstrap_counts(num.shape[0], n_boot, rng, chunk)
    ]
    return np.concatenate(out, axis=0) if out else np.zeros((0, num.shape[1]))


def _interval(samples: FloatArray, level: float) -> tuple[float, float, float]:
    s = samples[np.isfinite(samples)]
    if s.size < 2:
        return math.nan, math.nan, math.nan
    lo, hi = np.quantile(s, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi), float(s.std(ddof=1))


def diagnose(data: LoggedData, pi: FloatArray, estimates: Sequence[Estimate] = ()) -> Diagnostics:
    """Effective sample size, largest weight, support, and warnings (see :class:`Diagnostics`)."""
    n = len(data)
    w = importance_weights(data, pi)
    total = float(w.sum())
    ess = total**2 / float(np.sum(w**2)) if total > 0 else 0.0
    support = data.mask.copy()
    if data.contacts_only:
        support[:, NO_CONTACT] = False
    unsupported = float(np.sum(pi * ~support) / n) if n else 0.0
    max_w = float(w.max()) if n else 0.0
    share = max_w / total if total > 0 else math.nan
    warnings: list[str] = []
    if data.contacts_only:
        warnings.append(
            "the log holds contacts only (no-contact decisions are not exported): values are "
            "conditional on contact and no contact has no support"
        )
    if unsupported > 0.01:
        warnings.append(
            f"poor support: the target puts {unsupported:.1%} of its probability on arms the logging "
            "policy could not take (IPS and SNIPS are biased toward 0 there)"
        )
    if n and ess < max(0.05 * n, 300):
        warnings.append(
            f"few effective samples: ESS {ess:.0f} of {n} rows ({ess / n:.1%}); with heavy-tailed rewards "
            "the bootstrap intervals may under-cover"
        )
    if n and share > 0.05:
        warnings.append(
            f"one row carries {share:.0%} of the total importance weight (max weight {max_w:.3g})"
        )
    finite = [e for e in estimates if math.isfinite(e.low) and math.isfinite(e.high)]
    for i, a in enumerate(finite):
        for b in finite[i + 1 :]:
            if a.high < b.low or b.high < a.low:
                warnings.append(
                    f"{a.estimator} ({a.value:.4g}) and {b.estimator} ({b.value:.4g}) disagree beyond "
                    "their intervals: the reward model or the propensities are suspect"
                )
    return Diagnostics(
        n=n,
        ess=ess,
        max_weight=max_w,
        max_weight_share=share,
        matched=int(np.count_nonzero(w > 0)),
        unsupported_mass=unsupported,
        warnings=tuple(warnings),
    )


def evaluate(
    data: LoggedData,
    pi: FloatArray,
    config: OPEConfig = OPEConfig(),
    q: FloatArray | None = None,
    policy: str = "target",
) -> OPEResult:
    """Estimate the value per row of target probabilities ``pi`` on ``data``.

    Args:
        data: the log.
        pi: ``(n, n_arms)`` target probabilities per row (rows sum to 1).
        config: estimators, bootstrap and reward model.
        q: ``(n, n_arms)`` reward model predictions (default: :func:`fit_reward_model`, fitted
            only when a DR estimator is asked for).
        policy: the policy's label in the result.
    """
    return evaluate_many(data, {policy: pi}, config, q)[policy]


def evaluate_many(
    data: LoggedData,
    targets: Mapping[str, FloatArray],
    config: OPEConfig = OPEConfig(),
    q: FloatArray | None = None,
) -> dict[str, OPEResult]:
    """:func:`evaluate` for several targets on the same bootstrap resamples (one reward model)."""
    _check_pi(data, targets)
    if q is None and any(e in ("dr", "switch_dr") for e in config.estimators):
        q = fit_reward_model(data, config.reward_model, config.folds, config.seed)
    out: dict[str, OPEResult] = {}
    for name, pi in targets.items():
        tau = config.tau if config.tau is not None else choose_tau(data, pi, q)
        terms = [_terms(data, pi, q, e, tau) for e in config.estimators]
        boot = bootstrap_ratios(terms, config.n_bootstrap, config.seed) if config.n_bootstrap else None
        ests = []
        for j, (e, (num, den)) in enumerate(zip(config.estimators, terms, strict=True)):
            value = float(num.sum() / den.sum()) if den.sum() != 0 else math.nan
            lo, hi, sd = _interval(boot[:, j], config.level) if boot is not None else (math.nan,) * 3
            ests.append(Estimate(e, value, lo, hi, sd))
        out[name] = OPEResult(name, tuple(ests), diagnose(data, pi, ests), config.level, tau)
    return out


@dataclass(frozen=True)
class Difference:
    """``value(a) - value(b)`` under one estimator, with its paired bootstrap interval."""

    a: str
    b: str
    estimator: str
    value: float
    low: float
    high: float


def compare(
    data: LoggedData,
    a: tuple[str, FloatArray],
    b: tuple[str, FloatArray],
    estimator: Estimator = "dr",
    config: OPEConfig = OPEConfig(),
    q: FloatArray | None = None,
) -> Difference:
    """Paired difference of two targets' values on the same resamples (a tighter test than
    comparing their separate intervals)."""
    if q is None and estimator in ("dr", "switch_dr"):
        q = fit_reward_model(data, config.reward_model, config.folds, config.seed)
    taus = [config.tau if config.tau is not None else choose_tau(data, pi, q) for pi in (a[1], b[1])]
    ta, tb = _terms(data, a[1], q, estimator, taus[0]), _terms(data, b[1], q, estimator, taus[1])
    value = float(ta[0].sum() / ta[1].sum() - tb[0].sum() / tb[1].sum())
    boot = bootstrap_ratios([ta, tb], max(config.n_bootstrap, 2), config.seed)
    lo, hi, _ = _interval(boot[:, 0] - boot[:, 1], config.level)
    return Difference(a[0], b[0], estimator, value, lo, hi)


def _check_pi(data: LoggedData, targets: Mapping[str, FloatArray]) -> None:
    for name, pi in targets.items():
        if pi.shape != (len(data), data.n_arms):
            raise ValueError(
                f"{name}: target probabilities of shape {pi.shape}, expected {(len(data), data.n_arms)}"
            )
        if len(data) and not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(f"{name}: target probabilities must sum to 1 per row")


# -- target policies ----------------------------------------------------------------------------


@runtime_checkable
class HasActionProbabilities(Protocol):
    """A policy that can say its whole action distribution."""

    def action_probabilities(self, ctx: DecisionContext) -> FloatArray:
        """``(n, n_arms)`` probability of each arm per candidate."""
        ...


def context_for(
    data: LoggedData,
    arms: ArmTable,
    rows: IntArray | None = None,
    iteration: int = 0,
    iterations_left: int = 1,
    budget: float = 1e12,
) -> DecisionContext:
    """A :class:`DecisionContext` for logged rows (all rows by default): their features and masks,
    a budget (default: no limit) and a revenue goal no campaign reaches."""
    idx = np.arange(len(data)) if rows is None else np.asarray(rows, np.int64)
    if len(arms) != data.n_arms:
        raise ValueError(f"the log has {data.n_arms} arms, the arm table {len(arms)}")
    customers = data.customer[idx] if data.customer is not None else idx
    return DecisionContext(
        customers=np.asarray(customers, np.int64),
        features=data.features[idx],
        mask=data.mask[idx],
        arms=arms,
        iteration=iteration,
        iterations_left=iterations_left,
        budget_available=budget,
        goal_metric="revenue",
        goal_remaining=1e12,
    )


@dataclass(frozen=True)
class TargetDistribution:
    """A target policy's action probabilities on a log.

    Attributes:
        pi: ``(n, n_arms)`` probabilities per row.
        method: ``exact`` (the policy's ``action_probabilities``), ``deterministic`` (greedy:
            every chosen arm had pscore 1) or ``sampled`` (one-hot of sampled choices, averaged).
        samples: act calls averaged (``sampled``).
    """

    pi: FloatArray
    method: str
    samples: int = 1


def target_probabilities(
    policy: Policy, data: LoggedData, arms: ArmTable, samples: int = 1
) -> TargetDistribution:
    """The target policy's action distribution on every logged row, without changing the policy
    (a copy acts). Rows are presented as one batch per logged iteration (all rows as one batch
    when the log has no iterations). See the module docstring for the three methods."""
    pol = copy.deepcopy(policy)
    n, k = len(data), data.n_arms
    pi = np.zeros((n, k))
    groups = _batches(data)
    if isinstance(pol, HasActionProbabilities):
        for t, rows in groups:
            pi[rows] = pol.action_probabilities(context_for(data, arms, rows, t))
        return TargetDistribution(pi / pi.sum(axis=1, keepdims=True), "exact")
    all_one = True
    for _ in range(max(samples, 1)):
        for t, rows in groups:
            dec = pol.act(context_for(data, arms, rows, t))
            chosen = np.asarray(dec.arms, np.int64)
            pi[rows, chosen] += 1.0
            all_one &= bool(np.all(np.asarray(dec.pscores) >= 1.0 - 1e-12))
    pi /= max(samples, 1)
    return TargetDistribution(pi, "deterministic" if all_one else "sampled", max(samples, 1))


def _batches(data: LoggedData) -> list[tuple[int, IntArray]]:
    if data.iteration is None:
        return [(0, np.arange(len(data)))]
    return [(int(t), np.flatnonzero(data.iteration == t)) for t in np.unique(data.iteration)]


# -- replay -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """Replay (Li et al. 2011) of a learning policy on a uniformly randomized log.

    Attributes:
        value: mean reward per matched row (the policy's value per decision).
        low, high: a normal interval from the matched rows' standard error.
        matched: rows where the policy picked the logged arm.
        n: rows streamed.
        history: per batch ``(iteration, matched, reward sum)``.
    """

    value: float
    low: float
    high: float
    matched: int
    n: int
    history: tuple[tuple[int, int, float], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {k: v for k, v in asdict(self).items() if k != "history"}


def is_uniform(data: LoggedData, atol: float = 1e-6) -> bool:
    """Every row's pscore is one over its number of allowed arms (a uniformly randomized log)."""
    return bool(np.allclose(data.pscore, 1.0 / data.mask.sum(axis=1), atol=atol))


def feedback_events(data: LoggedData, rows: IntArray, ids: IntArray, iteration: int) -> EventBatch:
    """The events a log implies for ``rows`` (decision ids ``ids``): a ``delivered`` event per
    contact (the log does not record deliveries; assumed) and a ``converted`` event with the
    row's revenue and offer cost (cost above the arm's send cost) per conversion."""
    a = data.action[rows]
    contact = a != NO_CONTACT
    conv = data.conversion[rows] > 0
    parts = []
    for m, kind in ((contact, EventKind.DELIVERED), (conv, EventKind.CONVERTED)):
        k = int(np.count_nonzero(m))
        parts.append(
            EventBatch(
                decision_id=np.where(contact[m], ids[m], -1).astype(np.int64),
                customer=(data.customer[rows][m] if data.customer is not None else rows[m]).astype(np.int64),
                kind=np.full(k, int(kind), np.int8),
                iteration=np.full(k, iteration, np.int64),
                revenue=data.revenue[rows][m] if kind == EventKind.CONVERTED else np.zeros(k),
                offer_cost=(
                    np.maximum(data.cost[rows][m] - data.arm_cost[a[m]], 0.0)
                    if kind == EventKind.CONVERTED
                    else np.zeros(k)
                ),
            )
        )
    return EventBatch.concat(parts)


def replay(
    policy: Policy,
    data: LoggedData,
    arms: ArmTable,
    batch_size: int = 1000,
    budget: float | None = None,
    level: float = 0.95,
    learn: bool = True,
) -> ReplayResult:
    """Replay a (learning, possibly budgeted) policy on a uniformly randomized log.

    Rows stream in logged order: one batch per logged iteration, else batches of ``batch_size``.
    The policy acts on every row of a batch; rows where it picks the logged arm are kept and, with
    ``learn``, fed back through ``update`` (context, decisions and events of the kept rows only).
    With a ``budget`` (dollars for the whole log), the policy sees what is left of it; a kept row
    spends its cost over its pscore (a uniform log keeps one row in ``1 / pscore``, so the kept
    rows stand for the whole stream). The policy learns in place.

    Raises:
        ValueError: the log is not uniformly randomized (replay would be biased).
    """
    if not is_uniform(data):
        raise ValueError("replay needs a uniformly randomized log (pscore = 1 / allowed arms on every row)")
    pol = policy
    if data.iteration is not None:
        batches = _batches(data)
    else:
        batches = [
            (i, np.arange(s, min(s + batch_size, len(data))))
            for i, s in enumerate(range(0, len(data), batch_size))
        ]
    kept_reward: list[FloatArray] = []
    history = []
    spent, next_id = 0.0, 0
    for j, (t, rows) in enumerate(batches):
        left = 1e12 if budget is None else max(budget - spent, 0.0)
        ctx = context_for(data, arms, rows, t, len(batches) - j, left)
        dec = pol.act(ctx)
        keep = np.flatnonzero(np.asarray(dec.arms, np.int64) == data.action[rows])
        krows = rows[keep]
        kept_reward.append(data.reward[krows])
        spent += float(np.sum(data.cost[krows] / data.pscore[krows]))
        history.append((t, int(keep.size), float(data.reward[krows].sum())))
        if learn and keep.size:
            ids = np.arange(next_id, next_id + keep.size, dtype=np.int64)
            next_id += keep.size
            sub = context_for(data, arms, krows, t, len(batches) - j, ctx.budget_available)
            decisions = Decisions(
                arms=data.action[krows].copy(),
                pscores=np.asarray(dec.pscores, np.float64)[keep],
                priority=None,
            )
            ids_sent = np.where(data.action[krows] != NO_CONTACT, ids, -1)
            pol.update(Feedback(sub, decisions, ids_sent, feedback_events(data, krows, ids, t)))
    r = np.concatenate(kept_reward) if kept_reward else np.zeros(0)
    m = r.shape[0]
    value = float(r.mean()) if m else math.nan
    se = float(r.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    from scipy.stats import norm

    z = float(norm.ppf((1 + level) / 2))
    return ReplayResult(value, value - z * se, value + z * se, m, len(data), tuple(history))
