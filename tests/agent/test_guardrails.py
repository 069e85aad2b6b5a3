"""Guardrails: offer cap at creation, dry run (decide and price, send nothing), pre-launch forecast."""

from __future__ import annotations

import numpy as np
import pytest

from agent import Campaign, CampaignError, CampaignSpec, Goal
from policies import make_policy
from simulators import Simulator, load_scenario


def _campaign(policy: str = "thompson", seed: int = 0, n: int = 3000, **spec_kw: object) -> Campaign:
    sim = Simulator(load_scenario("retail"), n_customers=n)
    kw: dict[str, object] = {
        "goal": Goal(target=60),
        "budget": 120.0,
        "customers_per_iteration": 1000,
        "max_iterations": 8,
    }
    kw.update(spec_kw)
    return Campaign(CampaignSpec(**kw), sim, make_policy(policy, sim, seed=seed), seed=seed)  # type: ignore[arg-type]


def test_offers_above_the_cap_are_refused_at_creation() -> None:
    camp = _campaign("random", max_offer_value=0.0)
    arms = camp.sim.arms
    assert not camp.allowed[arms.max_offer_cost > 0].any() and camp.allowed[1:].any()
    camp.run()
    assert np.all(arms.max_offer_cost[camp.log.arm] == 0)
    offer_arm = next(n for n, c in zip(arms.names, arms.max_offer_cost, strict=True) if c > 0)
    with pytest.raises(CampaignError, match="offer more than max_offer_value"):
        _campaign("random", max_offer_value=0.0, allowed_arms=[offer_arm])


def test_dry_run_prices_the_next_iteration_and_changes_nothing() -> None:
    plain = _campaign()
    plain.run()
    camp = _campaign()
    for _ in range(2):
        camp.step()
    dry = camp.dry_run()
    n_before, spent = len(camp.log), camp.ledger.spent
    again = camp.dry_run()
    assert again == dry and len(camp.log) == n_before and camp.ledger.spent == spent
    camp.step()  # the real iteration does what the dry run said
    new = camp.log.arm[n_before:]
    assert new.size == dry.contacts
    assert np.isclose(camp.sim.arms.worst_case_cost[new].sum(), dry.worst_case_cost)
    assert dry.worst_case_cost <= dry.budget_available + 1e-9
    camp.run()
    assert camp.report().to_dict()["conversions"] == plain.report().to_dict()["conversions"]
    assert np.array_equal(camp.log.arm, plain.log.arm)


def test_forecast_before_launch() -> None:
    camp = _campaign("oracle")
    fc = camp.forecast(runs=4)
    assert fc.runs == 4 and 0 < fc.p_goal_within_budget <= 1
    assert fc.cost_to_goal_median is not None
    assert fc.cost_to_goal_q25 <= fc.cost_to_goal_median <= fc.cost_to_goal_q75 <= 120.0  # type: ignore[operator]
    assert len(camp.log) == 0 and camp.status == "ready"
    assert camp.forecast(runs=4) == fc  # deterministic for the campaign's seed
    hard = _campaign("oracle", goal=Goal(target=100_000)).forecast(runs=2)
    assert hard.p_goal_within_budget == 0 and hard.cost_to_goal_median is None
    camp.step()
    with pytest.raises(CampaignError, match="before launch"):
        camp.forecast()
