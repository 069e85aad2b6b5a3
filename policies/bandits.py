"""Context-free bandits over arms: ``epsilon_greedy``, ``ucb`` (UCB1) and ``thompson``.

Each keeps per-arm statistics of the decisions it sent (conversions, revenue, offer cost),
learned from events through a :class:`policies.delayed.DelayedRewards` buffer, delayed conversions
included, and chooses for a whole batch of customers at once (only arms a customer's mask allows;
no contact, whose value toward an attributed goal is known to be 0, is chosen only when no contact
arm is allowed). They maximize the goal metric per contact (conversion rate, or revenue per
contact), whatever it costs: the textbook bandits. ``priority`` (the order in which the loop keeps
contacts when the budget cannot pay for all) is the estimated value per expected dollar.

:class:`LearningPolicy` is the base of every learning policy in this package: it owns the
delayed-reward buffer and its persistence.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from policies.base import DecisionContext, Decisions, Feedback, GoalMetric, Policy
from policies.delayed import DelayedRewards, Observations
from simulators.types import NO_CONTACT, ArmTable, BoolArray, FloatArray, IntArray

OFFER_COST_PRIOR_SHARE = 0.5
"""Prior offer cost per conversion, as a share of the offer's cap, before redemptions are seen."""


def contact_mask(mask: BoolArray) -> BoolArray:
    """``(n, n_arms)`` allowed contact arms (the mask without no contact)."""
    out = np.asarray(mask, dtype=bool).copy()
    out[:, NO_CONTACT] = False
    return out


def random_allowed(rng: np.random.Generator, allowed: BoolArray) -> tuple[IntArray, FloatArray]:
    """Uniform choice among each row's allowed arms.

    Args:
        rng: random source.
        allowed: ``(n, n_arms)`` allowed cells; rows with none get arm 0.

    Returns:
        ``(arms (n,), count (n,))``: the choice and the number of allowed arms (at least 1).
    """
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    arms = np.argmax(keys, axis=1).astype(np.int64)
    count = allowed.sum(axis=1).astype(np.float64)
    arms = np.where(count > 0, arms, NO_CONTACT)
    return arms, np.maximum(count, 1.0)


def mask_groups(mask: BoolArray) -> tuple[BoolArray, IntArray]:
    """Distinct mask rows and, per customer, the index of its row.

    Returns:
        ``(patterns (g, n_arms), group (n,))``.
    """
    patterns, group = np.unique(np.asarray(mask, dtype=bool), axis=0, return_inverse=True)
    return patterns, np.asarray(group, dtype=np.int64).reshape(-1)


class LearningPolicy(Policy):
    """A policy that learns from (possibly delayed) events through a per-decision buffer.

    Subclasses implement :meth:`learn` (called with the observations each feedback releases)
    and :meth:`_model_state`/:meth:`_restore_model`.

    Args:
        seed: the policy's seed.
        delay_correction: count pending decisions as partial negatives (see
            :mod:`policies.delayed`).
    """

    store_features: ClassVar[bool] = False

    def __init__(self, seed: int | None = None, delay_correction: bool = True) -> None:
        super().__init__(seed)
        self.delay_correction = delay_correction
        self.buffer = DelayedRewards(store_features=self.store_features, delay_correction=delay_correction)
        self.updates = 0

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "delay_correction": self.delay_correction}

    def update(self, feedback: Feedback) -> None:
        """Buffer the iteration's decisions, join its events and learn from what they release."""
        self.prepare(feedback.ctx)
        obs = self.buffer.update(feedback, self.decision_features(feedback.ctx))
        self.observe(feedback)
        self.updates += 1
        if len(obs):
            self.learn(obs)

    def decision_features(self, ctx: DecisionContext) -> NDArray[np.float32]:
        """``(n, n_features)`` what the policy knew of each candidate when it decided (the
        context's features; contextual policies add their own customer history)."""
        return np.asarray(ctx.features, dtype=np.float32)

    def observe(self, feedback: Feedback) -> None:
        """See every event of the iteration (after the buffer took its decisions)."""

    def prepare(self, ctx: DecisionContext) -> None:
        """Size the model for the context's arms and features (first call only)."""

    @abstractmethod
    def learn(self, obs: Observations) -> None:
        """Update the model with weighted observations."""

    @abstractmethod
    def _model_state(self) -> dict[str, Any]:
        """The model's learned state (JSON-ready)."""

    @abstractmethod
    def _restore_model(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_model_state`."""

    def _state(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state(), "updates": self.updates, "model": self._model_state()}

    def _restore(self, state: dict[str, Any]) -> None:
        self.buffer.restore(state["buffer"])
        self.updates = int(state["updates"])
        self._restore_model(state["model"])


class ArmStats:
    """Weighted per-arm statistics of sent decisions.

    Attributes (all ``(n_arms,)``):
        trials: weighted decisions (partial while their window is open).
        successes: weighted conversions.
        conversions: conversions (count).
        revenue: summed revenue of conversions; ``revenue_sq`` its squares.
        offer_cost: summed offer cost paid on conversions.
    """

    fields: ClassVar[tuple[str, ...]] = (
        "trials",
        "successes",
        "conversions",
        "revenue",
        "revenue_sq",
        "offer_cost",
    )

    def __init__(self, n_arms: int) -> None:
        self.n_arms = n_arms
        self.trials = np.zeros(n_arms)
        self.successes = np.zeros(n_arms)
        self.conversions = np.zeros(n_arms)
        self.revenue = np.zeros(n_arms)
        self.revenue_sq = np.zeros(n_arms)
        self.offer_cost = np.zeros(n_arms)

    def add(self, obs: Observations) -> None:
        """Add weighted observations."""
        np.add.at(self.trials, obs.arm, obs.weight)
        np.add.at(self.successes, obs.arm, obs.weight * obs.converted)
        pos = (obs.converted > 0) & (obs.weight > 0)
        a = obs.arm[pos]
        np.add.at(self.conversions, a, 1.0)
        np.add.at(self.revenue, a, obs.revenue[pos])
        np.add.at(self.revenue_sq, a, obs.revenue[pos] ** 2)
        np.add.at(self.offer_cost, a, obs.offer_cost[pos])

    def revenue_per_conversion(self, strength: float = 5.0) -> tuple[FloatArray, FloatArray]:
        """Per-arm mean revenue per conversion, shrunk toward the overall mean, and the standard
        error of that mean (the value model).

        Returns:
            ``(mean (n_arms,), sd (n_arms,))``; with no conversion yet, a mean of 1 (values are
            then proportional to conversion rates) and a unit standard deviation.
        """
        total = float(self.conversions.sum())
        if total <= 0:
            return np.ones(self.n_arms), np.ones(self.n_arms)
        mean_all = float(self.revenue.sum()) / total
        var_all = max(float(self.revenue_sq.sum()) / total - mean_all**2, 1e-12)
        n = self.conversions + strength
        mean = (self.revenue + strength * mean_all) / n
        return mean, np.sqrt(var_all / n)

    def offer_cost_per_conversion(self, arms: ArmTable, strength: float = 2.0) -> FloatArray:
        """``(n_arms,)`` offer cost per conversion, with a prior of half the offer's cap."""
        prior = OFFER_COST_PRIOR_SHARE * np.asarray(arms.max_offer_cost, dtype=np.float64)
        return (self.offer_cost + strength * prior) / (self.conversions + strength)

    def state(self) -> dict[str, list[float]]:
        return {f: getattr(self, f).tolist() for f in self.fields}

    def restore(self, state: dict[str, list[float]]) -> None:
        for f in self.fields:
            setattr(self, f, np.asarray(state[f], dtype=np.float64))
        self.n_arms = int(self.trials.shape[0])


class ContextFreePolicy(LearningPolicy):
    """Base of the per-arm bandits: a Beta posterior on each arm's conversion rate, a value model
    (revenue per conversion) and the offer cost per conversion, all from :class:`ArmStats`.

    Args:
        prior_alpha: Beta prior successes of each arm's conversion rate.
        prior_beta: Beta prior failures.
        seed: the policy's seed.
        delay_correction: see :class:`LearningPolicy`.
    """

    def __init__(
        self,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(seed, delay_correction)
        if not (prior_alpha > 0 and prior_beta > 0):
            raise ValueError(f"prior_alpha and prior_beta must be positive, got {prior_alpha}, {prior_beta}")
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.stats: ArmStats | None = None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta}

    def prepare(self, ctx: DecisionContext) -> None:
        if self.stats is None:
            self.stats = ArmStats(len(ctx.arms))

    def learn(self, obs: Observations) -> None:
        assert self.stats is not None
        self.stats.add(obs)

    def _model_state(self) -> dict[str, Any]:
        return {} if self.stats is None else self.stats.state()

    def _restore_model(self, state: dict[str, Any]) -> None:
        if state:
            self.stats = ArmStats(len(state["trials"]))
            self.stats.restore(state)

    # -- estimates -----------------------------------------------------------------------------
    def _posterior(self) -> tuple[FloatArray, FloatArray]:
        """``(alpha (n_arms,), beta (n_arms,))`` of the conversion-rate posteriors."""
        assert self.stats is not None
        s = np.clip(self.stats.successes, 0.0, None)
        f = np.clip(self.stats.trials - self.stats.successes, 0.0, None)
        return self.prior_alpha + s, self.prior_beta + f

    def value(self, metric: GoalMetric) -> FloatArray:
        """``(n_arms,)`` posterior mean of each arm's goal value per contact (0 for no contact)."""
        a, b = self._posterior()
        v = a / (a + b)
        if metric == "revenue":
            assert self.stats is not None
            v = v * self.stats.revenue_per_conversion()[0]
        v[NO_CONTACT] = 0.0
        return v

    def expected_cost(self, arms: ArmTable) -> FloatArray:
        """``(n_arms,)`` send cost plus learned conversion rate times learned offer cost."""
        assert self.stats is not None
        a, b = self._posterior()
        return np.asarray(arms.send_cost, np.float64) + a / (a + b) * self.stats.offer_cost_per_conversion(
            arms
        )

    def _priority(self, ctx: DecisionContext, arms: IntArray) -> FloatArray:
        v = self.value(ctx.goal_metric)
        cost = self.expected_cost(ctx.arms)
        return np.asarray(v[arms] / np.maximum(cost[arms], 1e-12), dtype=np.float64)


class EpsilonGreedyPolicy(ContextFreePolicy):
    """Epsilon-greedy: the arm with the best estimated value per contact, and with probability
    ``epsilon`` a uniformly random allowed contact arm.

    Propensity: ``(1 - epsilon) * [arm is the greedy one] + epsilon / allowed contact arms``.

    Args:
        epsilon: exploration probability.
        prior_alpha, prior_beta, seed, delay_correction: see :class:`ContextFreePolicy`.
    """

    name: ClassVar[str] = "epsilon_greedy"

    def __init__(
        self,
        epsilon: float = 0.1,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(prior_alpha, prior_beta, seed, delay_correction)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def config(self) -> dict[str, Any]:
        return {**super().config(), "epsilon": self.epsilon}

    def act(self, ctx: DecisionContext) -> Decisions:
        self.prepare(ctx)
        allowed = contact_mask(ctx.mask)
        v = self.value(ctx.goal_metric)
        greedy = np.argmax(np.where(allowed, v[None, :], -np.inf), axis=1).astype(np.int64)
        rand, count = random_allowed(self.rng, allowed)
        explore = self.rng.random(len(ctx)) < self.epsilon
        arms = np.where(explore, rand, greedy)
        none = ~allowed.any(axis=1)
        arms[none] = NO_CONTACT
        pscores = (1.0 - self.epsilon) * (arms == greedy) + self.epsilon / count
        pscores[none] = 1.0
        return Decisions(arms=arms, pscores=pscores, priority=self._priority(ctx, arms))


class UCBPolicy(ContextFreePolicy):
    """UCB1 for batches: index ``mean_a + alpha * scale * sqrt(2 ln T / n_a)``.

    A batch cannot wait for its own rewards, so the batch is spread over arms with hallucinated
    pulls (as in batched UCB): arm ``a`` receives ``k_a`` of the batch such that the indices after
    ``n_a + k_a`` pulls are level, and each customer draws its arm from ``k / batch`` (its
    propensity), separately for each distinct mask. With ``n_a`` large the batch goes to the
    arm with the best index, as plain UCB1 would.

    ``scale`` is 1 for conversions and the mean revenue per conversion for revenue goals.
    ``n_a`` counts prior pseudo-trials (``prior_alpha + prior_beta``) so that untried arms have
    a finite index.

    Args:
        alpha: multiplier of the UCB1 exploration bonus (1: UCB1).
        prior_alpha, prior_beta, seed, delay_correction: see :class:`ContextFreePolicy`.
    """

    name: ClassVar[str] = "ucb"

    def __init__(
        self,
        alpha: float = 1.0,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(prior_alpha, prior_beta, seed, delay_correction)
        if not alpha >= 0:
            raise ValueError(f"alpha must be at least 0, got {alpha}")
        self.alpha = alpha

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha}

    def shares(self, allowed: FloatArray | BoolArray, batch: int, metric: GoalMetric) -> FloatArray:
        """``(n_arms,)`` share of a batch of ``batch`` customers with one mask given to each arm.

        Args:
            allowed: ``(n_arms,)`` the mask (no contact excluded).
            batch: customers in the batch.
            metric: the goal metric.
        """
        assert self.stats is not None
        allowed = np.asarray(allowed, dtype=bool)
        mean = self.value(metric)
        n = np.maximum(self.stats.trials, 0.0) + self.prior_alpha + self.prior_beta
        scale = 1.0 if metric == "conversions" else float(self.stats.revenue_per_conversion()[0].mean())
        total = float(np.maximum(self.stats.trials, 0.0).sum()) + 1.0
        c2 = 2.0 * np.log(max(total, np.e)) * (self.alpha * scale) ** 2  # bonus^2 * n
        idx = np.flatnonzero(allowed)
        out = np.zeros(allowed.shape[0])
        if idx.size == 0:
            return out
        m, nn = mean[idx], n[idx]
        if c2 <= 0:
            out[idx[np.argmax(m)]] = 1.0
            return out

        def pulls(level: float) -> FloatArray:
            gap = np.maximum(level - m, 1e-300)
            return np.asarray(np.maximum(c2 / gap**2 - nn, 0.0), dtype=np.float64)

        ucb = m + np.sqrt(c2 / nn)
        lo, hi = float(m.max()), float(ucb.max())  # pulls(lo) = inf >= batch, pulls(hi) = 0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if pulls(mid).sum() >= batch:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-12 * max(abs(hi), 1.0):
                break
        k = pulls(lo)
        if not np.isfinite(k).all() or k.sum() <= 0:
            k = (ucb >= ucb.max() - 1e-15).astype(np.float64)
        out[idx] = k / k.sum()
        return out

    def act(self, ctx: DecisionContext) -> Decisions:
        self.prepare(ctx)
        allowed = contact_mask(ctx.mask)
        patterns, group = mask_groups(allowed)
        sizes = np.bincount(group, minlength=patterns.shape[0])
        probs = np.stack(
            [self.shares(p, int(s), ctx.goal_metric) for p, s in zip(patterns, sizes, strict=True)]
        )
        cdf = np.cumsum(probs, axis=1)[group]  # (n, n_arms)
        u = self.rng.random(len(ctx)) * cdf[:, -1]
        arms = np.minimum((cdf <= u[:, None]).sum(axis=1), cdf.shape[1] - 1).astype(np.int64)
        rows = np.arange(len(ctx))
        pscores = probs[group, arms]
        none = ~allowed.any(axis=1)
        arms[none] = NO_CONTACT
        pscores = np.where(none, 1.0, pscores)
        assert allowed[rows[~none], arms[~none]].all()
        return Decisions(arms=arms, pscores=pscores, priority=self._priority(ctx, arms))


class ThompsonPolicy(ContextFreePolicy):
    """Thompson sampling: Beta-Bernoulli posterior per arm on conversion and, for revenue goals,
    a value model (normal posterior of the arm's mean revenue per conversion, shrunk toward the
    overall mean). Each customer draws its own posterior sample and takes the allowed contact arm
    with the best sampled value.

    Propensity: the probability that the arm wins a posterior draw, estimated by Monte Carlo for
    each distinct mask with ``pscore_samples`` draws (plus one pseudo-win, so it is positive).

    Args:
        pscore_samples: Monte Carlo draws per distinct mask for the propensities.
        prior_alpha, prior_beta, seed, delay_correction: see :class:`ContextFreePolicy`.
    """

    name: ClassVar[str] = "thompson"

    def __init__(
        self,
        pscore_samples: int = 2000,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        seed: int | None = None,
        delay_correction: bool = True,
    ) -> None:
        super().__init__(prior_alpha, prior_beta, seed, delay_correction)
        if pscore_samples < 1:
            raise ValueError(f"pscore_samples must be at least 1, got {pscore_samples}")
        self.pscore_samples = pscore_samples

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pscore_samples": self.pscore_samples}

    def sample(self, size: int, metric: GoalMetric) -> NDArray[np.float64]:
        """``(size, n_arms)`` posterior draws of each arm's value per contact."""
        assert self.stats is not None
        a, b = self._posterior()
        v = self.rng.beta(a[None, :], b[None, :], size=(size, a.shape[0]))
        if metric == "revenue":
            mean, sd = self.stats.revenue_per_conversion()
            v = v * np.maximum(mean[None, :] + sd[None, :] * self.rng.standard_normal(v.shape), 0.0)
        return np.asarray(v, dtype=np.float64)

    def update(self, feedback: Feedback) -> None:
        super().update(feedback)
        self.__dict__.pop("_wins_cache", None)  # a new posterior: new win counts

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self.__dict__.pop("_wins_cache", None)

    def act(self, ctx: DecisionContext) -> Decisions:
        self.prepare(ctx)
        allowed = contact_mask(ctx.mask)
        draws = np.where(allowed, self.sample(len(ctx), ctx.goal_metric), -np.inf)
        arms = np.argmax(draws, axis=1).astype(np.int64)
        none = ~allowed.any(axis=1)
        arms[none] = NO_CONTACT
        patterns, group = mask_groups(allowed)
        s = self.pscore_samples
        # Win counts depend only on the posterior and the mask pattern: kept until the next
        # update, so one-customer calls (the API's /decide) do not redo the Monte Carlo each time.
        cache = self.__dict__.setdefault("_wins_cache", {})
        key_metric = ctx.goal_metric
        missing = [g for g, p in enumerate(patterns) if (key_metric, p.tobytes()) not in cache]
        if missing:
            mc = self.sample(s, ctx.goal_metric)
            for g in missing:
                p = patterns[g]
                wins_g = np.zeros(p.shape[0])
                if p.any():
                    best = np.argmax(np.where(p[None, :], mc, -np.inf), axis=1)
                    wins_g = np.bincount(best, minlength=p.shape[0]).astype(np.float64)
                cache[(key_metric, p.tobytes())] = wins_g
        wins = (
            np.stack([cache[(key_metric, p.tobytes())] for p in patterns])
            if len(patterns)
            else np.zeros(patterns.shape)
        )
        pscores = (wins[group, arms] + 1.0) / (s + 1.0)
        pscores[none] = 1.0
        return Decisions(arms=arms, pscores=pscores, priority=self._priority(ctx, arms))
