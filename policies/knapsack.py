"""The per-wave Lagrangian multiple-choice knapsack shared by the oracle and the budget-aware bandits.

One wave (iteration) of a campaign is a multiple-choice knapsack: every candidate gets exactly one
arm (arm 0, no contact, is free and earns nothing), the wave should deliver a ``need`` of the goal
metric, and the sum of worst-case costs of its contacts must fit the budget the loop can still
reserve. Its Lagrangian relaxation is solved by one price: each customer gets the arm that
maximizes ``value - cost / price``, and the price is the lowest one (found by bisection in log
space) whose wave is expected to meet the need within the budget. When no price meets the need
within the budget, the wave buys as much value as the budget allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulators.types import NO_CONTACT, FloatArray, IntArray

PRICE_LO = 1e-7
"""Lowest price (dollars per unit of value) of the bisection: nothing but free arms is worth it."""
PRICE_HI = 1e7
"""Highest price of the bisection: every arm with positive value is worth its cost."""
MU_LO = 1e-12
"""Lowest penalty per dollar of worst case (value units) in the reserve-aware mode."""
MU_HI = 1e6
"""Highest penalty per dollar of worst case: only arms that reserve nothing are worth it."""


@dataclass(frozen=True)
class WaveSolution:
    """The solved wave.

    Attributes:
        arms: ``(n,)`` chosen arm per customer.
        price: the Lagrange price (dollars per unit of value) of the solution.
        penalty: the multiplier on worst-case dollars (value units; 0 unless ``reserve_aware``
            had to raise it): the solution maximizes ``value - cost / price - penalty * worst``.
        value: expected value of the wave (by ``value_estimate`` when one was given).
        worst_case: sum of the worst-case costs of the chosen arms.
        priority: ``(n,)`` value per expected cost of the chosen arm (the order in which the loop
            keeps contacts when it must drop some).
    """

    arms: IntArray
    price: float
    penalty: float
    value: float
    worst_case: float
    priority: FloatArray


def solve_wave(
    value: FloatArray,
    cost: FloatArray,
    worst_case: FloatArray,
    need: float,
    budget: float,
    value_estimate: FloatArray | None = None,
    reserve_aware: bool = False,
    max_price: float = PRICE_HI,
    max_steps: int = 50,
    tolerance: float = 1.01,
) -> WaveSolution:
    """Choose one arm per customer: meet ``need`` at the lowest price, within ``budget``.

    Two modes, both Lagrangian:

    * default (the oracle's): the lowest price whose wave meets the need with its worst case
      within the budget; when no price does (or the price that buys every worthwhile contact
      does not fit), the highest price whose worst case fits: as much as the budget allows.
    * ``reserve_aware``: the worst case is a second resource with its own multiplier ``mu``:
      each customer maximizes ``value - cost / price - mu * worst_case``. With ``mu = 0`` this
      is the lowest price meeting the need; when that wave's worst case does not fit the budget,
      ``mu`` is raised (bisection) to the smallest value whose need-meeting wave fits, so the
      wave still meets the need (if it can) with cheap-to-reserve arms instead of giving up
      value. This matters when worst cases (offer caps) are far above expected costs.

    Args:
        value: ``(n, n_arms)`` value of each arm toward the goal (``-inf`` where the arm is not
            allowed; column 0, no contact, is normally 0). The arms are chosen by this value.
        cost: ``(n, n_arms)`` expected cost of each arm in dollars.
        worst_case: ``(n_arms,)`` or ``(n, n_arms)`` the most each decision can cost: what the
            loop reserves, so the wave must fit ``budget`` on it.
        need: value the wave should deliver (e.g. paced share of the remaining goal).
        budget: dollars the wave may reserve at most (worst case).
        value_estimate: ``(n, n_arms)`` value used to check the need (default ``value``); a
            Thompson-sampling policy chooses by sampled values but counts what it expects from
            its chosen arms by posterior means, which a maximum over samples overstates.
        reserve_aware: use the two-multiplier mode.
        max_price: in the reserve-aware mode, the most the wave pays for one unit of value at
            the margin: when the need cannot be met at this price, the wave buys what is worth it
            at this price instead of everything with a positive value.
        max_steps: most bisection steps (per multiplier).
        tolerance: stop when a multiplier's bracket ``hi / lo`` is below this.

    Returns:
        The :class:`WaveSolution`; its ``worst_case`` never exceeds ``budget``.
    """
    value = np.asarray(value, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    counted = value if value_estimate is None else np.asarray(value_estimate, dtype=np.float64)
    worst = np.broadcast_to(np.asarray(worst_case, dtype=np.float64), value.shape)
    rows = np.arange(value.shape[0])

    def choose(price: float, mu: float = 0.0) -> _Choice:
        score = value - cost / price
        if mu > 0:
            score = score - mu * worst
        arms = np.argmax(score, axis=1).astype(np.int64)
        return arms, float(counted[rows, arms].sum()), float(worst[rows, arms].sum())

    mu = 0.0
    if reserve_aware:
        best, price, mu = _solve_two(choose, need, budget, max_price, max_steps, tolerance)
    else:
        best, price = _solve_one(choose, need, budget, max_steps, tolerance)
    arms = best[0]
    priority = counted[rows, arms] / np.maximum(cost[rows, arms], 1e-12)
    arms, total = _fit_budget(arms, priority, worst[rows, arms], budget)
    return WaveSolution(
        arms=arms,
        price=price,
        penalty=mu,
        value=float(counted[rows, arms].sum()),
        worst_case=total,
        priority=priority,
    )


_Choice = tuple[IntArray, float, float]  # arms, counted value, worst case


def _solve_one(
    choose: Callable[..., _Choice], need: float, budget: float, max_steps: int, tolerance: float
) -> tuple[_Choice, float]:
    lo, hi = PRICE_LO, PRICE_HI
    best = choose(hi)
    price = hi
    if best[1] >= need and best[2] <= budget:
        for _ in range(max_steps):
            mid = float(np.sqrt(lo * hi))
            cand = choose(mid)
            if cand[1] >= need and cand[2] <= budget:
                hi, best, price = mid, cand, mid
            else:
                lo = mid
            if hi / lo < tolerance:
                break
    else:  # the need cannot be met: buy as much as the budget allows
        for _ in range(max_steps):
            mid = float(np.sqrt(lo * hi))
            cand = choose(mid)
            if cand[2] <= budget:
                lo, best, price = mid, cand, mid
            else:
                hi = mid
            if hi / lo < tolerance:
                break
        if best[2] > budget:
            best, price = choose(lo), lo
    return best, price


def _need_price(
    choose: Callable[..., _Choice],
    need: float,
    mu: float,
    max_price: float,
    max_steps: int,
    tolerance: float,
) -> tuple[_Choice, float]:
    """The lowest price in ``[PRICE_LO, max_price]`` whose wave meets the need under penalty
    ``mu`` (``max_price`` when none does)."""
    lo, hi = PRICE_LO, max(max_price, PRICE_LO)
    best = choose(hi, mu)
    if best[1] < need:
        return best, hi
    price = hi
    for _ in range(max_steps):
        mid = float(np.sqrt(lo * hi))
        cand = choose(mid, mu)
        if cand[1] >= need:
            hi, best, price = mid, cand, mid
        else:
            lo = mid
        if hi / lo < tolerance:
            break
    return best, price


def _solve_two(
    choose: Callable[..., _Choice],
    need: float,
    budget: float,
    max_price: float,
    max_steps: int,
    tolerance: float,
) -> tuple[_Choice, float, float]:
    best, price = _need_price(choose, need, 0.0, max_price, max_steps, tolerance)
    if best[2] <= budget:
        return best, price, 0.0
    lo, hi = MU_LO, MU_HI  # penalty per dollar of worst case, in value units
    fit: tuple[_Choice, float, float] | None = None
    for _ in range(max_steps):
        mid = float(np.sqrt(lo * hi))
        cand, cand_price = _need_price(choose, need, mid, max_price, max_steps, tolerance)
        if cand[2] <= budget:
            hi, fit = mid, (cand, cand_price, mid)
        else:
            lo = mid
        if hi / lo < tolerance:
            break
    if fit is None:
        cand, cand_price = _need_price(choose, need, hi, max_price, max_steps, tolerance)
        fit = (cand, cand_price, hi)
    return fit


def _fit_budget(
    arms: IntArray, priority: FloatArray, worst: FloatArray, budget: float
) -> tuple[IntArray, float]:
    """Drop the lowest-priority contacts until the worst case fits (a guard: the bisection's
    lowest price already contacts nothing that costs money)."""
    total = float(worst.sum())
    if total <= budget:
        return arms, total
    order = np.argsort(-priority, kind="stable")
    keep = np.cumsum(worst[order]) <= budget
    out = arms.copy()
    out[order[~keep]] = NO_CONTACT
    return out, float(worst[order[keep]].sum())


def price_band_wave(
    value: FloatArray,
    cost: FloatArray,
    worst_case: FloatArray,
    need: float,
    budget: float,
    value_estimate: FloatArray,
    max_price: float,
    floor: float,
) -> WaveSolution:
    """The reserve-aware wave meeting ``need`` at a price within ``[floor, max_price]``.

    A learner's price moves in a band from one wave to the next (contact costs come in steps,
    so a price that meets each wave's need exactly jumps between "e-mail only" and
    "everything"): the lowest price meeting the need up to ``max_price``, and a wave met more
    cheaply than ``floor`` still buys at ``floor``. Used by ``funnel_ts`` and the pacer's
    training world, so both price a wave by the same rule.
    """
    wave = solve_wave(
        value,
        cost,
        worst_case,
        need,
        budget,
        value_estimate=value_estimate,
        reserve_aware=True,
        max_price=min(max_price, PRICE_HI),
    )
    if wave.price < floor:
        wave = solve_wave(
            value,
            cost,
            worst_case,
            np.inf,
            budget,
            value_estimate=value_estimate,
            reserve_aware=True,
            max_price=floor,
        )
    return wave


def paced_need(goal_remaining: float, iterations_left: int, pace: float) -> float:
    """The share of the remaining goal one wave should deliver: ``pace * remaining / left``."""
    return pace * max(goal_remaining, 0.0) / max(iterations_left, 1)


def deadline_need(
    goal_remaining: float, iterations_left: int, pace: float, safety: float, unit: float = 1.0
) -> float:
    """What one wave should deliver so the goal is reached by the deadline at one price.

    The remaining goal plus a margin of ``safety`` standard deviations of what it realizes (a
    count of conversions of ``unit`` goal each is about Poisson: variance ``remaining * unit``)
    and ``safety`` conversions (so a small rest is still bought whole: goals come in whole
    conversions), capped at a tenth of the rest plus one conversion, shared equally among the
    iterations left (times ``pace``). Every wave spreads
    the rest over the waves left, so a shortfall is made up at about the same price (one price
    for the whole campaign, which is what the covering LP of :mod:`policies.yardsticks` pays);
    the last wave aims at the whole rest plus its margin.

    Args:
        goal_remaining: goal still to reach.
        iterations_left: iterations remaining, this one included.
        pace: factor on the equal share.
        safety: standard deviations of margin.
        unit: goal per conversion (1 for conversions, the mean order value for revenue).
    """
    remaining = max(goal_remaining, 0.0)
    if remaining <= 0:
        return 0.0
    # At most a tenth of the rest (plus a conversion): on a small goal the Poisson margin is a large
    # share of it, and a wave of few candidates cannot buy that share from cheap arms.
    margin = min(safety * (float(np.sqrt(remaining * unit)) + unit), 0.1 * remaining + unit)
    return pace * (remaining + margin) / max(iterations_left, 1)
