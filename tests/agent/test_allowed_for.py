"""Campaign.allowed_for: the one cap check, for the loop's waves and the API's real-time path."""

from __future__ import annotations

import numpy as np

from agent import Campaign, CampaignSpec, FrequencyCap, Goal
from agent.caps import ExternalContacts
from policies import make_policy
from simulators import Simulator, load_scenario


def _campaign() -> Campaign:
    sim = Simulator(load_scenario("retail"), n_customers=400)
    spec = CampaignSpec(
        goal=Goal(target=1e6),
        budget=1e4,
        customers_per_iteration=400,
        suppression=frozenset({0, 1}),
        holdout=0.1,
        max_offer_value=20,
        frequency_cap=FrequencyCap(max_contacts=1, window_iterations=3),
    )
    return Campaign(spec, sim, make_policy("random", sim, seed=0), seed=0)


def test_allowed_for_applies_every_rule_and_cap() -> None:
    camp = _campaign()
    everyone = np.arange(camp.sim.n_customers, dtype=np.int64)
    mask = camp.allowed_for(everyone)
    arms = camp.sim.arms
    assert mask[:, 0].all()  # no contact is always allowed
    blocked = camp.suppressed | camp.holdout
    assert not mask[blocked, 1:].any() and blocked[[0, 1]].all()
    assert not mask[:, arms.max_offer_cost > 20].any()  # the offer guardrail
    assert not (mask & ~camp.sim.arm_mask(everyone)).any()  # reachability
    # What the policy is shown is exactly this mask.
    assert np.array_equal(camp._context(everyone).mask, mask)

    camp.step()
    contacted = np.unique(camp.log.customer)
    assert contacted.size and not camp.allowed_for(contacted)[:, 1:].any()  # frequency cap: 1 in 3


def test_external_contacts_count_toward_the_caps() -> None:
    camp = _campaign()
    free = np.flatnonzero(~(camp.suppressed | camp.holdout))[:3].astype(np.int64)
    assert camp.allowed_for(free)[:, 1:].any(axis=1).all()
    camp.set_external_contacts(
        ExternalContacts(
            customers=free,
            times=np.zeros(3, np.int64),
            committed=np.zeros(3),
            channel_committed=np.zeros(len(camp.sim.arms.channel_names)),
            opted_out=np.zeros((0, 2), np.int64),
        )
    )
    assert not camp.allowed_for(free)[:, 1:].any()
