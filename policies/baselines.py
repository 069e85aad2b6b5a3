"""Baseline policies: ``random``, ``fixed:ARM`` and the all-knowing ``oracle``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from policies.base import DecisionContext, Decisions, GoalMetric, Policy
from policies.knapsack import paced_need, solve_wave
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
    """Knows the simulator's true expectations and buys the goal at the lowest price.

    For each wave it needs ``goal_remaining / iterations_left`` of the goal metric (times
    ``pace``). Each customer gets the arm maximizing ``value - cost / price`` (no contact when
    nothing is positive), where ``value`` is the true expected conversions (or revenue) and
    ``cost`` the true expected cost; the price per unit of value is the lowest one, found by
    bisection, whose wave is expected to deliver what is needed, within the available budget.
    This is a Lagrangian solution of the per-wave multiple-choice knapsack
    (:func:`policies.knapsack.solve_wave`): every dollar goes to the customer and arm that buys
    the most of the goal per dollar.

    Args:
        simulator: the world whose ground truth the oracle reads.
        pace: safety factor on the per-wave need.
        reserve_aware: solve each wave with worst-case reservations as a second resource
            (``reserve_aware`` of :func:`policies.knapsack.solve_wave`); off by default, the
            yardstick's original solver.
    """

    name: ClassVar[str] = "oracle"

    def __init__(
        self,
        simulator: CustomerSimulator,
        pace: float = 1.1,
        reserve_aware: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not pace > 0:
            raise ValueError(f"pace must be positive, got {pace}")
        self.simulator = simulator
        self.pace = pace
        self.reserve_aware = reserve_aware

    def config(self) -> dict[str, Any]:
        return {"pace": self.pace, "reserve_aware": self.reserve_aware, "seed": self.seed}

    def _value(self, ctx: DecisionContext) -> tuple[FloatArray, FloatArray, FloatArray]:
        n_arms = len(ctx.arms)
        gt = self.simulator.expected(ctx.customers[:, None], np.arange(n_arms)[None, :])
        metric: GoalMetric = ctx.goal_metric
        value = gt.p_convert if metric == "conversions" else gt.revenue
        value = np.where(ctx.mask, value, -np.inf)
        value[:, NO_CONTACT] = 0.0  # not contacting earns nothing toward an attributed goal
        worst = np.broadcast_to(ctx.arms.worst_case_cost[None, :], value.shape)
        return value, np.asarray(gt.cost, dtype=np.float64), worst

    def act(self, ctx: DecisionContext) -> Decisions:
        value, cost, worst = self._value(ctx)
        need = paced_need(ctx.goal_remaining, ctx.iterations_left, self.pace)
        wave = solve_wave(value, cost, worst, need, ctx.budget_available, reserve_aware=self.reserve_aware)
        return Decisions(arms=wave.arms, pscores=np.ones(len(ctx)), priority=wave.priority)
