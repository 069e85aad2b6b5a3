"""The forecast at a running campaign's own pace (agent.forecast.pace_forecast, Campaign.pace)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from agent import Campaign, CampaignSpec, Goal
from agent.forecast import PaceForecast, pace_forecast
from agent.report import IterationRecord
from policies import make_policy
from simulators import Scenario, Simulator, load_scenario

EMAIL = "fixed:email/bestsellers/none"  # a steady pace: no learning, no offers


@pytest.fixture(scope="module")
def retail() -> Scenario:
    return load_scenario("retail")


def _campaign(
    scenario: Scenario,
    *,
    seed: int = 0,
    target: float = 400,
    budget: float = 1000.0,
    n: int = 40_000,
    per_iteration: int = 4000,
    max_iterations: int = 30,
    metric: str = "conversions",
    policy: str = EMAIL,
) -> Campaign:
    sim = Simulator(scenario, n_customers=n)
    spec = CampaignSpec(
        goal=Goal(target=target, metric=metric),
        budget=budget,
        customers_per_iteration=per_iteration,
        max_iterations=max_iterations,
    )
    camp = Campaign(spec, sim, make_policy(policy, sim, seed=seed), seed=seed)
    camp.start()
    return camp


def _run_waves(camp: Campaign, waves: int) -> None:
    """Tick until ``waves`` sending waves have run (holds do not count)."""
    while sum(r.sends > 0 for r in camp.history) < waves:
        assert camp.tick() is not None, "the campaign stopped before the waves asked for"


def _finite(fc: PaceForecast) -> None:
    for name, value in dataclasses.asdict(fc).items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    json.dumps(dataclasses.asdict(fc), allow_nan=False)


def _record(
    i: int, sends: int, conv_proj: float, spend_total: float, rev_proj: float = 0.0
) -> IterationRecord:
    return IterationRecord(
        iteration=i,
        candidates=sends,
        sends=sends,
        sends_by_channel={"email": sends},
        delivered=0,
        opened=0,
        clicked=0,
        conversions=0,
        revenue=0.0,
        unsubscribed=0,
        spend=0.0,
        spend_total=spend_total,
        reserved=0.0,
        conversions_total=int(conv_proj),
        revenue_total=rev_proj,
        goal_progress=0.0,
        conversions_projected=conv_proj,
        revenue_projected=rev_proj,
    )


def test_the_arithmetic_on_records() -> None:
    """Four waves of 10 projected conversions for $5 each, one hold: 10 a wave at $0.50."""
    hist = [_record(i, 100, 10.0 * (i + 1), 5.0 * (i + 1)) for i in range(4)]
    hist.append(_record(4, 0, 40.0, 20.0))  # a held iteration: not a wave
    fc = pace_forecast(hist, 100, "conversions", 60.0, 20.0, 3.0, 30.0, 10.0, 10)
    assert fc.waves_done == 4
    assert fc.per_wave == pytest.approx(10.0)
    assert fc.cost_per_unit == pytest.approx(0.5)
    # 60 more from new waves: 6 waves; pending offers at most what is reserved (min(3, 10 * 0.5)).
    assert fc.goal_wave == 10
    assert fc.cost_to_goal == pytest.approx(20.0 + 3.0 + 60 * 0.5)
    assert fc.add_budget == 0.0
    assert fc.reachable_target >= 100
    # Only the last two waves: the pace they had.
    hist2 = [*hist[:2], _record(2, 100, 40.0, 20.0), _record(3, 100, 60.0, 30.0)]
    fc2 = pace_forecast(hist2, 100, "conversions", 60.0, 30.0, 0.0, 60.0, 0.0, 10, recent=2)
    assert fc2.per_wave == pytest.approx(20.0)
    assert fc2.cost_per_unit == pytest.approx(0.5)
    assert fc2.goal_wave == 6  # 40 more at 20 a wave


@pytest.mark.parametrize("seed", range(6))
def test_goal_wave_and_cost_close_to_what_the_campaign_needed(retail: Scenario, seed: int) -> None:
    """After 6 of its ~17 waves, the forecast at a steady policy's pace is within 3 waves and 15% of
    the cost of what the campaign then actually needed (measured: at most 2 waves and 11% on
    these seeds)."""
    camp = _campaign(retail, seed=seed)
    _run_waves(camp, 6)
    fc = camp.pace()
    _finite(fc)
    assert fc.p_goal_within_budget > 0.99
    report = camp.run()
    assert report.goal_reached and report.cost_to_goal is not None
    waves = sum(r.sends > 0 for r in report.history)
    assert fc.goal_wave is not None and fc.cost_to_goal is not None
    assert abs(fc.goal_wave - waves) <= 3
    assert fc.cost_to_goal == pytest.approx(report.cost_to_goal, rel=0.15)


def test_revenue_goal_close_to_what_the_campaign_needed(retail: Scenario) -> None:
    camp = _campaign(retail, target=40_000, metric="revenue")
    _run_waves(camp, 6)
    fc = camp.pace()
    assert fc.per_wave > 500  # dollars of revenue a wave, not conversions
    report = camp.run()
    assert report.goal_reached and report.cost_to_goal is not None
    assert fc.goal_wave is not None and fc.cost_to_goal is not None
    assert abs(fc.goal_wave - sum(r.sends > 0 for r in report.history)) <= 3
    assert fc.cost_to_goal == pytest.approx(report.cost_to_goal, rel=0.2)


def test_easy_goal(retail: Scenario) -> None:
    camp = _campaign(retail, target=300, budget=500.0)
    _run_waves(camp, 3)
    fc = camp.pace()
    assert fc.p_goal_within_budget > 0.99
    assert fc.goal_wave is not None and fc.goal_wave > fc.waves_done
    assert fc.add_budget == 0.0
    assert fc.reachable_target >= 300
    assert fc.message.startswith("at this pace") and f"goal at wave {fc.goal_wave}" in fc.message


def test_impossible_goal_budget_bound(retail: Scenario) -> None:
    """A goal the budget cannot pay for at this pace (iterations are no limit): p near 0, the
    budget to add and the reachable target say the same thing."""
    camp = _campaign(retail, target=3000, budget=30.0, max_iterations=500)
    _run_waves(camp, 4)
    fc = camp.pace()
    _finite(fc)
    assert fc.p_goal_within_budget < 0.01
    assert fc.goal_wave is None
    assert fc.cost_to_goal is not None
    assert fc.add_budget == pytest.approx(fc.cost_to_goal - 30.0)
    assert fc.add_budget > 0
    assert fc.reachable_target < 3000
    assert "add $" in fc.message and "lower the target to" in fc.message
    pending, left = camp.projected()["conversions_pending"], 500 - camp.iterations

    def at(target: float, budget: float) -> PaceForecast:
        return pace_forecast(
            camp.history,
            target,
            "conversions",
            budget,
            camp.ledger.spent,
            camp.ledger.reserved,
            camp.achieved,
            pending,
            left,
        )

    # With the budget added, the goal is reached at this pace: nothing more to add.
    more = at(3000, 30.0 + fc.add_budget + 1e-6)
    assert more.goal_wave is not None and more.add_budget == 0.0
    assert more.p_goal_within_budget > 0.2  # the point estimate is the pace's mean
    # The reachable target is reached within the budget at this pace, just.
    lower = at(fc.reachable_target * (1 - 1e-9), 30.0)
    assert lower.goal_wave is not None and lower.add_budget == 0.0


def test_impossible_goal_iteration_bound(retail: Scenario) -> None:
    """Money is no limit, the iterations are: nothing to add, more iterations to allow."""
    camp = _campaign(retail, target=3000, budget=5000.0, max_iterations=10)
    _run_waves(camp, 3)
    fc = camp.pace()
    assert fc.p_goal_within_budget < 0.01
    assert fc.goal_wave is None
    assert fc.add_budget == 0.0
    assert fc.reachable_target < 3000
    assert "more iteration" in fc.message


def test_no_pace_before_the_first_wave(retail: Scenario) -> None:
    camp = _campaign(retail)
    fc = camp.pace()
    _finite(fc)
    assert (fc.waves_done, fc.per_wave, fc.cost_per_unit, fc.add_budget) == (0, 0.0, 0.0, 0.0)
    assert fc.goal_wave is None and fc.cost_to_goal is None
    assert fc.p_goal_within_budget == 0.0
    assert fc.reachable_target == 0.0
    assert fc.message.startswith("no pace yet")


def test_no_units_in_the_recent_waves_is_no_pace() -> None:
    hist = [_record(i, 100, 0.0, 1.0 * (i + 1)) for i in range(3)]
    fc = pace_forecast(hist, 50, "conversions", 100.0, 3.0, 0.0, 0.0, 0.0, 10)
    _finite(fc)
    assert fc.per_wave == 0.0 and fc.goal_wave is None and fc.p_goal_within_budget == 0.0
    assert "not in sight" in fc.message


def test_goal_already_counted() -> None:
    """Observed plus pending reach the target: the goal is at the current wave, p = 1."""
    hist = [_record(i, 100, 10.0 * (i + 1), 5.0 * (i + 1)) for i in range(3)]
    fc = pace_forecast(hist, 30, "conversions", 100.0, 15.0, 0.0, 25.0, 5.0, 10)
    assert fc.goal_wave == 3 and fc.p_goal_within_budget == 1.0 and fc.add_budget == 0.0


def test_seeded_and_checked(retail: Scenario) -> None:
    camp = _campaign(retail, target=600, budget=60.0)
    _run_waves(camp, 3)
    assert camp.pace(seed=7) == camp.pace(seed=7)
    # A target just reachable at the pace's mean: the pace's uncertainty puts p near a half.
    at = camp.pace()
    mid = pace_forecast(
        camp.history,
        at.reachable_target,
        "conversions",
        60.0,
        camp.ledger.spent,
        camp.ledger.reserved,
        camp.achieved,
        at.pending,
        30 - camp.iterations,
    )
    assert 0.2 < mid.p_goal_within_budget < 0.8
    with pytest.raises(ValueError, match="recent"):
        pace_forecast(camp.history, 1, "conversions", 1, 0, 0, 0, 0, 1, recent=0)
    with pytest.raises(ValueError, match="metric"):
        pace_forecast(camp.history, 1, "clicks", 1, 0, 0, 0, 0, 1)
