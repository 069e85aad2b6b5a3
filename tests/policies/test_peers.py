"""Peer adapters (Vowpal Wabbit, MABWiser): learning, propensities, save/load, a short campaign.

Tests that need a peer library skip when the ``peers`` extra is not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agent import Campaign, CampaignSpec, Goal
from policies.base import DecisionContext, Decisions, Feedback
from policies.peers import (
    MABWiserPolicy,
    PeerNotInstalledError,
    VowpalWabbitPolicy,
    _gaussian_argmax_pscores,
)
from simulators import ArmTable, EventBatch, EventKind, Simulator, load_scenario

PeerFactory = Callable[[int, float | None], VowpalWabbitPolicy | MABWiserPolicy]


def _vw(seed: int, value_per_unit: float | None = None) -> VowpalWabbitPolicy:
    pytest.importorskip("vowpalwabbit")
    return VowpalWabbitPolicy(seed=seed, value_per_unit=value_per_unit)


def _lin_ts(seed: int, value_per_unit: float | None = None) -> MABWiserPolicy:
    pytest.importorskip("mabwiser")
    return MABWiserPolicy(seed=seed, learning_policy="lin_ts", value_per_unit=value_per_unit)


def _lin_ucb(seed: int, value_per_unit: float | None = None) -> MABWiserPolicy:
    pytest.importorskip("mabwiser")
    return MABWiserPolicy(seed=seed, learning_policy="lin_ucb", value_per_unit=value_per_unit)


PEERS = pytest.mark.parametrize("make", [_vw, _lin_ts, _lin_ucb], ids=["vw", "lin_ts", "lin_ucb"])


# -- a tiny synthetic bandit: 3 contact arms, two customer types with different best arms ---------
P_CONVERT = np.array([[0.0, 0.5, 0.1, 0.05], [0.0, 0.05, 0.1, 0.5]])  # type x arm (arm 0: no contact)
BEST = np.array([1, 3])


def _arms() -> ArmTable:
    return ArmTable(
        names=("no_contact", "a/x/none", "b/x/none", "c/x/none"),
        channel=np.array([-1, 0, 1, 2]),
        content=np.array([-1, 0, 0, 0]),
        offer=np.array([-1, 0, 0, 0]),
        send_cost=np.array([0.0, 0.01, 0.01, 0.01]),
        max_offer_cost=np.zeros(4),
        discount=np.zeros(4),
        channel_names=("a", "b", "c"),
        content_names=("x",),
        offer_names=("none",),
    )


def _ctx(types: np.ndarray, iteration: int, window: int = 1) -> DecisionContext:
    n = types.shape[0]
    features = np.stack([types == 0, types == 1], axis=1).astype(np.float32)
    return DecisionContext(
        customers=np.arange(n, dtype=np.int64),
        features=features,
        mask=np.ones((n, 4), dtype=bool),
        arms=_arms(),
        iteration=iteration,
        iterations_left=100,
        budget_available=1e6,
        goal_metric="conversions",
        goal_remaining=1e3,
        attribution_window=window,
    )


class _World:
    """Drives a policy on the tiny bandit with delayed (0 or 1 iteration) and duplicate conversions."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.late: EventBatch = EventBatch.empty()

    def round(
        self, policy: VowpalWabbitPolicy | MABWiserPolicy, t: int, n: int = 200
    ) -> tuple[np.ndarray, Decisions]:
        types = self.rng.integers(0, 2, n)
        ctx = _ctx(types, t)
        dec = policy.act(ctx)
        contact = np.flatnonzero(dec.arms != 0)
        ids = np.full(n, -1, np.int64)
        ids[contact] = self.next_id + np.arange(contact.size)
        self.next_id += contact.size
        converted = contact[self.rng.random(contact.size) < P_CONVERT[types[contact], dec.arms[contact]]]
        late = self.rng.random(converted.size) < 0.4
        dup = converted[self.rng.random(converted.size) < 0.2]  # duplicate events count once

        def events(rows: np.ndarray, it: int) -> EventBatch:
            k = rows.size
            return EventBatch(
                ids[rows], rows.astype(np.int64), np.full(k, EventKind.CONVERTED, np.int8),
                np.full(k, it, np.int64), np.full(k, 50.0), np.zeros(k),
            )  # fmt: skip

        now = EventBatch.concat([events(converted[~late], t), events(dup, t), self.late])
        self.late = events(converted[late], t + 1)
        policy.update(Feedback(ctx, dec, ids, now))
        return types, dec


@PEERS
def test_peer_learns_the_best_arm_per_customer_type(make: PeerFactory) -> None:
    policy = make(0, 1.0)  # a conversion is worth 1 $, a send costs 0.01 $
    world = _World(1)
    share = []
    for t in range(30):
        types, dec = world.round(policy, t)
        share.append(np.mean(dec.arms == BEST[types]))
        assert np.all((dec.pscores > 0) & (dec.pscores <= 1))
    # Bound: epsilon-greedy VW (epsilon 0.05) tops out near 0.96; LinTS/LinUCB converge faster.
    assert np.mean(share[-5:]) > 0.8, share


def _identical(ctx: DecisionContext, n: int) -> DecisionContext:
    return DecisionContext(
        **{
            **ctx.__dict__,
            "customers": np.zeros(n, np.int64),
            "features": np.repeat(ctx.features[:1], n, 0),
            "mask": np.repeat(ctx.mask[:1], n, 0),
        }
    )


@PEERS
def test_propensities_match_action_frequencies(make: PeerFactory) -> None:
    policy = make(0, 1.0)
    world = _World(2)
    for t in range(3):  # little data: the policy still explores
        world.round(policy, t, n=60)
    n = 20000
    ctx = _identical(_ctx(np.array([0]), 3), n)
    dec = policy.act(ctx)
    assert np.all((dec.pscores > 0) & (dec.pscores <= 1))
    total = 0.0
    for arm in np.unique(dec.arms):
        ps = dec.pscores[dec.arms == arm]
        assert np.ptp(ps) < 1e-9  # the same customer gets the same propensity for the same arm
        freq = ps.size / n
        total += float(ps[0])
        assert abs(freq - ps[0]) < 5 * np.sqrt(ps[0] * (1 - ps[0]) / n) + 0.01, (arm, freq, ps[0])
    assert total <= 1 + 0.01  # LinTS propensities come from quadrature (VW's are exact)


def test_gaussian_argmax_pscores_sum_to_one_and_match_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    n, k = 50, 6
    mu = rng.normal(0, 1, (n, k))
    sd = rng.uniform(0.05, 2.0, (n, k))
    mu[:, 0], sd[:, 0] = 0.0, 0.0  # no contact: deterministic 0
    allowed = rng.random((n, k)) < 0.8
    allowed[:, 0] = True
    p = np.stack(
        [_gaussian_argmax_pscores(mu, sd, allowed, np.full(n, a), nodes=256) for a in range(k)], axis=1
    )
    p = np.where(allowed, p, 0.0)
    assert np.allclose(p.sum(axis=1), 1.0, atol=0.02)
    draws = np.where(allowed[None], mu[None] + sd[None] * rng.standard_normal((4000, n, k)), -np.inf)
    freq = np.stack([(draws.argmax(axis=2) == a).mean(axis=0) for a in range(k)], axis=1)
    assert np.abs(freq - p).max() < 0.04


@PEERS
def test_save_load_round_trip_gives_identical_decisions(make: PeerFactory, tmp_path: Path) -> None:
    policy = make(3, None)
    world = _World(4)
    for t in range(4):
        world.round(policy, t, n=100)
    policy.save(tmp_path / "p")
    loaded = type(policy).load(tmp_path / "p")
    assert loaded.config() == policy.config()
    ctx = _ctx(np.random.default_rng(5).integers(0, 2, 300), 4)
    a, b = policy.act(ctx), loaded.act(ctx)
    assert np.array_equal(a.arms, b.arms)
    assert np.array_equal(a.pscores, b.pscores)
    # Pending (delayed) decisions and the model keep learning alike after the round trip.
    w1, w2 = _World(6), _World(6)
    w1.late = w2.late = world.late
    w1.next_id = w2.next_id = world.next_id
    for t in range(5, 8):
        (_, d1), (_, d2) = w1.round(policy, t, n=100), w2.round(loaded, t, n=100)
        assert np.array_equal(d1.arms, d2.arms)
        assert np.array_equal(d1.pscores, d2.pscores)


@PEERS
def test_short_retail_campaign_stays_within_budget(make: PeerFactory) -> None:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    spec = CampaignSpec(goal=Goal(target=150), budget=40.0, max_iterations=5, customers_per_iteration=800)
    campaign = Campaign(spec, sim, make(0, None), seed=0)
    report = campaign.run()
    assert report.iterations >= 1
    assert report.spend <= spec.budget + 1e-9
    assert all(rec.spend_total <= spec.budget + 1e-9 for rec in report.history)
    assert report.sends > 0
    pscores = campaign.log.pscore
    assert np.all((pscores > 0) & (pscores <= 1))


def test_missing_library_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vowpalwabbit", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "mabwiser", None)
    monkeypatch.setitem(sys.modules, "mabwiser.mab", None)
    ctx = _ctx(np.array([0, 1]), 0)
    with pytest.raises(PeerNotInstalledError, match=r"pip install -e '\.\[peers\]'"):
        VowpalWabbitPolicy(seed=0).act(ctx)
    with pytest.raises(PeerNotInstalledError, match=r"pip install -e '\.\[peers\]'"):
        MABWiserPolicy(seed=0).act(ctx)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="learning_policy"):
        MABWiserPolicy(learning_policy="eps")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="value_per_unit"):
        VowpalWabbitPolicy(value_per_unit=0.0)
