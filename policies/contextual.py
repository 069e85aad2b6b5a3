"""Contextual bandits on customer features: ``lin_ucb`` and ``lin_ts``.

Both share one Bayesian linear model of a customer's conversion probability under each arm,
``p(x, a) = phi(x, a)^T theta``, with customer features crossed with arm features: ``x`` is
``[1, features]`` (the simulator's observable features plus, with ``history``, the customer's
conversions seen during the campaign) and ``z_a = [1, channel one-hot, content one-hot, offer
one-hot, arm one-hot]``; ``phi(x, a) = x (kron) z_a`` restricted to the crossed groups
(``interactions``, by default channel and offer: every feature gets a coefficient per channel
and per offer) while the other columns (by default content and arm one-hots) get one
coefficient each (an arm-specific level, with a stronger prior toward 0). The shared blocks let
arms learn from each other. No contact is not modelled: it earns nothing toward an attributed goal.

The model keeps per-arm sufficient statistics (``sum w x x^T`` and ``sum w y x``), so the
weighted observations of the delayed-reward buffer (:mod:`policies.delayed`) update it exactly,
delayed conversions and partial negatives included, and the Kronecker structure keeps the
posterior (``A = Lambda + sum_a S_a (kron) z_a z_a^T`` on the active coefficients, about 300 on
retail) cheap to assemble and the per-(customer, arm) predictive variance cheap to evaluate for a
whole batch. For revenue goals a second ridge model predicts the revenue of a conversion from the
customer features; a value is ``p(x, a) * revenue(x)``.

The default priors (``ridge=300`` pseudo-observations on shared coefficients, ``arm_ridge=1000``
on arm levels, ``prior_rate=0.01``) suit waves of thousands of customers with conversion rates
around 1%; small problems want weaker priors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from policies.bandits import ArmStats, LearningPolicy, contact_mask
from policies.base import DecisionContext, Decisions, Feedback
from policies.delayed import Observations
from simulators.types import NO_CONTACT, ArmTable, EventBatch, EventKind, FloatArray, IntArray

Sampling = Literal["batch", "cell"]
"""How Thompson sampling draws: one coefficient draw per wave, or one draw per (customer, arm)."""


ARM_GROUPS: dict[str, int] = {"intercept": 0, "channel": 1, "content": 2, "offer": 3, "arm": 4}
"""Codes of the arm feature groups in :func:`arm_design`."""


def parse_interactions(text: str) -> tuple[int, ...]:
    """Arm feature groups crossed with customer features, from ``"channel,content,offer"``
    (``intercept`` is always crossed; ``""`` crosses nothing else).

    Raises:
        ValueError: an unknown group name.
    """
    names = [t.strip() for t in text.replace("+", ",").split(",") if t.strip()]
    unknown = [t for t in names if t not in ARM_GROUPS]
    if unknown:
        raise ValueError(f"unknown interaction groups {unknown}; known: {list(ARM_GROUPS)}")
    return tuple(sorted({0, *(ARM_GROUPS[t] for t in names)}))


def arm_design(arms: ArmTable) -> tuple[FloatArray, IntArray]:
    """Arm features and their groups.

    Args:
        arms: the arm table.

    Returns:
        ``(z (n_arms, d_z), group (d_z,))``: ``z`` has columns intercept, channel one-hot, content
        one-hot, offer one-hot and arm one-hot (row 0, no contact, is all zeros); ``group`` codes
        them 0 (intercept), 1 (channel), 2 (content), 3 (offer) and 4 (arm), see
        :data:`ARM_GROUPS`.
    """
    n = len(arms)
    n_ch, n_co, n_of = len(arms.channel_names), len(arms.content_names), len(arms.offer_names)
    d = 1 + n_ch + n_co + n_of + (n - 1)
    z = np.zeros((n, d))
    rows = np.arange(1, n)
    z[rows, 0] = 1.0
    z[rows, 1 + arms.channel[1:]] = 1.0
    z[rows, 1 + n_ch + arms.content[1:]] = 1.0
    z[rows, 1 + n_ch + n_co + arms.offer[1:]] = 1.0
    z[rows, 1 + n_ch + n_co + n_of + rows - 1] = 1.0
    group = np.repeat(np.arange(5), [1, n_ch, n_co, n_of, n - 1]).astype(np.int64)
    return z, group


def with_intercept(features: NDArray[np.floating[Any]]) -> FloatArray:
    """``(n, 1 + n_features)`` features with a leading column of ones."""
    x = np.asarray(features, dtype=np.float64)
    return np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)


class KroneckerRidge:
    """Bayesian ridge regression ``y ~ N(([1, x] kron z_a)^T theta, noise)`` over arms.

    Only the ``crossed`` groups of arm columns are crossed with the customer features; the others
    (by default the arm one-hots: an arm-specific level on top of the shared channel, content and
    offer effects and their feature interactions) with the intercept only, which keeps the number
    of coefficients at ``(1 + n_features) * n_crossed_columns + n_other_columns``.
    The prior is ``theta ~ N(m0, noise * Lambda^-1)`` with ``Lambda`` diagonal: ``ridge`` on the
    shared arm columns and ``arm_ridge`` on the arm one-hot columns (pseudo-observations);
    ``m0`` puts ``prior_rate`` on the intercept-by-intercept coefficient, so every contact arm
    starts at that rate.

    Args:
        n_features: customer features (without the intercept).
        design: ``(n_arms, d_z)`` arm features (see :func:`arm_design`).
        group: ``(d_z,)`` group code of each arm column (see :func:`arm_design`).
        ridge: prior precision of shared coefficients.
        arm_ridge: prior precision of arm-specific coefficients.
        prior_rate: prior mean outcome of every contact arm.
        crossed: groups whose columns are crossed with the customer features (the others are
            crossed with the intercept only).
    """

    def __init__(
        self,
        n_features: int,
        design: FloatArray,
        group: IntArray,
        ridge: float,
        arm_ridge: float,
        prior_rate: float,
        crossed: tuple[int, ...] = (0, 1, 2, 3),
    ) -> None:
        self.design = np.asarray(design, dtype=np.float64)
        self.group = np.asarray(group, dtype=np.int64)
        self.n_arms, self.d_z = self.design.shape
        self.d_x = n_features + 1
        self.d = self.d_x * self.d_z
        self.crossed = tuple(int(g) for g in crossed)
        col = np.where(self.group == ARM_GROUPS["arm"], arm_ridge, ridge)
        self.precision = np.tile(col, self.d_x)  # index j * d_z + l
        self.prior_mean = np.zeros(self.d)
        self.prior_mean[0] = prior_rate
        active = np.ones((self.d_x, self.d_z), dtype=bool)
        active[1:, ~np.isin(self.group, self.crossed)] = False
        self.active_index = np.flatnonzero(active.ravel())
        self.S = np.zeros((self.n_arms, self.d_x, self.d_x))
        self.r = np.zeros((self.n_arms, self.d_x))
        self.weight = 0.0
        self.total = 0.0
        self._cache: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self._chol_inv: FloatArray | None = None

    def add(self, arm: IntArray, features: NDArray[np.floating[Any]], y: FloatArray, w: FloatArray) -> None:
        """Add weighted observations.

        Args:
            arm: ``(m,)`` arms (no contact rows are ignored).
            features: ``(m, n_features)``.
            y: ``(m,)`` outcomes.
            w: ``(m,)`` weights (negative ones withdraw earlier observations).
        """
        x = with_intercept(features)
        for a in np.unique(arm):
            if a == NO_CONTACT:
                continue
            sel = arm == a
            xa, wa = x[sel], w[sel]
            self.S[a] += (xa * wa[:, None]).T @ xa
            self.r[a] += xa.T @ (wa * y[sel])
        contact = arm != NO_CONTACT
        self.weight += float(w[contact].sum())
        self.total += float((w * y)[contact].sum())
        self._cache = None

    def posterior(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(W (d_x, d_z), M (n_arms, d_x, d_x), A^-1 (d, d))``: the posterior mean of the
        coefficients and, per arm, the matrix with ``x^T M_a x = phi(x, a)^T A^-1 phi(x, a)``
        (inactive coefficients are fixed at 0: zero rows and columns in ``A^-1``)."""
        if self._cache is None:
            dx, dz, idx = self.d_x, self.d_z, self.active_index
            zz = np.einsum("al,am->alm", self.design, self.design)
            A4 = np.tensordot(self.S, zz, axes=([0], [0]))  # (j, k, l, m)
            A = A4.transpose(0, 2, 1, 3).reshape(self.d, self.d)[np.ix_(idx, idx)]
            A[np.diag_indices_from(A)] += self.precision[idx]
            b = (self.r.T @ self.design).reshape(self.d)[idx] + (self.precision * self.prior_mean)[idx]
            L = np.linalg.cholesky(A)
            Linv = np.linalg.solve(L, np.eye(idx.size))
            self._chol_inv = np.asarray(Linv, dtype=np.float64)
            Ainv_act = Linv.T @ Linv
            theta = np.zeros(self.d)
            theta[idx] = Ainv_act @ b
            Ainv = np.zeros((self.d, self.d))
            Ainv[np.ix_(idx, idx)] = Ainv_act
            M = np.einsum(
                "jlkm,al,am->ajk", Ainv.reshape(dx, dz, dx, dz), self.design, self.design, optimize=True
            )
            self._cache = (theta.reshape(dx, dz), M, Ainv)
        return self._cache

    def sample_coefficients(self, rng: np.random.Generator, scale: float) -> FloatArray:
        """One posterior draw ``(d_x, d_z)`` of the coefficients, ``theta ~ N(mean, scale^2 A^-1)``
        (``scale``: the noise standard deviation times the exploration factor)."""
        W, _, _ = self.posterior()
        assert self._chol_inv is not None
        delta = np.zeros(self.d)
        delta[self.active_index] = self._chol_inv.T @ rng.standard_normal(self.active_index.size)
        return np.asarray(W + scale * delta.reshape(self.d_x, self.d_z), dtype=np.float64)

    def predict_with(self, coefficients: FloatArray, features: NDArray[np.floating[Any]]) -> FloatArray:
        """``(n, n_arms)`` predictions of given coefficients ``(d_x, d_z)`` (no contact: 0)."""
        out = (with_intercept(features) @ coefficients) @ self.design.T
        out[:, NO_CONTACT] = 0.0
        return np.asarray(out, dtype=np.float64)

    def predict(
        self, features: NDArray[np.floating[Any]], with_sd: bool = True
    ) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and standard deviation (in units of the noise) of ``phi(x, a)^T theta``.

        Args:
            features: ``(n, n_features)``.
            with_sd: compute the standard deviations (else zeros).

        Returns:
            ``(mean (n, n_arms), sd (n, n_arms))``; column 0 (no contact) is 0.
        """
        W, M, _ = self.posterior()
        x = with_intercept(features)
        mean = (x @ W) @ self.design.T
        sd = np.zeros_like(mean)
        if with_sd:
            for a in range(1, self.n_arms):  # a loop over arms; (x @ M_a) runs in BLAS, not einsum's C loop
                sd[:, a] = np.sqrt(np.maximum(((x @ M[a]) * x).sum(axis=1), 0.0))
        mean[:, NO_CONTACT] = 0.0
        return mean, sd

    def mean_outcome(self, default: float) -> float:
        """Weighted mean outcome over every observation (``default`` before any)."""
        return self.total / self.weight if self.weight > 0 else default

    def state(self) -> dict[str, Any]:
        return {"S": self.S.tolist(), "r": self.r.tolist(), "weight": self.weight, "total": self.total}

    def restore(self, state: dict[str, Any]) -> None:
        self.S = np.asarray(state["S"], dtype=np.float64)
        self.r = np.asarray(state["r"], dtype=np.float64)
        self.weight = float(state["weight"])
        self.total = float(state["total"])
        self._cache = None


class RevenueModel:
    """Ridge regression of a conversion's revenue on ``[1, features]`` (from conversions only).

    Args:
        n_features: customer features.
        ridge: prior precision (pseudo-conversions) toward the mean revenue.
    """

    def __init__(self, n_features: int, ridge: float = 1.0) -> None:
        self.d = n_features + 1
        self.ridge = ridge
        self.xx = np.zeros((self.d, self.d))
        self.xy = np.zeros(self.d)
        self.n = 0.0
        self.sum = 0.0

    def add(self, features: NDArray[np.floating[Any]], revenue: FloatArray) -> None:
        x = with_intercept(features)
        self.xx += x.T @ x
        self.xy += x.T @ revenue
        self.n += float(x.shape[0])
        self.sum += float(revenue.sum())

    def predict(self, features: NDArray[np.floating[Any]]) -> FloatArray:
        """``(n,)`` expected revenue of a conversion (1 before any conversion, so values are then
        proportional to conversion probabilities); at least 1% of the mean."""
        if self.n <= 0:
            return np.ones(features.shape[0])
        mean = self.sum / self.n
        prior = np.zeros(self.d)
        prior[0] = mean
        beta = np.linalg.solve(self.xx + self.ridge * np.eye(self.d), self.xy + self.ridge * prior)
        return np.asarray(np.maximum(with_intercept(features) @ beta, 0.01 * mean), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"xx": self.xx.tolist(), "xy": self.xy.tolist(), "n": self.n, "sum": self.sum}

    def restore(self, state: dict[str, Any]) -> None:
        self.xx = np.asarray(state["xx"], dtype=np.float64)
        self.xy = np.asarray(state["xy"], dtype=np.float64)
        self.n = float(state["n"])
        self.sum = float(state["sum"])


class Estimates(NamedTuple):
    """A contextual policy's estimates for one batch.

    Attributes:
        p: ``(n, n_arms)`` posterior mean conversion probability (clipped to [0, 1]; 0 for no
            contact).
        sd: ``(n, n_arms)`` its posterior standard deviation.
        revenue: ``(n,)`` expected revenue of a conversion (ones for conversion goals).
        features: ``(n, n_features)`` the model's features of the batch.
    """

    p: FloatArray
    sd: FloatArray
    revenue: FloatArray
    features: NDArray[np.float32]


class CustomerHistory:
    """Conversions seen per customer during the campaign, from every event: attributed ones and
    the organic purchases of customers who were not contacted (``decision_id == -1``).

    What a shop knows of its customers' recent purchases; it reveals the hidden purchase
    propensity that the static features only hint at. Two features per customer:
    ``converted before`` (0/1) and ``min(conversions, 3) / 3``.
    """

    n_features: ClassVar[int] = 2

    def __init__(self) -> None:
        self.conversions = np.zeros(0, dtype=np.float64)

    def observe(self, events: EventBatch) -> None:
        """Count the conversions in ``events`` (a decision's duplicate events count once)."""
        conv = events.kind == EventKind.CONVERTED
        if not np.any(conv):
            return
        ids, customers = events.decision_id[conv], events.customer[conv]
        own = ids >= 0
        _, first = np.unique(ids[own], return_index=True)
        customers = np.concatenate([customers[~own], customers[own][first]])
        self._grow(int(customers.max()) + 1)
        np.add.at(self.conversions, customers, 1.0)

    def _grow(self, size: int) -> None:
        if size > self.conversions.shape[0]:
            self.conversions = np.concatenate([self.conversions, np.zeros(size - self.conversions.shape[0])])

    def features(self, customers: IntArray) -> NDArray[np.float32]:
        """``(n, 2)`` history features of ``customers``."""
        c = np.asarray(customers, dtype=np.int64)
        self._grow(int(c.max()) + 1 if c.size else 0)
        k = self.conversions[c]
        return np.stack([np.minimum(k, 1.0), np.minimum(k, 3.0) / 3.0], axis=1).astype(np.float32)

    def state(self) -> list[float]:
        return self.conversions.tolist()

    def restore(self, state: list[float]) -> None:
        self.conversions = np.asarray(state, dtype=np.float64)


class ContextualPolicy(LearningPolicy):
    """Base of the contextual bandits: the conversion model, the revenue model and per-arm
    statistics (offer cost per conversion), built on the first context.

    Args:
        ridge: prior precision (pseudo-observations) of the shared coefficients.
        arm_ridge: prior precision of the arm-specific coefficients.
        prior_rate: prior conversion probability of every contact arm.
        history: add the customers' conversions seen during the campaign to their features
            (see :class:`CustomerHistory`).
        interactions: arm feature groups crossed with the customer features, comma-separated
            among ``channel``, ``content``, ``offer`` and ``arm`` (the others get one coefficient
            per column; see :func:`parse_interactions`).
        seed: the policy's seed.
        delay_correction: see :class:`policies.bandits.LearningPolicy`.
    """

    store_features: ClassVar[bool] = True

    def __init__(
        self,
        ridge: float = 300.0,
        arm_ridge: float = 1000.0,
        prior_rate: float = 0.01,
        history: bool = True,
        interactions: str = "channel,offer",
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(seed, delay_correction)
        if not (ridge > 0 and arm_ridge > 0 and 0 <= prior_rate <= 1):
            raise ValueError(
                "ridge and arm_ridge must be positive and prior_rate in [0, 1], "
                f"got {ridge}, {arm_ridge}, {prior_rate}"
            )
        self.history: CustomerHistory | None = CustomerHistory() if history else None
        self.interactions = interactions
        self.crossed = parse_interactions(interactions)
        self.ridge = ridge
        self.arm_ridge = arm_ridge
        self.prior_rate = prior_rate
        self.model: KroneckerRidge | None = None
        self.revenue_model: RevenueModel | None = None
        self.stats: ArmStats | None = None

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "ridge": self.ridge,
            "arm_ridge": self.arm_ridge,
            "prior_rate": self.prior_rate,
            "history": self.history is not None,
            "interactions": self.interactions,
        }

    def prepare(self, ctx: DecisionContext) -> None:
        if self.model is None:
            z, group = arm_design(ctx.arms)
            extra = CustomerHistory.n_features if self.history is not None else 0
            self._build(int(ctx.features.shape[1]) + extra, z, group)

    def decision_features(self, ctx: DecisionContext) -> NDArray[np.float32]:
        x = np.asarray(ctx.features, dtype=np.float32)
        if self.history is None:
            return x
        return np.concatenate([x, self.history.features(ctx.customers)], axis=1)

    def observe(self, feedback: Feedback) -> None:
        if self.history is not None:
            self.history.observe(feedback.events)

    def _build(self, n_features: int, design: FloatArray, group: IntArray) -> None:
        self.model = KroneckerRidge(
            n_features, design, group, self.ridge, self.arm_ridge, self.prior_rate, self.crossed
        )
        self.revenue_model = RevenueModel(n_features)
        self.stats = ArmStats(design.shape[0])

    def learn(self, obs: Observations) -> None:
        assert self.model is not None and self.revenue_model is not None and self.stats is not None
        self.model.add(obs.arm, obs.features, obs.converted, obs.weight)
        pos = (obs.converted > 0) & (obs.weight > 0)
        if np.any(pos):
            self.revenue_model.add(obs.features[pos], obs.revenue[pos])
        self.stats.add(obs)

    def noise_sd(self) -> float:
        """Standard deviation of a conversion outcome: ``sqrt(p (1 - p))`` at the mean rate."""
        assert self.model is not None
        p = float(np.clip(self.model.mean_outcome(self.prior_rate), 1e-3, 0.5))
        return float(np.sqrt(p * (1.0 - p)))

    def estimates(self, ctx: DecisionContext, with_sd: bool = True) -> Estimates:
        """Conversion probability estimates and the revenue of a conversion for the batch."""
        self.prepare(ctx)
        assert self.model is not None and self.revenue_model is not None
        x = self.decision_features(ctx)
        mean, sd = self.model.predict(x, with_sd=with_sd)
        rev = self.revenue_model.predict(x) if ctx.goal_metric == "revenue" else np.ones(len(ctx))
        return Estimates(np.clip(mean, 0.0, 1.0), sd * self.noise_sd(), rev, x)

    def expected_cost(self, p: FloatArray, arms: ArmTable) -> FloatArray:
        """``(n, n_arms)`` send cost plus conversion probability times the arm's learned offer
        cost per conversion (redemption rate times offer cost)."""
        assert self.stats is not None
        rho = self.stats.offer_cost_per_conversion(arms)
        return np.asarray(arms.send_cost, np.float64)[None, :] + p * rho[None, :]

    def _priority(self, value: FloatArray, cost: FloatArray, arms: IntArray) -> FloatArray:
        rows = np.arange(arms.shape[0])
        return np.asarray(value[rows, arms] / np.maximum(cost[rows, arms], 1e-12), dtype=np.float64)

    def _model_state(self) -> dict[str, Any]:
        if self.model is None or self.revenue_model is None or self.stats is None:
            return {}
        return {
            "n_features": self.model.d_x - 1,
            "design": self.model.design.tolist(),
            "group": self.model.group.tolist(),
            "model": self.model.state(),
            "revenue": self.revenue_model.state(),
            "stats": self.stats.state(),
            "history": None if self.history is None else self.history.state(),
        }

    def _restore_model(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._build(
            int(state["n_features"]),
            np.asarray(state["design"], dtype=np.float64),
            np.asarray(state["group"], dtype=np.int64),
        )
        assert self.model is not None and self.revenue_model is not None and self.stats is not None
        self.model.restore(state["model"])
        self.revenue_model.restore(state["revenue"])
        self.stats.restore(state["stats"])
        if self.history is not None and state.get("history") is not None:
            self.history.restore(state["history"])


def sample_argmax(
    rng: np.random.Generator,
    mean: FloatArray,
    sd: FloatArray,
    allowed: NDArray[np.bool_],
    scale: FloatArray,
    offset: FloatArray,
) -> IntArray:
    """Per customer, the allowed arm maximizing ``clip(mean + sd * eps, 0, 1) * scale - offset``
    for standard normal ``eps`` (one draw per cell); ``-1`` where nothing is allowed.

    Args:
        rng: random source.
        mean, sd: ``(n, n_arms)`` posterior of the conversion probability.
        allowed: ``(n, n_arms)`` arms that may be chosen.
        scale: ``(n, 1)`` or ``(n, n_arms)`` value of a conversion.
        offset: ``(n, n_arms)`` (or broadcastable) amount subtracted from the value.
    """
    eps = rng.standard_normal(mean.shape)
    v = np.clip(mean + sd * eps, 0.0, 1.0) * scale - offset
    arms = np.argmax(np.where(allowed, v, -np.inf), axis=1).astype(np.int64)
    return np.where(allowed.any(axis=1), arms, -1)


def mc_propensity(chosen: IntArray, samples: int, draw: Callable[[], IntArray]) -> FloatArray:
    """Monte Carlo propensity of the chosen arms under a randomized per-customer choice.

    Args:
        chosen: ``(n,)`` the arms actually chosen (the actual draw counts as one sample).
        samples: further independent draws of the same choice.
        draw: callable returning ``(n,)`` arms for a fresh draw.

    Returns:
        ``(n,)`` ``(1 + wins) / (1 + samples)``: in (0, 1], unbiased up to ``1 / (1 + samples)``.
    """
    wins = np.zeros(chosen.shape[0])
    for _ in range(samples):
        wins += draw() == chosen
    return (1.0 + wins) / (1.0 + samples)


class LinUCBPolicy(ContextualPolicy):
    """LinUCB: each customer gets the allowed contact arm with the highest upper confidence
    bound ``(p(x, a) + alpha * sd(x, a)) * revenue(x)`` on its value per contact.

    Deterministic given the model: the propensity is 1.

    Args:
        alpha: width of the confidence bound in posterior standard deviations.
        ridge, arm_ridge, prior_rate, history, interactions, seed, delay_correction: see
            :class:`ContextualPolicy`.
    """

    name: ClassVar[str] = "lin_ucb"

    def __init__(
        self,
        alpha: float = 1.0,
        ridge: float = 300.0,
        arm_ridge: float = 1000.0,
        prior_rate: float = 0.01,
        history: bool = True,
        interactions: str = "channel,offer",
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(
            ridge=ridge,
            arm_ridge=arm_ridge,
            prior_rate=prior_rate,
            history=history,
            interactions=interactions,
            seed=seed,
            delay_correction=delay_correction,
        )
        if not alpha >= 0:
            raise ValueError(f"alpha must be at least 0, got {alpha}")
        self.alpha = alpha

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha}

    def act(self, ctx: DecisionContext) -> Decisions:
        p, sd, rev, _ = self.estimates(ctx)
        allowed = contact_mask(ctx.mask)
        ucb = (p + self.alpha * sd) * rev[:, None]
        arms = np.argmax(np.where(allowed, ucb, -np.inf), axis=1).astype(np.int64)
        arms[~allowed.any(axis=1)] = NO_CONTACT
        value = p * rev[:, None]
        cost = self.expected_cost(p, ctx.arms)
        return Decisions(arms=arms, pscores=np.ones(len(ctx)), priority=self._priority(value, cost, arms))


class LinTSPolicy(ContextualPolicy):
    """Linear Thompson sampling: each customer draws, for each allowed contact arm, a value
    ``clip(p(x, a) + explore * sd(x, a) * eps, 0, 1) * revenue(x)`` and takes the best.

    The draw uses each (customer, arm) posterior marginal independently (the posterior's
    correlations across arms and customers are ignored: a documented approximation that keeps a
    batch of 12,000 customers cheap). The propensity is the probability of the chosen arm under
    exactly this randomization, by Monte Carlo with ``pscore_samples`` further draws.

    Args:
        explore: scale of the posterior standard deviation in the draws (1: Thompson sampling).
        pscore_samples: Monte Carlo draws for the propensities.
        ridge, arm_ridge, prior_rate, history, interactions, seed, delay_correction: see
            :class:`ContextualPolicy`.
    """

    name: ClassVar[str] = "lin_ts"

    def __init__(
        self,
        explore: float = 1.0,
        pscore_samples: int = 32,
        ridge: float = 300.0,
        arm_ridge: float = 1000.0,
        prior_rate: float = 0.01,
        history: bool = True,
        interactions: str = "channel,offer",
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(
            ridge=ridge,
            arm_ridge=arm_ridge,
            prior_rate=prior_rate,
            history=history,
            interactions=interactions,
            seed=seed,
            delay_correction=delay_correction,
        )
        if not explore >= 0 or pscore_samples < 1:
            raise ValueError(
                f"explore must be at least 0 and pscore_samples at least 1, got {explore}, {pscore_samples}"
            )
        self.explore = explore
        self.pscore_samples = pscore_samples

    def config(self) -> dict[str, Any]:
        return {**super().config(), "explore": self.explore, "pscore_samples": self.pscore_samples}

    def act(self, ctx: DecisionContext) -> Decisions:
        p, sd, rev, _ = self.estimates(ctx)
        allowed = contact_mask(ctx.mask)
        scale = rev[:, None]
        zero = np.zeros(1)

        def draw() -> IntArray:
            return sample_argmax(self.rng, p, self.explore * sd, allowed, scale, zero)

        arms = draw()
        none = arms < 0
        arms[none] = NO_CONTACT
        pscores = mc_propensity(arms, self.pscore_samples, draw)
        pscores[none] = 1.0
        cost = self.expected_cost(p, ctx.arms)
        return Decisions(arms=arms, pscores=pscores, priority=self._priority(p * scale, cost, arms))
