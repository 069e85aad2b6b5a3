"""Tests of the vectorized customer-response simulator against its own ground truth.

Statistical tests compare event counts with the closed forms of :meth:`Simulator.expected`:
a count of independent Bernoulli events has variance ``sum p (1 - p)``, so a z-score above
``Z_MAX`` means the sampler and the ground truth disagree. Every seed is fixed, so each test
is deterministic; the bounds are loose enough for any seed and tight enough to catch a
wrong formula.

Repeated draws on one fixed population open a new iteration and restore the state that
changes response probabilities (``fatigue`` and ``unsubscribed``) between draws:
:meth:`Simulator.reset` draws population and responses from one seed, so the population would
change too.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators import (
    NO_CONTACT,
    EventBatch,
    EventKind,
    GroundTruth,
    Scenario,
    Simulator,
    build_arms,
    builtin_scenarios,
    load_scenario,
)
from simulators.scenario import UPLIFT_TYPES
from simulators.types import BoolArray, FloatArray, IntArray
from tests.conftest import ScenarioFactory, SimulatorFactory

Z_MAX = 4.5
"""Largest |z| accepted between a sampled count and its expectation."""

FUNNEL: dict[EventKind, str] = {
    EventKind.DELIVERED: "p_deliver",
    EventKind.OPENED: "p_open",
    EventKind.CLICKED: "p_click",
    EventKind.CONVERTED: "p_convert",
    EventKind.UNSUBSCRIBED: "p_unsubscribe",
}
"""Each event kind and the ground-truth probability that one decision produces it."""


@cache
def _scenario(name: str) -> Scenario:
    return load_scenario(name)


@pytest.fixture(scope="module")
def instant(scenario_with: ScenarioFactory) -> Scenario:
    """Retail with every conversion arriving in the iteration of its contact."""
    return scenario_with({"dynamics": {"conversion_delay": [1.0]}})


def _restore(sim: Simulator) -> None:
    """Open a new iteration with a fresh state: the next send is a new draw, same population."""
    sim.advance()
    sim.fatigue[:] = 0.0
    sim.unsubscribed[:] = False


def _random_arms(sim: Simulator, customers: IntArray, rng: np.random.Generator) -> IntArray:
    """One allowed arm per customer (no contact included), uniformly at random."""
    mask = sim.arm_mask(customers)
    scores = np.where(mask, rng.random(mask.shape), -1.0)
    arms: IntArray = np.argmax(scores, axis=1).astype(np.int64)
    return arms


def _assert_batches_equal(a: EventBatch, b: EventBatch) -> None:
    for field in dataclasses.fields(EventBatch):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert x.dtype == y.dtype, field.name
        np.testing.assert_array_equal(x, y, err_msg=field.name)


def _populations_equal(a: Simulator, b: Simulator) -> bool:
    pa, pb = a.population, b.population
    for field in dataclasses.fields(pa):
        x, y = getattr(pa, field.name), getattr(pb, field.name)
        if isinstance(x, dict):
            if x.keys() != y.keys() or not all(np.array_equal(x[k], y[k]) for k in x):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _z(observed: FloatArray | float, p: FloatArray, reps: int = 1) -> float:
    """z-score of a count of independent Bernoulli(p) events over ``reps`` repetitions."""
    expected = reps * float(np.sum(p))
    var = reps * float(np.sum(p * (1.0 - p)))
    if var == 0.0:
        return 0.0 if float(np.sum(observed)) == expected else np.inf
    return (float(np.sum(observed)) - expected) / float(np.sqrt(var))


def _count_by_kind(events: EventBatch) -> FloatArray:
    return np.array([events.count(kind) for kind in FUNNEL], dtype=np.float64)


def _run(sim: Simulator, seed: int, iterations: int) -> list[EventBatch]:
    """Random allowed decisions for a few iterations; every send and advance batch."""
    rng = np.random.default_rng(seed)
    customers = np.arange(sim.n_customers)
    out: list[EventBatch] = []
    for t in range(iterations):
        arms = _random_arms(sim, customers, rng)
        out.append(sim.send(t * sim.n_customers + customers, customers, arms))
        out.append(sim.advance())
    return out


# -- determinism ---------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_same_seed_same_population_and_events(seed: int, make_sim: SimulatorFactory) -> None:
    a, b = make_sim(n=300, seed=seed), make_sim(n=300, seed=seed)
    assert _populations_equal(a, b)
    batches_a, batches_b = _run(a, seed, 4), _run(b, seed, 4)
    assert sum(len(x) for x in batches_a) > 0
    for x, y in zip(batches_a, batches_b, strict=True):
        _assert_batches_equal(x, y)
    customers = np.arange(300)
    np.testing.assert_array_equal(a.features(customers), b.features(customers))
    np.testing.assert_array_equal(a.arm_mask(customers), b.arm_mask(customers))
    assert a.iteration == b.iteration == 4


def test_reset_replays_the_same_world(small_sim: Simulator) -> None:
    first = _run(small_sim, 7, 3)
    small_sim.reset(seed=0)
    assert small_sim.iteration == 0
    assert not small_sim.fatigue.any() and not small_sim.unsubscribed.any()
    for x, y in zip(first, _run(small_sim, 7, 3), strict=True):
        _assert_batches_equal(x, y)


def test_different_seeds_differ(make_sim: SimulatorFactory) -> None:
    a, b = make_sim(n=500, seed=1), make_sim(n=500, seed=2)
    assert not _populations_equal(a, b)
    assert not np.array_equal(a.population.monetary, b.population.monetary)
    customers = np.arange(500)
    arms = np.full(500, a.arms.index("email/bestsellers/none"))
    ev_a, ev_b = a.send(customers, customers, arms), b.send(customers, customers, arms)
    assert not (len(ev_a) == len(ev_b) and np.array_equal(ev_a.customer, ev_b.customer))


def test_expected_has_no_side_effects(make_sim: SimulatorFactory) -> None:
    a, b = make_sim(n=500, seed=3), make_sim(n=500, seed=3)
    customers = np.arange(500)
    _run(a, 1, 2)
    _run(b, 1, 2)
    fatigue, unsub = a.fatigue.copy(), a.unsubscribed.copy()
    a.expected(customers[:, None], np.arange(len(a.arms))[None, :])
    np.testing.assert_array_equal(a.fatigue, fatigue)
    np.testing.assert_array_equal(a.unsubscribed, unsub)
    # ... and draws no random numbers: the next events are those of the twin that did not call it.
    for x, y in zip(_run(a, 2, 2), _run(b, 2, 2), strict=True):
        _assert_batches_equal(x, y)


# -- vectorized vs one by one ------------------------------------------------------------------


def test_expected_vectorized_equals_per_pair(small_sim: Simulator) -> None:
    sim = small_sim
    _run(sim, 5, 2)  # some fatigue and opt-outs, so the state matters
    assert sim.fatigue.any() and sim.unsubscribed.any()
    customers = np.concatenate([np.arange(30), np.flatnonzero(sim.unsubscribed.any(axis=1))[:10]])
    arms = np.arange(len(sim.arms))
    grid = sim.expected(customers[:, None], arms[None, :])
    flat = sim.expected(np.repeat(customers, arms.size), np.tile(arms, customers.size))
    names = [f.name for f in dataclasses.fields(GroundTruth)]
    for name in names:
        assert getattr(grid, name).shape == (customers.size, arms.size), name
        np.testing.assert_array_equal(getattr(flat, name), getattr(grid, name).ravel(), name)
    for i, c in enumerate(customers):
        for a in arms:
            scalar = sim.expected(np.asarray(c), np.asarray(a))  # 0-d arrays: scalar inputs
            single = sim.expected(np.array([c]), np.array([a]))
            for name in names:
                want = getattr(grid, name)[i, a]
                assert getattr(scalar, name) == want, (name, c, a)
                assert getattr(single, name)[0] == want, (name, c, a)


def test_one_call_and_one_by_one_sends_agree(make_sim: SimulatorFactory, instant: Scenario) -> None:
    sim = make_sim(instant, n=600, seed=4)
    everyone = np.arange(sim.n_customers)
    gt = sim.expected(everyone[:, None], np.arange(len(sim.arms))[None, :])
    p = np.where(sim.arm_mask(everyone), gt.p_convert, -1.0)
    p[:, NO_CONTACT] = -1.0
    best = np.argmax(p, axis=1)
    customers = np.argsort(-p[everyone, best], kind="stable")[:30]  # responsive: many events
    arms = best[customers]
    truth = sim.expected(customers, arms)
    reps = 250
    batch, single = np.zeros(len(FUNNEL)), np.zeros(len(FUNNEL))
    for _ in range(reps):
        _restore(sim)
        batch += _count_by_kind(sim.send(customers, customers, arms))
        _restore(sim)
        for i in range(customers.size):
            one = slice(i, i + 1)
            single += _count_by_kind(sim.send(customers[one], customers[one], arms[one]))
    for j, field in enumerate(FUNNEL.values()):
        prob = getattr(truth, field)
        assert abs(_z(batch[j], prob, reps)) < Z_MAX, field
        assert abs(_z(single[j], prob, reps)) < Z_MAX, field
        var = reps * float(np.sum(prob * (1 - prob)))
        if var > 0:
            assert abs(batch[j] - single[j]) / np.sqrt(2 * var) < Z_MAX, field
    assert batch[3] > 100  # conversions: enough events for the comparison to mean something


# -- ground truth matches sampling --------------------------------------------------------------


@pytest.mark.parametrize("name", ["retail", "winback"])
def test_ground_truth_matches_sampling(
    name: str, scenario_with: ScenarioFactory, make_sim: SimulatorFactory
) -> None:
    sc = scenario_with({"dynamics": {"conversion_delay": [1.0]}}, base=_scenario(name))
    sim = make_sim(sc, n=3000, seed=11)
    n, n_arms = sim.n_customers, len(sim.arms)
    customers = np.arange(n)
    arms = 1 + customers % (n_arms - 1)  # every contact arm, about n / 36 customers each
    truth = sim.expected(customers, arms)
    reps = 200
    counts = np.zeros((len(FUNNEL) + 1, n_arms))  # the funnel, then redemptions
    offer_cost, revenue = np.zeros((reps, n_arms)), np.zeros((reps, n_arms))
    squares = np.zeros((2, n_arms))  # sums of squared offer costs and revenues, per arm
    order = np.zeros(3)  # over all conversions: revenue, customer's mean order, its square
    for r in range(reps):
        _restore(sim)
        events = sim.send(customers, customers, arms)
        arm_of = arms[events.decision_id]
        for j, kind in enumerate(FUNNEL):
            counts[j] += np.bincount(arm_of[events.kind == kind], minlength=n_arms)
        conv = events.kind == EventKind.CONVERTED
        counts[-1] += np.bincount(arm_of[conv & (events.offer_cost > 0)], minlength=n_arms)
        offer_cost[r] = np.bincount(arm_of[conv], weights=events.offer_cost[conv], minlength=n_arms)
        revenue[r] = np.bincount(arm_of[conv], weights=events.revenue[conv], minlength=n_arms)
        squares[0] += np.bincount(arm_of[conv], weights=events.offer_cost[conv] ** 2, minlength=n_arms)
        squares[1] += np.bincount(arm_of[conv], weights=events.revenue[conv] ** 2, minlength=n_arms)
        means = sim.population.order_mean[events.customer[conv]]
        order += (events.revenue[conv].sum(), means.sum(), (means**2).sum())

    fields = [*FUNNEL.values(), "p_redeem"]
    for j, field in enumerate(fields):
        prob = getattr(truth, field)
        assert abs(_z(counts[j].sum(), prob, reps)) < Z_MAX, (field, "all arms")
        for a in range(1, n_arms):
            assert abs(_z(counts[j, a], prob[arms == a], reps)) < Z_MAX, (field, sim.arms.names[a])
    assert counts[3].sum() > 500 and counts[-1].sum() > 100

    # Money per arm: a sum of rare, skewed amounts. Its standard error is taken from the second
    # moment (Var <= E[X^2] per decision), which a few draws estimate more stably than the spread
    # of per-draw totals; arms expecting fewer than 30 paying events are only checked in total.
    money = (
        (offer_cost, squares[0], "offer_cost", "p_redeem"),
        (revenue, squares[1], "revenue", "p_convert"),
    )
    for sampled, sq, field, events in money:
        want = np.bincount(arms, weights=getattr(truth, field), minlength=n_arms)
        mean = sampled.mean(axis=0)
        se = np.maximum(sampled.std(axis=0, ddof=1), np.sqrt(sq / reps)) / np.sqrt(reps)
        enough = reps * np.bincount(arms, weights=getattr(truth, events), minlength=n_arms) >= 30
        assert enough.sum() >= 8, field
        assert np.all(np.abs(mean - want)[enough] <= Z_MAX * se[enough]), field
        total_se = sampled.sum(axis=1).std(ddof=1) / np.sqrt(reps)
        assert abs(mean.sum() - want.sum()) <= Z_MAX * total_se, field
    assert np.all(offer_cost[:, sim.arms.discount == 0] == 0)
    # Order values are log-normal around each customer's mean, whatever the arm.
    sigma = sim.scenario.order_value.sigma
    assert abs(order[0] - order[1]) < Z_MAX * np.sqrt((np.exp(sigma**2) - 1) * order[2])

    # No contact: the customers left alone convert organically with the baseline probability.
    organic = 0
    for _ in range(reps):
        events = sim.advance()
        organic += events.count(EventKind.CONVERTED)
        assert np.all(events.decision_id == -1)
    baseline = sim.expected(customers, np.zeros(n, dtype=np.int64))
    np.testing.assert_array_equal(baseline.p_convert, truth.p_convert_baseline)
    assert abs(_z(organic, baseline.p_convert, reps)) < Z_MAX


# -- uplift types ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["retail", "winback"])
def test_uplift_types_in_ground_truth(name: str, make_sim: SimulatorFactory) -> None:
    sim = make_sim(_scenario(name), n=4000, seed=5)
    arms = sim.arms
    gt = sim.expected(np.arange(sim.n_customers)[:, None], np.arange(len(arms))[None, :])
    kind = sim.population.uplift_type
    sure, pers, lost, dog = (kind == UPLIFT_TYPES.index(t) for t in UPLIFT_TYPES)
    assert all(m.sum() > 50 for m in (sure, pers, lost, dog))

    def mean(values: FloatArray, who: BoolArray) -> FloatArray:
        per_arm: FloatArray = values[who].mean(axis=0)
        return per_arm

    baseline = {
        t: float(gt.p_convert_baseline[m, 0].mean())
        for t, m in zip(UPLIFT_TYPES, (sure, pers, lost, dog), strict=True)
    }
    uplift = {t: mean(gt.uplift, m)[1:] for t, m in zip(UPLIFT_TYPES, (sure, pers, lost, dog), strict=True)}
    unsub = {
        t: mean(gt.p_unsubscribe, m)[1:] for t, m in zip(UPLIFT_TYPES, (sure, pers, lost, dog), strict=True)
    }

    # Sure things buy anyway; contact adds little, and an offer to them mostly costs money.
    assert baseline["sure_thing"] > 2 * max(v for t, v in baseline.items() if t != "sure_thing")
    assert np.all(uplift["sure_thing"] < 0.5 * baseline["sure_thing"])
    offer = np.flatnonzero(arms.discount > 0)
    per_conv = {
        t: gt.offer_cost[m][:, offer].sum(axis=0) / gt.uplift[m][:, offer].sum(axis=0)
        for t, m in (("sure_thing", sure), ("persuadable", pers))
    }
    assert np.all(per_conv["sure_thing"] > 2 * per_conv["persuadable"])

    # Persuadables: positive uplift, large against their baseline, growing with the offer.
    assert np.all(uplift["persuadable"] > 0)
    assert uplift["persuadable"].mean() > 3 * baseline["persuadable"]
    lift = np.array([o.lift for o in sim.scenario.offers.values()])
    by_offer = np.argsort(lift)
    pers_mean = mean(gt.uplift, pers)
    for ch in range(len(arms.channel_names)):
        for co in range(len(arms.content_names)):
            idx = [
                np.flatnonzero((arms.channel == ch) & (arms.content == co) & (arms.offer == o))
                for o in by_offer
            ]
            ups = [pers_mean[i[0]] for i in idx if i.size]
            assert np.all(np.diff(ups) > 0), (arms.channel_names[ch], arms.content_names[co])

    # Lost causes: about nothing either way.
    assert np.all(np.abs(uplift["lost_cause"]) < 0.1 * uplift["persuadable"])

    # Sleeping dogs: contact lowers their purchases and they unsubscribe more than anyone.
    assert np.all(uplift["sleeping_dog"] < 0)
    for t in ("sure_thing", "persuadable", "lost_cause"):
        assert np.all(unsub["sleeping_dog"] > unsub[t]), t


def test_uplift_types_measurable_by_sampling(make_sim: SimulatorFactory, instant: Scenario) -> None:
    """A randomized test (contact vs holdout) recovers each type's uplift from the events."""
    sim = make_sim(instant, n=4000, seed=8)
    arm = sim.arms.index("sms/new_arrivals/pct25")
    customers = np.arange(sim.n_customers)
    reachable = sim.arm_mask(customers)[:, arm]
    treat = reachable & (np.random.default_rng(0).random(customers.size) < 0.5)
    control = reachable & ~treat
    kind = sim.population.uplift_type
    gt = sim.expected(customers, np.full(customers.size, arm))  # in the fresh state of every draw
    reps = 120
    conv_t, conv_c = np.zeros(len(UPLIFT_TYPES)), np.zeros(len(UPLIFT_TYPES))
    for _ in range(reps):
        _restore(sim)
        sent = sim.send(customers[treat], customers[treat], np.full(treat.sum(), arm))
        own = sent.customer[(sent.kind == EventKind.CONVERTED) & (sent.decision_id >= 0)]
        conv_t += np.bincount(kind[own], minlength=len(UPLIFT_TYPES))
        later = sim.advance()
        organic = later.customer[later.kind == EventKind.CONVERTED]
        organic = organic[control[organic]]
        conv_c += np.bincount(kind[organic], minlength=len(UPLIFT_TYPES))
    measured: dict[str, tuple[float, float]] = {}
    for k, t in enumerate(UPLIFT_TYPES):
        nt, nc = reps * np.sum(treat & (kind == k)), reps * np.sum(control & (kind == k))
        rate_t, rate_c = conv_t[k] / nt, conv_c[k] / nc
        se = np.sqrt(rate_t * (1 - rate_t) / nt + rate_c * (1 - rate_c) / nc)
        want = gt.p_convert[treat & (kind == k)].mean() - gt.p_convert_baseline[control & (kind == k)].mean()
        assert abs(rate_t - rate_c - want) < Z_MAX * max(se, 1e-4), t
        measured[t] = (rate_t - rate_c, se)
    assert measured["persuadable"][0] > 5 * measured["persuadable"][1]
    assert measured["sleeping_dog"][0] < -3 * measured["sleeping_dog"][1]
    assert measured["sure_thing"][0] < measured["persuadable"][0]
    assert abs(measured["lost_cause"][0]) < 0.2 * measured["persuadable"][0]


# -- fatigue -----------------------------------------------------------------------------------


def test_fatigue_lowers_open_raises_unsubscribe_and_decays(small_sim: Simulator) -> None:
    sim, dyn = small_sim, small_sim.scenario.dynamics
    arm = sim.arms.index("email/bestsellers/none")
    ch = int(sim.arms.channel[arm])
    customers = np.flatnonzero(sim.arm_mask(np.arange(sim.n_customers))[:, arm])
    events = sim.send(customers, customers, np.full(customers.size, arm))
    delivered = events.customer[events.kind == EventKind.DELIVERED]
    undelivered = np.setdiff1d(customers, delivered)
    assert delivered.size > 0 and undelivered.size > 0
    np.testing.assert_array_equal(sim.fatigue[delivered], 1.0)
    np.testing.assert_array_equal(sim.fatigue[undelivered], 0.0)
    still = delivered[~sim.unsubscribed[delivered, ch]]

    cfg = sim.scenario.channels[sim.arms.channel_names[ch]]
    pop = sim.population

    def p_open(c: IntArray, fatigue: float) -> FloatArray:
        raw = cfg.open_rate * pop.affinity[c, ch] * np.exp(-dyn.fatigue_open_penalty * fatigue)
        p: FloatArray = cfg.deliver_rate * np.minimum(raw, 1.0)
        return p

    def p_unsub(c: IntArray, fatigue: float) -> FloatArray:
        raw = cfg.unsubscribe_rate * pop.unsubscribe_mult[c] * (1 + dyn.fatigue_unsubscribe * fatigue)
        p: FloatArray = cfg.deliver_rate * np.minimum(raw, 1.0)
        return p

    arm_of = np.full(still.size, arm)
    tired = sim.expected(still, arm_of)
    np.testing.assert_allclose(tired.p_open, p_open(still, 1.0), rtol=1e-12)
    np.testing.assert_allclose(tired.p_unsubscribe, p_unsub(still, 1.0), rtol=1e-12)
    fresh_open, fresh_unsub = p_open(still, 0.0), p_unsub(still, 0.0)
    assert np.all(tired.p_open <= fresh_open) and np.mean(tired.p_open < fresh_open) > 0.9
    assert np.all(tired.p_unsubscribe > fresh_unsub)

    sim.advance()
    np.testing.assert_allclose(sim.fatigue[delivered], dyn.fatigue_decay)
    rested = sim.expected(still, arm_of)
    np.testing.assert_allclose(rested.p_open, p_open(still, dyn.fatigue_decay), rtol=1e-12)
    assert np.all(rested.p_open >= tired.p_open) and np.any(rested.p_open > tired.p_open)
    assert np.all(rested.p_unsubscribe < tired.p_unsubscribe)
    for _ in range(60):
        sim.advance()
    np.testing.assert_allclose(sim.expected(still, arm_of).p_open, fresh_open, rtol=1e-9)


def test_repeated_contact_fatigue_in_sampled_events(
    make_sim: SimulatorFactory, scenario_with: ScenarioFactory
) -> None:
    """Blasting the same customers every wave: opens fall and opt-outs rise, as expected.

    Rates are taken relative to what the same customers would do unfatigued, since the
    customers most prone to opt out leave first.
    """
    sc = scenario_with({"channels": {"email": {"unsubscribe_rate": 0.05}}})
    sim = make_sim(sc, n=3000, seed=9)
    arm = sim.arms.index("email/bestsellers/none")
    customers = np.arange(sim.n_customers)

    def wave() -> tuple[float, float]:
        allowed = customers[sim.arm_mask(customers)[:, arm]]
        arms = np.full(allowed.size, arm)
        truth = sim.expected(allowed, arms)
        fatigue = sim.fatigue.copy()
        sim.fatigue[:] = 0.0
        fresh = sim.expected(allowed, arms)
        sim.fatigue[:] = fatigue
        counts = _count_by_kind(sim.send(allowed, allowed, arms))
        assert abs(_z(counts[1], truth.p_open)) < Z_MAX
        assert abs(_z(counts[4], truth.p_unsubscribe)) < Z_MAX
        return counts[1] / fresh.p_open.sum(), counts[4] / fresh.p_unsubscribe.sum()

    opens, unsubs = [], []
    for _ in range(4):
        o, u = wave()
        opens.append(o)
        unsubs.append(u)
        sim.advance()
    assert abs(opens[0] - 1) < 0.1 and abs(unsubs[0] - 1) < 0.15
    assert np.all(np.diff(opens) < 0), opens
    assert np.all(np.diff(unsubs) > 0), unsubs
    # After a long pause, fatigue has faded: opens are back to the unfatigued rate.
    for _ in range(15):
        sim.advance()
    rested, _ = wave()
    assert rested > opens[1] and abs(rested - 1) < 0.1


# -- opt-outs ----------------------------------------------------------------------------------


def test_unsubscribe_removes_the_channel_for_good(
    make_sim: SimulatorFactory, scenario_with: ScenarioFactory
) -> None:
    sc = scenario_with({"channels": {"email": {"unsubscribe_rate": 0.5}}})
    sim = make_sim(sc, n=1000, seed=4)
    arms = sim.arms
    ch = arms.channel_names.index("email")
    email_arms = np.flatnonzero(arms.channel == ch)
    other_arms = np.flatnonzero((arms.channel != ch) & (arms.channel >= 0))
    everyone = np.arange(sim.n_customers)
    mask_before = sim.arm_mask(everyone)
    arm = int(email_arms[0])
    customers = everyone[mask_before[:, arm]]
    events = sim.send(customers, customers, np.full(customers.size, arm))
    gone = np.unique(events.customer[events.kind == EventKind.UNSUBSCRIBED])
    delivered = events.customer[events.kind == EventKind.DELIVERED]
    assert gone.size > 20 and np.all(np.isin(gone, delivered))
    stayed = np.setdiff1d(delivered, gone)
    assert stayed.size > 20

    for _ in range(3):
        sim.advance()
    mask = sim.arm_mask(gone)
    assert not mask[:, email_arms].any()
    np.testing.assert_array_equal(mask[:, other_arms], mask_before[gone][:, other_arms])
    assert mask[:, NO_CONTACT].all()
    col = sim.feature_names.index("reachable_email")
    assert np.all(sim.features(gone)[:, col] == 0.0)
    assert np.all(sim.features(stayed)[:, col] == 1.0)
    truth = sim.expected(gone[:, None], email_arms[None, :])
    assert np.all(truth.p_deliver == 0) and np.all(truth.p_unsubscribe == 0)
    np.testing.assert_array_equal(truth.p_convert, truth.p_convert_baseline)

    # Sending anyway: never delivered, never opened, never another opt-out.
    again = np.concatenate([gone, stayed])
    events = sim.send(again, again, np.full(again.size, arm))
    funnel = events.kind != EventKind.CONVERTED
    assert not np.isin(events.customer[funnel], gone).any()
    assert np.isin(events.customer[events.kind == EventKind.DELIVERED], stayed).sum() > 0
    # Other channels are still open to those who left e-mail.
    sms = np.flatnonzero(arms.channel == arms.channel_names.index("sms"))[0]
    on_sms = gone[sim.arm_mask(gone)[:, sms]]
    assert on_sms.size > 0 and np.all(sim.expected(on_sms, np.full(on_sms.size, sms)).p_deliver > 0)

    sim.reset(seed=4)
    np.testing.assert_array_equal(sim.arm_mask(everyone), mask_before)


# -- delayed conversions -----------------------------------------------------------------------


def test_delayed_conversions_arrive_in_configured_proportions(
    make_sim: SimulatorFactory, scenario_with: ScenarioFactory
) -> None:
    delay = [0.2, 0.5, 0.3]
    buyers = {t: {"organic_visit": 0.9, "organic_conversion": 0.9} for t in UPLIFT_TYPES}
    sc = scenario_with({"dynamics": {"conversion_delay": delay}, "uplift_types": buyers})
    sim = make_sim(sc, n=3000, seed=6)
    customers = np.arange(sim.n_customers)
    arms = np.full(customers.size, sim.arms.index("email/bestsellers/pct10"))
    truth = sim.expected(customers, arms)
    ids = 10_000 + customers

    batches = [sim.send(ids, customers, arms)]
    pending = sim.pending_conversions
    batches += [sim.advance() for _ in range(len(delay))]
    assert sim.pending_conversions == 0
    per_delay: list[int] = []
    seen: list[IntArray] = []
    for d, batch in enumerate(batches):
        conv = batch.select((batch.kind == EventKind.CONVERTED) & (batch.decision_id >= 0))
        if d < len(delay):
            np.testing.assert_array_equal(conv.iteration, d)
            per_delay.append(len(conv))
            seen.append(conv.decision_id)
        else:
            assert len(conv) == 0  # nothing arrives after the longest delay
    total = sum(per_delay)
    assert pending == total - per_delay[0]  # decided at the send, observed later
    all_ids = np.concatenate(seen)
    assert np.unique(all_ids).size == all_ids.size  # one conversion per decision at most
    assert abs(_z(total, truth.p_convert)) < Z_MAX
    for d, share in enumerate(delay):
        se = np.sqrt(share * (1 - share) / total)
        assert abs(per_delay[d] / total - share) < Z_MAX * se, (d, per_delay)


def test_delay_with_empty_first_bucket(make_sim: SimulatorFactory, scenario_with: ScenarioFactory) -> None:
    sc = scenario_with({"dynamics": {"conversion_delay": [0.0, 1.0]}})
    sim = make_sim(sc, n=2000, seed=1)
    customers = np.arange(sim.n_customers)
    arms = np.full(customers.size, sim.arms.index("sms/bestsellers/pct25"))
    sent = sim.send(customers, customers, arms)
    assert sent.count(EventKind.CONVERTED) == 0
    later = sim.advance()
    assert later.select(later.decision_id >= 0).count(EventKind.CONVERTED) > 0
    assert sim.pending_conversions == 0


# -- costs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["retail", "winback"])
def test_channel_costs_span_orders_of_magnitude(name: str) -> None:
    sc = _scenario(name)
    cost = {c: cfg.send_cost for c, cfg in sc.channels.items()}
    assert cost["sms"] >= 10 * cost["email"]
    assert cost["mail"] >= 10 * cost["sms"]
    assert cost["mail"] >= 100 * cost["email"]
    arms = build_arms(sc)
    assert arms.send_cost[NO_CONTACT] == 0 and arms.worst_case_cost[NO_CONTACT] == 0
    for a in range(1, len(arms)):
        channel, _, offer = arms.names[a].split("/")
        assert arms.send_cost[a] == cost[channel]
        cfg = sc.offers[offer]
        assert arms.max_offer_cost[a] == (cfg.max_value if cfg.discount > 0 else 0.0)
        assert arms.worst_case_cost[a] == arms.send_cost[a] + arms.max_offer_cost[a]


def test_offer_without_discount_costs_nothing(
    make_sim: SimulatorFactory, scenario_with: ScenarioFactory
) -> None:
    """A cap alone is no cost: an offer without a discount (a lift only) reserves and pays nothing."""
    sc = scenario_with({"offers": {"gift": {"lift": 0.5, "max_value": 5.0}}})
    sim = make_sim(sc, n=300, seed=1)
    gift = np.flatnonzero(sim.arms.offer == sim.arms.offer_names.index("gift"))
    assert gift.size == len(sc.channels) * len(sc.contents)
    np.testing.assert_array_equal(sim.arms.max_offer_cost[gift], 0.0)
    np.testing.assert_array_equal(sim.arms.worst_case_cost[gift], sim.arms.send_cost[gift])
    gt = sim.expected(np.arange(300)[:, None], gift[None, :])
    assert np.all(gt.offer_cost == 0) and np.all(gt.p_redeem == 0)
    assert gt.uplift[gt.p_deliver > 0].mean() > 0


def test_expected_money_is_consistent(small_sim: Simulator) -> None:
    sim, arms = small_sim, small_sim.arms
    gt = sim.expected(np.arange(500)[:, None], np.arange(len(arms))[None, :])
    np.testing.assert_array_equal(gt.send_cost, np.broadcast_to(arms.send_cost, gt.cost.shape))
    np.testing.assert_allclose(gt.cost, gt.send_cost + gt.offer_cost, rtol=1e-15)
    np.testing.assert_array_equal(gt.worst_case_cost[0], arms.worst_case_cost)
    assert np.all(gt.offer_cost[:, arms.discount == 0] == 0)
    assert np.all(gt.offer_cost <= gt.p_redeem * arms.max_offer_cost + 1e-15)
    order_mean = sim.population.order_mean[:500, None]
    assert np.all(gt.offer_cost <= gt.p_redeem * arms.discount * order_mean * (1 + 1e-12))
    np.testing.assert_allclose(gt.revenue, gt.p_convert * order_mean, rtol=1e-15)
    assert np.all(gt.p_redeem <= gt.p_open) and np.all(gt.p_redeem <= gt.p_convert + 1e-15)
    assert np.all(gt.cost[:, NO_CONTACT] == 0) and np.all(gt.p_deliver[:, NO_CONTACT] == 0)
    np.testing.assert_array_equal(gt.p_convert[:, NO_CONTACT], gt.p_convert_baseline[:, NO_CONTACT])


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.2])
def test_expected_offer_cost_per_redemption_is_the_capped_discount(
    sigma: float, make_sim: SimulatorFactory, scenario_with: ScenarioFactory
) -> None:
    """E[offer cost | redeemed] = E[min(discount * order, cap)] for the log-normal order value."""
    sim = make_sim(scenario_with({"order_value": {"sigma": sigma}}), n=200, seed=2)
    arms = sim.arms
    offer_arms = np.flatnonzero(arms.discount > 0)
    customers = np.arange(10)
    gt = sim.expected(customers[:, None], offer_arms[None, :])
    redeem = gt.p_redeem > 0
    assert redeem.mean() > 0.5
    per_redemption = gt.offer_cost[redeem] / gt.p_redeem[redeem]
    # Quadrature over the standard normal on a fine grid: order = mean * exp(sigma z - sigma^2 / 2).
    z = np.linspace(-9.0, 9.0, 20_001)
    w = np.exp(-0.5 * z**2)
    w /= w.sum()
    mean = np.broadcast_to(sim.population.order_mean[customers, None], gt.p_redeem.shape)[redeem]
    rate = np.broadcast_to(arms.discount[offer_arms], gt.p_redeem.shape)[redeem]
    cap = np.broadcast_to(arms.max_offer_cost[offer_arms], gt.p_redeem.shape)[redeem]
    order = mean[:, None] * np.exp(sigma * z - 0.5 * sigma**2)[None, :]
    want = np.minimum(rate[:, None] * order, cap[:, None]) @ w
    np.testing.assert_allclose(per_redemption, want, rtol=1e-6)
    assert np.all(per_redemption <= cap)


def test_offer_cost_only_on_redemption_and_capped(make_sim: SimulatorFactory) -> None:
    sim = make_sim(n=5000, seed=3)
    arms, n = sim.arms, sim.n_customers
    rng = np.random.default_rng(3)
    customers = np.arange(n)
    decided: list[IntArray] = []
    batches: list[EventBatch] = []
    for t in range(5):
        chosen = _random_arms(sim, customers, rng)
        decided.append(chosen)
        batches.append(sim.send(t * n + customers, customers, chosen))
        batches.append(sim.advance())
    batches += [sim.advance() for _ in range(sim.max_delay)]
    events = EventBatch.concat(batches)
    arm_by_id = np.concatenate(decided)
    own = events.decision_id >= 0
    paid = events.offer_cost > 0
    assert paid.sum() > 40
    assert np.all(events.offer_cost >= 0)
    assert np.all(events.kind[paid] == EventKind.CONVERTED) and np.all(own[paid])
    arm = np.where(own, arm_by_id[np.maximum(events.decision_id, 0)], NO_CONTACT)
    assert np.all(arms.discount[arm[paid]] > 0)
    assert np.all(events.offer_cost <= arms.max_offer_cost[arm])
    opened_ids = events.decision_id[events.kind == EventKind.OPENED]
    conv = (events.kind == EventKind.CONVERTED) & own & (arms.discount[arm] > 0)
    was_opened = np.isin(events.decision_id, opened_ids)
    want = np.minimum(arms.discount[arm] * events.revenue, arms.max_offer_cost[arm])
    np.testing.assert_allclose(events.offer_cost[conv & was_opened], want[conv & was_opened])
    assert np.all(events.offer_cost[conv & ~was_opened] == 0)
    assert np.any(events.offer_cost[paid] == arms.max_offer_cost[arm[paid]])  # the cap binds
    assert np.all(events.offer_cost[events.kind != EventKind.CONVERTED] == 0)


# -- observations and validation ---------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(builtin_scenarios()),
    seed=st.integers(0, 1000),
    waves=st.integers(0, 3),
    picks=st.lists(st.integers(0, 299), min_size=1, max_size=40),
)
def test_features_and_arm_mask_shapes_and_ranges(
    name: str, seed: int, waves: int, picks: list[int], make_sim: SimulatorFactory
) -> None:
    sim = make_sim(_scenario(name), n=300, seed=seed)
    _run(sim, seed, waves)
    customers = np.array(picks, dtype=np.int64)
    x = sim.features(customers)
    assert x.shape == (customers.size, len(sim.feature_names))
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0
    n_seg = len(sim.scenario.population.segments)
    np.testing.assert_array_equal(x[:, :n_seg].sum(axis=1), 1.0)
    mask = sim.arm_mask(customers)
    assert mask.shape == (customers.size, len(sim.arms)) and mask.dtype == np.bool_
    assert mask[:, NO_CONTACT].all()
    reach = sim.population.reachable[customers] & ~sim.unsubscribed[customers]
    np.testing.assert_array_equal(mask[:, 1:], reach[:, sim.arms.channel[1:]])


def test_arm_zero_allowed_when_every_channel_is_gone(small_sim: Simulator) -> None:
    small_sim.unsubscribed[:] = True
    mask = small_sim.arm_mask(np.arange(100))
    assert mask[:, NO_CONTACT].all() and not mask[:, 1:].any()


def test_no_contact_sends_nothing(small_sim: Simulator) -> None:
    customers = np.arange(50)
    events = small_sim.send(customers, customers, np.zeros(50, dtype=np.int64))
    assert len(events) == 0
    assert not small_sim.fatigue.any() and not small_sim.contacts.any()


def test_second_send_in_one_iteration_is_rejected(small_sim: Simulator) -> None:
    arm = np.array([small_sim.arms.index("mail/bestsellers/none")])
    small_sim.send(np.array([0]), np.array([7]), arm)
    small_sim.send(np.array([1]), np.array([8]), arm)  # another customer: fine
    with pytest.raises(ValueError, match="at most one contact per iteration"):
        small_sim.send(np.array([2]), np.array([7]), arm)
    small_sim.send(np.array([3]), np.array([7]), np.array([NO_CONTACT]))  # no contact: fine
    small_sim.advance()
    small_sim.send(np.array([4]), np.array([7]), arm)  # the next iteration: fine


@pytest.mark.parametrize(
    ("ids", "customers", "arms", "match"),
    [
        ([0, 1], [0, 0], [1, 2], "at most one contact"),
        ([0], [0], [10_000], "arms must be in"),
        ([0], [0], [-1], "arms must be in"),
        ([0, 1], [0], [1], "one length"),
    ],
)
def test_send_rejects_bad_decisions(
    small_sim: Simulator, ids: list[int], customers: list[int], arms: list[int], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        small_sim.send(np.array(ids), np.array(customers), np.array(arms))
