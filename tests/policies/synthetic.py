"""A tiny synthetic bandit world for policy tests: known conversion rates, delayed conversions.

Arms: no contact plus ``len(send_cost)`` contact arms, one channel each. Customers have two
features, ``x0`` (0 or 1) and ``x1`` (uniform), and convert with a known probability per arm that
may depend on ``x0``. Half of the conversions arrive one round late (attribution window 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from policies import DecisionContext, Decisions, Feedback, Policy
from simulators.types import ArmTable, EventBatch, EventKind, FloatArray


def make_arms(send_cost: list[float], max_offer_cost: list[float] | None = None) -> ArmTable:
    """No contact plus one contact arm per entry (channel ``c<i>``, one content, offer ``none``
    or ``disc`` where ``max_offer_cost > 0``)."""
    k = len(send_cost)
    cap = [0.0] * k if max_offer_cost is None else max_offer_cost
    return ArmTable(
        names=("no_contact", *(f"c{i}/x/{'disc' if cap[i] > 0 else 'none'}" for i in range(k))),
        channel=np.array([-1, *range(k)], dtype=np.int64),
        content=np.array([-1] + [0] * k, dtype=np.int64),
        offer=np.array([-1] + [1 if c > 0 else 0 for c in cap], dtype=np.int64),
        send_cost=np.array([0.0, *send_cost]),
        max_offer_cost=np.array([0.0, *cap]),
        discount=np.array([0.0] + [0.1 if c > 0 else 0.0 for c in cap]),
        channel_names=tuple(f"c{i}" for i in range(k)),
        content_names=("x",),
        offer_names=("none", "disc"),
    )


@dataclass
class World:
    """Conversion probability ``rate_if_x0[a]`` when ``x0 == 1``, else ``rate[a]``.

    Attributes:
        arms: the arm table.
        rate: ``(n_arms,)`` conversion probability per arm (index 0 unused) when ``x0 == 0``.
        rate_if_x0: the same when ``x0 == 1`` (default: ``rate``).
        revenue: order value of a conversion.
        offer_cost: offer cost paid when an arm with an offer converts.
        seed: the world's seed.
    """

    arms: ArmTable
    rate: FloatArray
    rate_if_x0: FloatArray | None = None
    revenue: float = 50.0
    offer_cost: float = 2.0
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.rate = np.asarray(self.rate, dtype=np.float64)
        if self.rate_if_x0 is None:
            self.rate_if_x0 = self.rate
        self.rate_if_x0 = np.asarray(self.rate_if_x0, dtype=np.float64)

    def probability(self, features: np.ndarray, arms: np.ndarray) -> FloatArray:
        """``(n,)`` conversion probability of each customer under its arm (0 for no contact)."""
        assert self.rate_if_x0 is not None
        p = np.where(features[:, 0] > 0.5, self.rate_if_x0[arms], self.rate[arms])
        return np.where(arms == 0, 0.0, p)

    def best(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(n,)`` the allowed contact arm with the highest conversion probability."""
        assert self.rate_if_x0 is not None
        table = np.where(features[:, :1] > 0.5, self.rate_if_x0[None, :], self.rate[None, :])
        table = np.where(mask, table, -1.0)
        table[:, 0] = -1.0
        return np.argmax(table, axis=1)

    def context(
        self,
        iteration: int,
        n: int,
        rounds: int,
        budget: float = 1e9,
        goal_remaining: float = 1e9,
        mask: np.ndarray | None = None,
        features: np.ndarray | None = None,
        metric: str = "conversions",
    ) -> DecisionContext:
        """One round's candidates (fresh random features unless given)."""
        if features is None:
            features = np.stack(
                [(self.rng.random(n) < 0.5).astype(np.float32), self.rng.random(n).astype(np.float32)],
                axis=1,
            )
        if mask is None:
            mask = np.ones((n, len(self.arms)), dtype=bool)
        return DecisionContext(
            customers=np.arange(n, dtype=np.int64),
            features=np.asarray(features, dtype=np.float32),
            mask=mask,
            arms=self.arms,
            iteration=iteration,
            iterations_left=rounds - iteration,
            budget_available=budget,
            goal_metric=metric,  # type: ignore[arg-type]
            goal_remaining=goal_remaining,
            attribution_window=1,
        )


def _events(ids: np.ndarray, iteration: int, revenue: float, offer_cost: np.ndarray) -> EventBatch:
    n = ids.shape[0]
    return EventBatch(
        decision_id=ids.astype(np.int64),
        customer=np.zeros(n, np.int64),
        kind=np.full(n, int(EventKind.CONVERTED), np.int8),
        iteration=np.full(n, iteration, np.int64),
        revenue=np.full(n, revenue),
        offer_cost=offer_cost,
    )


def run(
    policy: Policy,
    world: World,
    rounds: int,
    n: int,
    budget: float = 1e9,
    goal_remaining: float = 1e9,
    metric: str = "conversions",
) -> Iterator[tuple[DecisionContext, Decisions]]:
    """Play ``rounds`` rounds of ``n`` candidates; yields each round's context and decisions
    (after the policy has been updated with that round's feedback). The goal remaining shrinks
    by the conversions observed; the budget does not (the tests look at single waves)."""
    next_id = 0
    late = EventBatch.empty()
    achieved = 0
    for t in range(rounds):
        remaining = max(goal_remaining - achieved, 0.0)
        ctx = world.context(t, n, rounds, budget=budget, goal_remaining=remaining, metric=metric)
        dec = policy.act(ctx)
        arms = np.asarray(dec.arms, dtype=np.int64)
        sent = arms != 0
        ids = np.full(n, -1, dtype=np.int64)
        ids[sent] = np.arange(next_id, next_id + int(sent.sum()))
        next_id += int(sent.sum())
        conv = sent & (world.rng.random(n) < world.probability(ctx.features, arms))
        delayed = world.rng.random(n) < 0.5
        cost = np.where(world.arms.max_offer_cost[arms] > 0, world.offer_cost, 0.0)
        now = _events(ids[conv & ~delayed], t, world.revenue, cost[conv & ~delayed])
        events = EventBatch.concat([late, now])
        achieved += len(events)
        late = _events(ids[conv & delayed], t + 1, world.revenue, cost[conv & delayed])
        policy.update(Feedback(ctx, Decisions(arms, dec.pscores, dec.priority), ids, events))
        yield ctx, dec
