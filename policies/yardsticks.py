"""``lp_bound``: a provable lower bound on the expected cost of reaching a campaign's goal.

The bound is the optimum of the fractional min-cost covering LP over (customer, arm, iteration)
with the true expectations of a freshly reset simulator (:meth:`Simulator.expected` at iteration
0: ``p_convert`` for a conversions goal, ``revenue`` for a revenue goal; ``cost`` the expected send
plus offer cost) and the campaign's per-iteration capacity. With ``x[i, a, t]`` the probability
that customer ``i`` is sent contact arm ``a`` in iteration ``t`` (no contact is free and earns
nothing attributable), ``G`` the goal, ``T`` the iterations, ``N`` the customers and ``C`` the
candidates per iteration:

    min  sum c[i,a] x[i,a,t]
    s.t. sum p[i,a] x[i,a,t] >= G                   (the goal, in expectation)
         sum_{i,a} x[i,a,t] <= C        for every t (one wave's candidates)
         sum_a x[i,a,t] <= C / N        for every i, t (a customer is a candidate with
                                                     probability C / N, and gets one arm)
         x >= 0, only arms the customer can receive.

The expectations do not depend on ``t``, so with ``y[i,a] = sum_t x[i,a,t]`` the LP is the same
as ``min c.y  s.t.  p.y >= G,  sum y <= K,  sum_a y[i,a] <= U,  y >= 0`` with ``K = T C`` and
``U = T C / N`` (:func:`covering_bound` takes any ``U`` and ``K``; ``U = T``, "at most one arm
per customer per iteration" without the candidate draw, gives a weaker bound).

Why it is a lower bound on what any policy, the oracle included, can expect to pay: the campaign
loop draws each wave's ``C`` candidates uniformly at random whatever the policy does, so a
customer can expect at most ``U`` sends, and the expected numbers of sends ``y`` of any policy
satisfy these constraints; its expected cost and attributed goal are ``c.y`` and ``p.y`` when
every send happens in the fresh state. Real campaigns only lose from there: opt-outs remove
channels for good, caps and holdouts remove sends, and conversions that arrive later count the
same. Fatigue lowers the open rate: a fatigued send is a mixture of the fresh send and a send
that is not opened, which pays the same send cost for less goal than the same channel and
content without an offer, so a fatigued campaign cannot buy the goal for less (assuming, as in
every built-in scenario, that each channel and content also comes without an offer). The LP
counts the goal in expectation, so the bound is on the expected cost at the expected goal: a
single run can be luckier.

The LP is solved through its Lagrangian dual. For any ``lam >= 0`` (price of a unit of goal) and
``mu >= 0`` (price of a send),

    d(lam, mu) = lam G - mu K + U sum_i min(0, min_a (c[i,a] - lam p[i,a] + mu))

is at most the LP's optimum (weak duality: for any feasible ``y``, ``c.y >= c.y - lam (p.y - G)
+ mu (sum y - K)``, and the minimum of the right side over ``0 <= sum_a y[i,a] <= U`` is ``d``).
``d`` is concave and piecewise linear. For a fixed ``mu`` the best ``lam`` is found exactly: a
customer's term depends only on the lower convex hull of its arms' ``(p, c)`` points, so the
slope of ``d`` in ``lam`` changes at the hulls' breakpoints, which are sorted once. ``mu`` is
then found by golden-section search on the concave ``max_lam d(lam, mu)``. The reported bound is
``d`` evaluated on every arm at the point found, so it is a valid lower bound whatever the search
returns; at the optimum it equals the LP's value (strong duality).

Example:
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=2000)
    >>> sim.reset(seed=0)
    >>> b = lp_bound(sim, target=60, metric="conversions", max_iterations=20, customers_per_iteration=400)
    >>> 0 < b.value < 60
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.base import GoalMetric
from simulators.types import BoolArray, CustomerSimulator, FloatArray

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class LPBound:
    """The dual bound and the point it was evaluated at.

    Attributes:
        value: the lower bound on the expected cost to the goal (dollars); ``inf`` when the goal
            cannot be reached even fractionally.
        price: ``lam``, dollars per unit of goal at the margin.
        slot_price: ``mu``, dollars per send (0 when the capacity ``K`` does not bind).
        contacts: sends of the Lagrangian solution at that point (``U`` per customer whose best
            arm has a negative reduced cost).
    """

    value: float
    price: float
    slot_price: float
    contacts: float


def lp_bound(
    simulator: CustomerSimulator,
    target: float,
    metric: GoalMetric,
    max_iterations: int,
    customers_per_iteration: int,
    allowed: BoolArray | None = None,
) -> LPBound:
    """The covering-LP lower bound for a campaign on ``simulator`` in its current (fresh) state.

    Each customer is a candidate in ``C / N`` of the waves on average (the loop draws each wave's
    candidates uniformly), so the per-customer cap is ``T C / N`` sends and the total ``T C``.

    Args:
        simulator: the world, reset with the campaign's population and not yet sent to.
        target: the goal ``G``.
        metric: ``"conversions"`` or ``"revenue"``.
        max_iterations: ``T``.
        customers_per_iteration: candidates per wave (capped at the population size ``N``): ``C``.
        allowed: ``(n_arms,)`` arms the campaign may use (default all).

    Returns:
        The :class:`LPBound`.
    """
    n = simulator.n_customers
    customers = np.arange(n, dtype=np.int64)
    n_arms = len(simulator.arms)
    gt = simulator.expected(customers[:, None], np.arange(n_arms, dtype=np.int64)[None, :])
    value = np.asarray(gt.p_convert if metric == "conversions" else gt.revenue, dtype=np.float64)
    mask = simulator.arm_mask(customers)
    if allowed is not None:
        mask = mask & allowed[None, :]
    capacity = min(customers_per_iteration, n)
    return covering_bound(
        value[:, 1:],
        np.asarray(gt.cost, dtype=np.float64)[:, 1:],
        mask[:, 1:],
        goal=target,
        per_customer=max_iterations * capacity / n,
        total=float(max_iterations * capacity),
    )


def dual_value(
    value: FloatArray,
    cost: FloatArray,
    mask: BoolArray,
    goal: float,
    per_customer: float,
    total: float,
    lam: float,
    mu: float,
) -> tuple[float, float]:
    """The Lagrangian dual ``d(lam, mu)``: a lower bound on the LP for any ``lam, mu >= 0``.

    Args:
        value: ``(n, k)`` expected goal per send of each contact arm.
        cost: ``(n, k)`` expected cost per send.
        mask: ``(n, k)`` arms each customer can receive.
        goal: ``G``.
        per_customer: ``U``, the most sends of one customer.
        total: ``K``, the most sends in all.
        lam: price of a unit of goal, ``>= 0``.
        mu: price of a send, ``>= 0``.

    Returns:
        ``d(lam, mu)`` and the sends ``U * #{i: min_a reduced cost < 0}`` of its minimizer.
    """
    lam, mu = max(lam, 0.0), max(mu, 0.0)
    reduced = np.where(mask, cost - lam * value + mu, np.inf).min(axis=1, initial=np.inf)
    neg = reduced < 0
    d = lam * goal - mu * total + per_customer * float(reduced[neg].sum())
    return d, per_customer * float(np.count_nonzero(neg))


def covering_bound(
    value: FloatArray,
    cost: FloatArray,
    mask: BoolArray,
    goal: float,
    per_customer: float,
    total: float,
    tolerance: float = 1e-12,
) -> LPBound:
    """Maximize the dual of ``min c.y  s.t.  p.y >= G, sum y <= K, sum_a y[i,a] <= U, y >= 0``.

    Args:
        value: ``(n, k)`` expected goal per send ``p`` (contact arms only).
        cost: ``(n, k)`` expected cost per send ``c``.
        mask: ``(n, k)`` arms each customer can receive.
        goal: ``G``.
        per_customer: ``U``.
        total: ``K``.
        tolerance: width of the final bracket on ``mu``, relative to the first.

    Returns:
        The :class:`LPBound` at the best point found (its value evaluated by :func:`dual_value`).
    """
    hull = _Hulls(value, cost, mask & (value > 0))
    if goal <= 0:
        return LPBound(value=0.0, price=0.0, slot_price=0.0, contacts=0.0)
    if hull.most_value(per_customer, total) < goal:
        return LPBound(value=math.inf, price=math.inf, slot_price=0.0, contacts=0.0)

    def inner(mu: float) -> tuple[float, float]:
        lam = hull.best_price(mu, goal / per_customer)
        return hull.dual(lam, mu, goal, per_customer, total), lam

    f0, lam0 = inner(0.0)
    if per_customer * hull.entered(lam0, 0.0) <= total:
        # The Lagrangian solution at mu = 0, filled to the goal, fits K: it is optimal.
        d, contacts = dual_value(value, cost, mask, goal, per_customer, total, lam0, 0.0)
        return LPBound(value=d, price=lam0, slot_price=0.0, contacts=contacts)
    # A bracket [0, hi] holding the best mu: double until the dual falls (it is concave in mu).
    hi = max(float(np.max(np.where(mask, cost, 0.0), initial=0.0)), 1e-9)
    f_hi = inner(hi)[0]
    for _ in range(200):
        f_next = inner(2.0 * hi)[0]
        if f_next < f_hi:
            break
        hi, f_hi = 2.0 * hi, f_next
    lo, hi = 0.0, 2.0 * hi
    width = tolerance * hi
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = inner(a)[0], inner(b)[0]
    while hi - lo > width:
        if fa < fb:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = inner(b)[0]
        else:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = inner(a)[0]
    best_mu = max(((0.0, f0), (a, fa), (b, fb)), key=lambda t: t[1])[0]
    lam = inner(best_mu)[1]
    d, contacts = dual_value(value, cost, mask, goal, per_customer, total, lam, best_mu)
    return LPBound(value=d, price=lam, slot_price=best_mu, contacts=contacts)


class _Hulls:
    """Per customer, the lower convex hull of its arms' ``(p, c)`` points, from the cheapest arm
    to the one with the most value: the only arms that ever minimize ``c - lam p``.

    Args:
        value: ``(n, k)`` ``p``.
        cost: ``(n, k)`` ``c``.
        valid: ``(n, k)`` arms to consider (allowed, with positive value); the others' values
            and costs are ignored.
    """

    def __init__(self, value: FloatArray, cost: FloatArray, valid: BoolArray) -> None:
        n, k = value.shape
        # Sort each customer's arms by value, then cost; of equal values keep the cheapest.
        order = np.argsort(np.where(valid, cost, np.inf), axis=1, kind="stable")
        order = np.take_along_axis(
            order,
            np.argsort(np.take_along_axis(np.where(valid, value, np.inf), order, 1), 1, kind="stable"),
            1,
        )
        ok = np.take_along_axis(valid, order, 1)
        p = np.where(ok, np.take_along_axis(value, order, 1), 0.0)
        c = np.where(ok, np.take_along_axis(cost, order, 1), 0.0)
        ok[:, 1:] &= p[:, 1:] != p[:, :-1]
        # Andrew's monotone chain, vectorized over customers (a loop over the k arms).
        hp = np.zeros((n, k))
        hc = np.zeros((n, k))
        size = np.zeros(n, dtype=np.int64)
        for j in range(k):
            take = np.flatnonzero(ok[:, j])
            check = take  # rows whose stack top may still have to go
            while check.size:
                check = check[size[check] >= 2]
                top, below = size[check] - 1, size[check] - 2
                ap, ac = hp[check, top], hc[check, top]
                op, oc = hp[check, below], hc[check, below]
                qp, qc = p[check, j], c[check, j]
                check = check[(ap - op) * (qc - oc) - (ac - oc) * (qp - op) <= 0]
                size[check] -= 1
            hp[take, size[take]] = p[take, j]
            hc[take, size[take]] = c[take, j]
            size[take] += 1
        # Keep the chain from its cheapest vertex (the last one of equal cost) on.
        masked = np.where(np.arange(k)[None, :] < size[:, None], hc, np.inf)
        first = k - 1 - np.argmin(masked[:, ::-1], axis=1)
        has = size > 0
        width = int((size - first)[has].max(initial=1))
        at = np.minimum(first[has, None] + np.arange(width)[None, :], k - 1)
        self.keep: BoolArray = np.arange(width)[None, :] < (size - first)[has, None]
        self.p: FloatArray = np.where(self.keep, np.take_along_axis(hp[has], at, 1), 0.0)
        self.c: FloatArray = np.where(self.keep, np.take_along_axis(hc[has], at, 1), 0.0)

    def most_value(self, per_customer: float, total: float) -> float:
        """The most goal any feasible ``y`` reaches: ``U`` sends of their most valuable arm to
        the customers whose most valuable arm is worth most, ``K`` sends in all."""
        best = np.sort(self.p.max(axis=1, initial=0.0))[::-1]
        sends = np.minimum(per_customer, np.maximum(total - per_customer * np.arange(best.size), 0.0))
        return float(best @ sends)

    def best_price(self, mu: float, need: float) -> float:
        """The ``lam`` maximizing ``d(., mu)``: the smallest at which the Lagrangian solution's
        value per iteration reaches ``need``.

        Each customer enters at ``theta = min_j (c_j + mu) / p_j`` with its tangent vertex ``j*``
        and then moves along its hull at the hull's slopes; the solution's value is the sum of
        these steps below ``lam``.
        """
        n, k = self.p.shape
        rows = np.arange(n)
        ratio = np.where(self.keep, (self.c + mu) / np.where(self.keep, self.p, 1.0), np.inf)
        star = np.argmin(ratio, axis=1)
        theta = ratio[rows, star]
        dp = self.p[:, 1:] - self.p[:, :-1]
        step = self.keep[:, 1:] & self.keep[:, :-1] & (np.arange(k - 1)[None, :] >= star[:, None])
        slope = np.where(step, (self.c[:, 1:] - self.c[:, :-1]) / np.where(step, dp, 1.0), np.inf)
        at = np.concatenate([theta, slope[step]])
        gain = np.concatenate([self.p[rows, star], dp[step]])
        order = np.argsort(at, kind="stable")
        reached = np.cumsum(gain[order])
        idx = int(np.searchsorted(reached, need * (1.0 - 1e-15), side="left"))
        return float(at[order][min(idx, order.size - 1)])

    def entered(self, lam: float, mu: float) -> int:
        """Customers whose best reduced cost ``c - lam p + mu`` is at most 0."""
        reduced = np.where(self.keep, self.c - lam * self.p + mu, np.inf).min(axis=1, initial=np.inf)
        return int(np.count_nonzero(reduced <= 0))

    def dual(self, lam: float, mu: float, goal: float, per_customer: float, total: float) -> float:
        """``d(lam, mu)`` on the hull vertices (equal to :func:`dual_value` on all arms)."""
        reduced = np.where(self.keep, self.c - lam * self.p + mu, np.inf).min(axis=1, initial=np.inf)
        return lam * goal - mu * total + per_customer * float(np.minimum(reduced, 0.0).sum())
