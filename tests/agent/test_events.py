"""External events: idempotent by event id, any order, rejected item by item, money never overspent."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import Campaign, CampaignSpec, EventIn, Goal
from policies import make_policy
from simulators import Simulator, load_scenario

BUDGET = 60.0


def _campaign() -> Campaign:
    sim = Simulator(load_scenario("retail"), n_customers=2000)
    spec = CampaignSpec(goal=Goal(target=1e6), budget=BUDGET, customers_per_iteration=400, max_iterations=6)
    camp = Campaign(spec, sim, make_policy("fixed:email/bestsellers/pct10", sim, seed=0), seed=0)
    camp.step()
    return camp


kinds = st.sampled_from(["delivered", "opened", "clicked", "converted", "unsubscribed"])
event = st.builds(
    lambda i, d, k, rev, cost: EventIn(event_id=f"e{i}", decision_id=d, kind=k, revenue=rev, offer_cost=cost),
    st.integers(0, 40),
    st.integers(0, 600),
    kinds,
    st.floats(0, 200),
    st.floats(0, 30),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, max_size=60), seed=st.randoms(use_true_random=False))
def test_duplicated_shuffled_events_never_overspend_and_settle_once(
    events: list[EventIn], seed: object
) -> None:
    camp = _campaign()
    stream = events + events  # every event delivered twice
    seed.shuffle(stream)  # type: ignore[attr-defined]
    res = camp.ingest_events(stream)
    ids = [e.event_id for e in stream]
    assert set(ids) == set(res.accepted) | set(res.duplicates) | set(res.rejected)  # every event answered
    assert len(res.accepted) == len(set(res.accepted))  # an event id applies at most once
    assert all(res.rejected.values())  # every rejection says why
    assert camp.ledger.spent + camp.ledger.reserved <= BUDGET + 1e-9
    before = (camp.ledger.spent, camp.ledger.reserved, camp.conversions, camp.revenue)
    again = camp.ingest_events(stream)  # a retry of the whole request changes nothing
    assert not again.accepted and set(again.duplicates) >= set(res.accepted)
    assert (camp.ledger.spent, camp.ledger.reserved, camp.conversions, camp.revenue) == before
    while camp.check_stop() is None:
        camp.step()
        assert camp.ledger.spent + camp.ledger.reserved <= BUDGET + 1e-9
    camp.drain()
    assert camp.ledger.reserved == 0 and camp.ledger.open_ids().size == 0
    assert camp.ledger.spent <= BUDGET


def test_rejections_name_the_reason_and_the_rest_is_accepted() -> None:
    camp = _campaign()
    d = int(camp.log.decision_id[0])
    res = camp.ingest_events(
        [
            EventIn(event_id="a", decision_id=d, kind="opened"),
            EventIn(event_id="b", decision_id=10_000, kind="clicked"),
            EventIn(event_id="c", decision_id=d, kind="converted", revenue=50, offer_cost=1e6),
            EventIn(event_id="d", decision_id=d, kind="converted", revenue=50, offer_cost=1.0),
            EventIn(event_id="e", decision_id=d, kind="converted", revenue=50, offer_cost=1.0),
            EventIn(event_id="a", decision_id=d, kind="opened"),
        ]
    )
    assert res.accepted == ["a", "d"] and res.duplicates == ["a"]
    assert "unknown decision" in res.rejected["b"]
    assert "exceeds what decision" in res.rejected["c"]
    assert "already converted" in res.rejected["e"]
    assert np.isclose(camp.ledger.charged([d])[0], camp.sim.arms.send_cost[camp.log.arm[0]] + 1.0)
