"""The delayed-reward buffer and the shared wave solver."""

from __future__ import annotations

import numpy as np
import pytest

from policies import Decisions, Feedback, solve_wave
from policies.delayed import DelayedRewards, Observations
from simulators.types import EventBatch, EventKind
from tests.policies.synthetic import World, make_arms


def _feedback(world: World, t: int, ids: np.ndarray, arms: np.ndarray, conv_ids: list[int]) -> Feedback:
    ctx = world.context(t, ids.shape[0], 10)
    c = np.asarray(conv_ids, dtype=np.int64)
    events = EventBatch(
        decision_id=c,
        customer=np.zeros(c.shape[0], np.int64),
        kind=np.full(c.shape[0], int(EventKind.CONVERTED), np.int8),
        iteration=np.full(c.shape[0], t, np.int64),
        revenue=np.full(c.shape[0], 10.0),
        offer_cost=np.zeros(c.shape[0]),
    )
    return Feedback(ctx, Decisions(arms, np.ones(ids.shape[0])), ids, events)


@pytest.mark.parametrize("correction", [True, False])
def test_each_decision_counts_once(correction: bool) -> None:
    world = World(make_arms([0.01, 0.01]), rate=np.array([0.0, 0.1, 0.1]))
    buf = DelayedRewards(store_features=True, delay_correction=correction)
    arms = np.array([1, 2, 0, 1])
    ids = np.array([0, 1, -1, 2])
    out: list[Observations] = []
    # Decision 0 converts at once, decision 2 one round later (twice: a duplicate), 1 never;
    # a conversion for an unknown decision and one after the window are ignored.
    out.append(buf.update(_feedback(world, 0, ids, arms, [0, 99])))
    assert len(buf) == 3
    out.append(buf.update(_feedback(world, 1, np.full(4, -1), np.zeros(4, np.int64), [2, 2])))
    assert len(buf) == 0  # window 1: everything from round 0 has closed
    out.append(buf.update(_feedback(world, 2, np.full(4, -1), np.zeros(4, np.int64), [1])))
    obs = Observations.concat(out, 2)
    assert obs.features.shape[1] == 2
    by_arm = np.bincount(obs.arm, weights=obs.weight, minlength=3)
    assert np.allclose(by_arm, [0, 2, 1])  # each sent decision weighs exactly 1 in the end
    pos = (obs.converted > 0) & (obs.weight > 0)
    assert sorted(obs.arm[pos].tolist()) == [1, 1]  # decisions 0 and 2 (both arm 1)
    assert np.allclose(obs.revenue[pos], 10.0)
    if not correction:
        assert np.all(obs.weight > 0)


def test_delay_correction_keeps_rates_unbiased_while_pending() -> None:
    # 40% of 1000 decisions convert: half at once, half one round later.
    world = World(make_arms([0.01]), rate=np.array([0.0, 0.4]))
    rng = np.random.default_rng(0)
    est = {True: [], False: []}
    for correction in (True, False):
        buf = DelayedRewards(delay_correction=correction)
        w = s = 0.0
        next_id, late = 0, np.empty(0, np.int64)
        for t in range(6):
            ids = np.arange(next_id, next_id + 1000)
            next_id += 1000
            conv = ids[rng.random(1000) < 0.4]
            now = conv[rng.random(conv.shape[0]) < 0.5]
            fb = _feedback(world, t, ids, np.ones(1000, np.int64), [*late.tolist(), *now.tolist()])
            late = np.setdiff1d(conv, now)
            obs = buf.update(fb)
            w += float(obs.weight.sum())
            s += float((obs.weight * obs.converted).sum())
            est[correction].append(s / w)
    # Without correction the early estimates are far too high; with it they stay near 0.4
    # once the delay distribution has been seen (from round 1 on).
    assert est[False][0] == 1.0
    assert all(abs(e - 0.4) < 0.05 for e in est[True][2:])
    assert abs(est[True][0] - 0.2) < 0.05  # the prior: pending counts as negative at once


def test_reserve_aware_wave_meets_need_with_cheap_reservations() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    # Arm 1: cheap to reserve; arm 2: slightly better but reserves 15 dollars (an offer).
    value = np.stack([np.zeros(n), rng.uniform(0.01, 0.03, n), rng.uniform(0.012, 0.035, n)], axis=1)
    cost = np.tile([0.0, 0.01, 0.02], (n, 1))
    worst = np.array([0.0, 0.01, 15.01])
    waves = {}
    for budget in (50.0, 500.0, 5000.0):
        legacy = solve_wave(value, cost, worst, need=30.0, budget=budget)
        aware = solve_wave(value, cost, worst, need=30.0, budget=budget, reserve_aware=True)
        for sol in (legacy, aware):
            assert sol.worst_case <= budget + 1e-9
        assert aware.value >= 30.0  # the need is met with arm 1 where offers do not fit
        waves[budget] = (legacy, aware)
    # The oracle's original solver gives up on the need when the offers it would pick do not
    # fit, and buys as much as the budget allows when the wave that buys everything does not.
    assert waves[50.0][0].value < 30.0
    assert waves[5000.0][0].worst_case > 10 * waves[5000.0][1].worst_case
    capped = solve_wave(value, cost, worst, need=1e6, budget=1e9, reserve_aware=True, max_price=1.0)
    chosen = capped.arms != 0
    rows = np.arange(n)
    assert np.all(value[rows, capped.arms][chosen] * 1.0 >= cost[rows, capped.arms][chosen] - 1e-12)
