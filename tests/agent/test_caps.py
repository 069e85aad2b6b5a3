"""Caps and hygiene: frequency cap, per-channel budgets and the suppression list hold in every
iteration, whatever the policy asks for."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from agent import Campaign, CampaignError, CampaignSpec, Goal
from agent.spec import FrequencyCap
from policies import make_policy
from simulators import Simulator, load_scenario

SUPPRESSED = frozenset(range(0, 3000, 7))


def _campaign(policy: str, seed: int, **spec_kw: object) -> Campaign:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    kw: dict[str, object] = {
        "goal": Goal(target=10_000),  # out of reach: the caps, not the goal, shape the run
        "budget": 2000.0,
        "customers_per_iteration": 1500,
        "max_iterations": 10,
    }
    kw.update(spec_kw)
    return Campaign(CampaignSpec(**kw), sim, make_policy(policy, sim, seed=seed), seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["random", "oracle", "thompson", "budgeted_ts"])
@pytest.mark.parametrize("seed", [0, 1])
def test_caps_hold_in_every_iteration(policy: str, seed: int) -> None:
    cap = FrequencyCap(max_contacts=2, window_iterations=4, min_gap=2)
    camp = _campaign(
        policy,
        seed,
        frequency_cap=cap,
        channel_budgets={"mail": 3.0, "sms": 1.5},
        suppression=SUPPRESSED,
    )
    names = list(camp.sim.arms.channel_names)
    while camp.check_stop() is None:
        camp.step()
        committed = camp.channel_committed()
        assert committed[names.index("mail")] <= 3.0 + 1e-9
        assert committed[names.index("sms")] <= 1.5 + 1e-9
        assert camp.ledger.spent + camp.ledger.reserved <= 2000.0 + 1e-9
    log = camp.log
    assert len(log) > 0
    assert not np.isin(log.customer, list(SUPPRESSED)).any()
    for customer in np.unique(log.customer):
        its = np.sort(log.iteration[log.customer == customer])
        assert np.all(np.diff(its) >= cap.min_gap)
        for t in its:  # any window of 4 consecutive iterations holds at most 2 contacts
            assert np.count_nonzero((its > t - cap.window_iterations) & (its <= t)) <= cap.max_contacts
    rep = camp.report()
    assert rep.spend_by_channel["mail"] <= 3.0 + 1e-9


def test_without_caps_the_same_policy_breaks_them() -> None:
    """The cap test above can fail: uncapped, random contacts customers back to back."""
    camp = _campaign("random", 0)
    camp.run()
    its_by_customer = [
        np.sort(camp.log.iteration[camp.log.customer == c]) for c in np.unique(camp.log.customer)
    ]
    assert any(np.any(np.diff(its) < 2) for its in its_by_customer)
    assert np.isin(camp.log.customer, list(SUPPRESSED)).any()
    assert camp.channel_committed()[list(camp.sim.arms.channel_names).index("mail")] > 3.0


def test_bad_caps_are_refused_with_a_clear_message() -> None:
    with pytest.raises(CampaignError, match="unknown channel 'fax'"):
        _campaign("random", 0, channel_budgets={"fax": 1.0})
    with pytest.raises(CampaignError, match="unknown customer id"):
        _campaign("random", 0, suppression=frozenset({5_000}))
    with pytest.raises(ValidationError, match="max_contacts"):
        FrequencyCap(max_contacts=0, window_iterations=3)
    with pytest.raises(ValidationError, match="channel_budgets"):
        CampaignSpec(goal=Goal(target=1), budget=1, channel_budgets={"mail": -1})
