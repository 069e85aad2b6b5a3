"""The budget-aware bandit ``budgeted_ts``: Thompson sampling on value per dollar, paced.

Bandits with knapsacks: the campaign buys its goal with a budget, so a contact is worth its
value per unit of cost, and the budget must last for the iterations to come. Each wave,
:class:`BudgetedTSPolicy`

1. draws, for every candidate and allowed arm, a Thompson sample of the conversion probability
   from the contextual model of :mod:`policies.contextual` (customer features crossed with arm
   features, learned online from events, delayed ones included), times the predicted revenue of a
   conversion for revenue goals;
2. prices each arm at its expected cost: send cost plus the learned conversion probability times
   the arm's learned offer cost per conversion (redemption rate times offer cost);
3. paces: the wave should deliver ``pace * (goal_remaining - expected_pending) / iterations_left``
   of the goal, where ``expected_pending`` is what the model expects from sent decisions whose
   conversions may still arrive, and every forecast is scaled by the model's track record
   (realized over forecast goal of closed decisions: a model overstates the arms it picks);
4. solves the wave's multiple-choice knapsack with the oracle's Lagrangian solver
   (:func:`policies.knapsack.solve_wave`) in its reserve-aware mode: each customer takes the arm
   maximizing ``sampled value - cost / price - penalty * worst_case`` at the lowest price whose
   wave meets the need (counted with calibrated posterior means, not the optimistic samples),
   the penalty on worst-case dollars rising only as far as needed for the wave's reservations to
   fit; no contact when nothing is worth its price. Two guards keep a wave from burning the
   budget: the price never exceeds ``price_cap`` times what the budget can afford per unit of
   goal on average, and one wave reserves at most about its even share of the money not yet
   spent (reservations are held for the attribution window, so a greedy wave starves the next).

Propensities: the probability of the chosen arm under the Thompson draws at the wave's price and
penalty (both held fixed: an approximation, since they depend on the batch's draws), by Monte
Carlo.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from policies.base import DecisionContext, Decisions, Feedback, GoalMetric
from policies.contextual import ContextualPolicy, Sampling, mc_propensity
from policies.delayed import Observations
from policies.knapsack import PRICE_HI, WaveSolution, paced_need, solve_wave
from simulators.types import NO_CONTACT, FloatArray, IntArray


class BudgetedTSPolicy(ContextualPolicy):
    """Budget-aware contextual Thompson sampling with Lagrangian pacing (see the module doc).

    Args:
        pace: safety factor on the per-wave need (as the oracle's).
        explore: scale of the posterior standard deviation in the Thompson draws.
        sampling: ``batch``: one posterior draw of the model's coefficients per wave (exact
            Thompson sampling, one round per wave, coherent across customers); ``cell``: an
            independent draw of each (customer, arm) marginal (more diverse within a wave, ignores
            the posterior's correlations).
        reserve_aware: treat worst-case reservations as a second resource in the wave's knapsack
            (see :func:`policies.knapsack.solve_wave`).
        price_cap: the most the wave pays at the margin for one unit of the goal, as a multiple of
            what the budget can afford on average (money not spent yet, ``budget_available``
            plus the policy's own reservations, over the goal remaining):
            when the need cannot be met below that price, the wave buys only what is worth it
            (see ``max_price`` in :func:`policies.knapsack.solve_wave`; reserve-aware mode only).
        wave_reserve: the most one wave may reserve (worst case), as a multiple of an even share
            of the money not yet spent, ``(budget_available + reserved) / (window + 1)``, where
            ``reserved`` is what the policy's own open decisions hold: reservations last a window,
            so a wave that reserves everything starves the next ones (0 disables the cap).
        calibrate: scale the model's forecasts of the goal by its track record, realized over
            forecast goal of the decisions whose window has closed (a misspecified model
            overstates the value of the arms it picks, so a wave would fall short of its need).
        count_pending: subtract the expected still-to-arrive conversions of sent decisions from
            the remaining goal before pacing.
        pscore_samples: Monte Carlo draws for the propensities.
        ridge, arm_ridge, prior_rate, history, interactions, seed, delay_correction: see
            :class:`policies.contextual.ContextualPolicy`.
    """

    name: ClassVar[str] = "budgeted_ts"

    def __init__(
        self,
        pace: float = 1.2,
        explore: float = 0.5,
        sampling: Sampling = "cell",
        reserve_aware: bool = True,
        price_cap: float = 15.0,
        wave_reserve: float = 1.0,
        calibrate: bool = True,
        count_pending: bool = True,
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
        if sampling not in ("batch", "cell"):
            raise ValueError(f"sampling must be batch or cell, got {sampling!r}")
        if not (pace > 0 and explore >= 0 and price_cap > 0 and wave_reserve >= 0) or pscore_samples < 1:
            raise ValueError(
                "pace and price_cap must be positive, explore and wave_reserve at least 0, pscore_samples "
                f"at least 1; got {pace}, {price_cap}, {explore}, {wave_reserve}, {pscore_samples}"
            )
        self.pace = pace
        self.explore = explore
        self.sampling: Sampling = sampling
        self.reserve_aware = reserve_aware
        self.price_cap = price_cap
        self.wave_reserve = wave_reserve
        self.calibrate = calibrate
        self.forecast = np.zeros(0)  # goal forecast of sent decisions, by decision iteration
        self.realized = np.zeros(0)  # goal realized by those decisions, by decision iteration
        self._last: tuple[DecisionContext, FloatArray] | None = None
        self.count_pending = count_pending
        self.pscore_samples = pscore_samples
        self.last_wave: WaveSolution | None = None
        self._metric: GoalMetric = "conversions"

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "pace": self.pace,
            "explore": self.explore,
            "sampling": self.sampling,
            "reserve_aware": self.reserve_aware,
            "price_cap": self.price_cap,
            "wave_reserve": self.wave_reserve,
            "calibrate": self.calibrate,
            "count_pending": self.count_pending,
            "pscore_samples": self.pscore_samples,
        }

    def update(self, feedback: Feedback) -> None:
        """Record the forecast of what was sent, then learn as every contextual policy."""
        if self._last is not None and self._last[0] is feedback.ctx:
            sent = np.flatnonzero(np.asarray(feedback.decision_ids) >= 0)
            arms = np.asarray(feedback.decisions.arms)[sent]
            self._tally("forecast", feedback.ctx.iteration, float(self._last[1][sent, arms].sum()))
        self._last = None
        super().update(feedback)

    def learn(self, obs: Observations) -> None:
        super().learn(obs)
        pos = (obs.converted > 0) & (obs.weight > 0)
        if np.any(pos):
            goal = obs.revenue[pos] if self._metric == "revenue" else np.ones(int(pos.sum()))
            for t in np.unique(obs.iteration[pos]):
                self._tally("realized", int(t), float(goal[obs.iteration[pos] == t].sum()))

    def _tally(self, name: str, iteration: int, amount: float) -> None:
        arr: FloatArray = getattr(self, name)
        if arr.shape[0] <= iteration:
            arr = np.concatenate([arr, np.zeros(iteration + 1 - arr.shape[0])])
        arr[iteration] += amount
        setattr(self, name, arr)

    def calibration(self, ctx: DecisionContext) -> float:
        """Realized over forecast goal of the decisions whose window has closed, shrunk toward 1
        by half an iteration's forecast; 1 before any window has closed (or without
        ``calibrate``), and within [0.5, 2]."""
        if not self.calibrate:
            return 1.0
        n = min(
            self.forecast.shape[0], self.realized.shape[0], max(ctx.iteration - ctx.attribution_window, 0)
        )
        if n <= 0:
            return 1.0
        forecast, realized = float(self.forecast[:n].sum()), float(self.realized[:n].sum())
        if forecast <= 0:
            return 1.0
        prior = 0.5 * forecast / n
        return float(np.clip((realized + prior) / (forecast + prior), 0.5, 2.0))

    def expected_pending(self, ctx: DecisionContext) -> float:
        """Goal amount the model expects from sent decisions whose conversions may still arrive."""
        assert self.model is not None and self.revenue_model is not None
        if len(self.buffer) == 0 or ctx.iteration == 0:
            return 0.0
        arm, feats, to_come = self.buffer.pending(ctx.iteration - 1, ctx.attribution_window)
        if arm.size == 0:
            return 0.0
        mean, _ = self.model.predict(feats, with_sd=False)
        p = np.clip(mean[np.arange(arm.size), arm], 0.0, 1.0)
        if ctx.goal_metric == "revenue":
            p = p * self.revenue_model.predict(feats)
        return float((p * to_come).sum())

    def held(self, ctx: DecisionContext) -> float:
        """Dollars the policy's own open decisions hold in reservations (offer caps of sent
        decisions whose window is open and that have not converted)."""
        arm, _, _ = self.buffer.pending(max(ctx.iteration - 1, 0), ctx.attribution_window)
        return float(np.asarray(ctx.arms.max_offer_cost, dtype=np.float64)[arm].sum())

    def wave_budget(self, ctx: DecisionContext, held: float) -> float:
        """What this wave may reserve: ``budget_available``, capped by ``wave_reserve``."""
        if self.wave_reserve <= 0:
            return ctx.budget_available
        even = (ctx.budget_available + held) / (max(ctx.attribution_window, 0) + 1)
        return min(ctx.budget_available, self.wave_reserve * even)

    def act(self, ctx: DecisionContext) -> Decisions:
        self._metric = ctx.goal_metric
        p, sd, rev, x = self.estimates(ctx, with_sd=self.sampling == "cell")
        assert self.model is not None
        allowed = np.asarray(ctx.mask, dtype=bool).copy()
        allowed[:, NO_CONTACT] = True
        p[:, NO_CONTACT] = 0.0
        sd = self.explore * sd
        scale = rev[:, None]
        cost = self.expected_cost(p, ctx.arms)
        cost[:, NO_CONTACT] = 0.0
        worst = np.asarray(ctx.arms.worst_case_cost, dtype=np.float64)
        noise = self.explore * self.noise_sd()
        model = self.model

        def sample() -> FloatArray:
            if self.sampling == "cell":
                draw = p + sd * self.rng.standard_normal(p.shape)
            else:
                draw = model.predict_with(model.sample_coefficients(self.rng, noise), x)
            draw[:, NO_CONTACT] = 0.0
            return np.clip(draw, 0.0, 1.0) * scale

        value = np.where(allowed, sample(), -np.inf)
        calibration = self.calibration(ctx)
        estimate = p * scale * calibration
        self._last = (ctx, estimate)
        remaining = ctx.goal_remaining
        if self.count_pending:  # its own forecast of the pending goal instead of the loop's
            remaining = max(remaining + ctx.goal_pending - calibration * self.expected_pending(ctx), 0.0)
        need = paced_need(remaining, ctx.iterations_left, self.pace)
        held = self.held(ctx)
        max_price = self.price_cap * (ctx.budget_available + held) / max(remaining, 1e-9)
        wave = solve_wave(
            value,
            cost,
            worst,
            need,
            self.wave_budget(ctx, held),
            value_estimate=estimate,
            reserve_aware=self.reserve_aware,
            max_price=min(max_price, PRICE_HI),
        )
        self.last_wave = wave
        offset = cost / wave.price + wave.penalty * worst[None, :]

        def draw() -> IntArray:
            score = np.where(allowed, sample() - offset, -np.inf)
            return np.asarray(np.argmax(score, axis=1), dtype=np.int64)

        pscores = mc_propensity(wave.arms, self.pscore_samples, draw)
        return Decisions(arms=wave.arms, pscores=pscores, priority=wave.priority)

    def _model_state(self) -> dict[str, Any]:
        state = super()._model_state()
        if state:
            state["forecast"] = self.forecast.tolist()
            state["realized"] = self.realized.tolist()
            state["metric"] = self._metric
        return state

    def _restore_model(self, state: dict[str, Any]) -> None:
        super()._restore_model(state)
        if state:
            self.forecast = np.asarray(state["forecast"], dtype=np.float64)
            self.realized = np.asarray(state["realized"], dtype=np.float64)
            self._metric = state["metric"]
