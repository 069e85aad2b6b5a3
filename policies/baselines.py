"""Baseline policies: ``random``, ``fixed:ARM`` and the all-knowing ``oracle``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from policies.base import DecisionContext, Decisions, GoalMetric, Policy
from policies.knapsack import deadline_need, solve_wave
from simulators.types import NO_CONTACT, CustomerSimulator, FloatArray


class RandomPolicy(Policy):
    """Uniformly random among each customer's allowed arms (no contact included)."""

    name: ClassVar[str] = "random"

    def act(self, ctx: DecisionContext) -> Decisions:
        allowed = ctx.mask
        counts = allowed.sum(axis=1)
        # Vectorized uniform choice among allowed arms: argmax of random keys on allowed cells.
        keys = np.where(allowed, self.rng.random(allowed.shape), -1.0)
        arms = np.argmax(keys, axis=1).astype(np.int64)
        return Decisions(arms=arms, pscores=1.0 / counts)


class FixedPolicy(Policy):
    """One arm for everyone who can receive it: the "send everyone the same thing" habit.

    Args:
        arm: arm index or name (``"email/bestsellers/none"``), resolved against the arm table.
    """

    name: ClassVar[str] = "fixed"

    def __init__(self, arm: str | int, seed: int | None = None) -> None:
        super().__init__(seed)
        self.arm = arm

    def config(self) -> dict[str, Any]:
        return {"arm": self.arm, "seed": self.seed}

    def act(self, ctx: DecisionContext) -> Decisions:
        a = self.arm if isinstance(self.arm, int) else ctx.arms.index(self.arm)
        if not 0 <= a < len(ctx.arms):
            raise ValueError(f"arm {a} out of range 0..{len(ctx.arms) - 1}")
        arms = np.where(ctx.mask[:, a], a, NO_CONTACT).astype(np.int64)
        return Decisions(arms=arms, pscores=np.ones(len(ctx)))


class OraclePolicy(Policy):
    """Knows the simulator's true expectations and buys the goal at the lowest price it can find.

    Each wave is the multiple-choice knapsack of :func:`policies.knapsack.solve_wave`: every
    customer gets the arm maximizing ``value - cost / price - penalty * worst_case`` (no contact
    when nothing is positive), where ``value`` is the true expected conversions (or revenue) and
    ``cost`` the true expected cost, at the lowest price whose wave delivers the wave's need with
    its worst-case reservations within the available budget (reservations are a second resource:
    the reserve-aware mode). When no such wave exists, the wave that buys the most value within
    the budget is taken instead.

    The need looks at the deadline (:func:`policies.knapsack.deadline_need`): an equal share of
    the remaining goal plus a safety margin of ``safety`` standard deviations of what is still
    to be realized, so the waves spread the goal over every iteration left at one price, and the
    last ones still reach it when responses fall short of their expectation.

    Args:
        simulator: the world whose ground truth the oracle reads.
        pace: factor on the per-wave share of the remaining goal.
        safety: standard deviations of the remaining goal added to it.
    """

    name: ClassVar[str] = "oracle"

    def __init__(
        self,
        simulator: CustomerSimulator,
        pace: float = 1.0,
        safety: float = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not pace > 0:
            raise ValueError(f"pace must be positive, got {pace}")
        if not safety >= 0:
            raise ValueError(f"safety must be at least 0, got {safety}")
        self.simulator = simulator
        self.pace = pace
        self.safety = safety

    def config(self) -> dict[str, Any]:
        return {"pace": self.pace, "safety": self.safety, "seed": self.seed}

    def _value(self, ctx: DecisionContext) -> tuple[FloatArray, FloatArray, float]:
        """Value ``(n, n_arms)`` (``-inf`` where masked), expected cost and the goal units one
        conversion brings on average (1 for conversions, revenue per order)."""
        n_arms = len(ctx.arms)
        gt = self.simulator.expected(ctx.customers[:, None], np.arange(n_arms)[None, :])
        metric: GoalMetric = ctx.goal_metric
        value = gt.p_convert if metric == "conversions" else gt.revenue
        unit = 1.0 if metric == "conversions" else float(gt.revenue.sum() / max(gt.p_convert.sum(), 1e-12))
        value = np.where(ctx.mask, value, -np.inf)
        value[:, NO_CONTACT] = 0.0  # not contacting earns nothing toward an attributed goal
        return value, np.asarray(gt.cost, dtype=np.float64), unit

    def act(self, ctx: DecisionContext) -> Decisions:
        value, cost, unit = self._value(ctx)
        return buy_wave(ctx, value, cost, self.pace, self.safety, unit)


def buy_wave(
    ctx: DecisionContext, value: FloatArray, cost: FloatArray, pace: float, safety: float, unit: float
) -> Decisions:
    """The oracle's allocator: buy the wave's share of the goal at the lowest price.

    The need is :func:`policies.knapsack.deadline_need`; the wave is the reserve-aware solution
    of :func:`policies.knapsack.solve_wave` (worst-case reservations are a second resource), or,
    when that cannot meet the need, whichever of it and the budget-filling solution buys more.
    When the loop still drops contacts (the last wave sized to the rest of the goal, channel
    budgets), it keeps the most valuable ones: the wave's worst case already fits the budget.

    Args:
        ctx: the wave's context (mask, arms, budget, goal).
        value: ``(n, n_arms)`` expected goal per arm (``-inf`` where masked, 0 for no contact).
        cost: ``(n, n_arms)`` expected cost per arm.
        pace: factor on the per-wave share of the remaining goal.
        safety: standard deviations of safety margin.
        unit: goal per conversion (1 for conversions, revenue per order).
    """
    worst = np.broadcast_to(ctx.arms.worst_case_cost[None, :], value.shape)
    need = deadline_need(ctx.goal_remaining, ctx.iterations_left, pace, safety, unit)
    wave = solve_wave(value, cost, worst, need, ctx.budget_available, reserve_aware=True)
    if wave.value < need:
        most = solve_wave(value, cost, worst, need, ctx.budget_available)
        wave = most if most.value > wave.value else wave
    chosen = value[np.arange(len(ctx)), wave.arms]
    return Decisions(arms=wave.arms, pscores=np.ones(len(ctx)), priority=chosen)
