"""Holdout and incrementality: the 95% interval covers the simulator's true incremental effect."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from agent import Campaign, CampaignError, CampaignSpec, Goal
from policies import make_policy
from simulators import Simulator, load_scenario

ARM = "mail/bestsellers/pct25"
N = 20_000


def _one(seed: int) -> tuple[float, dict[str, float], Campaign]:
    """One single-wave campaign sending ARM to every reachable treated customer, and the truth:
    the sum over contacted customers of P(convert | ARM) - P(convert | no contact)."""
    sim = Simulator(load_scenario("retail"), n_customers=N)
    spec = CampaignSpec(
        goal=Goal(target=1e9), budget=1e6, customers_per_iteration=N, max_iterations=1, holdout=0.3
    )
    camp = Campaign(spec, sim, make_policy(f"fixed:{ARM}", sim, seed=seed), seed=seed)
    arm = sim.arms.index(ARM)
    everyone = np.arange(N)
    sent = sim.arm_mask(everyone)[:, arm] & ~camp.holdout
    gt = sim.expected(everyone[sent], np.full(int(sent.sum()), arm))
    truth = float((gt.p_convert - gt.p_convert_baseline).sum())
    report = camp.run()
    assert report.incremental is not None
    assert not np.isin(camp.log.customer, np.flatnonzero(camp.holdout)).any()
    return truth, report.incremental, camp


def test_interval_covers_the_true_effect_at_about_95_percent() -> None:
    seeds = range(100)
    covered, excludes_zero, errors = 0, 0, []
    for seed in seeds:
        truth, inc, _ = _one(seed)
        lo, hi = inc["incremental_conversions_ci_low"], inc["incremental_conversions_ci_high"]
        covered += lo <= truth <= hi
        excludes_zero += lo > 0
        errors.append(inc["incremental_conversions"] - truth)
    # 95% nominal; with 100 seeds the binomial spread is about 2 points.
    assert 0.89 <= covered / len(seeds) <= 0.995
    # Not a vacuous interval: the effect (about 100 conversions) is detected in most seeds.
    assert excludes_zero / len(seeds) >= 0.6
    # Unbiased: the mean error is within 3 standard errors of zero.
    assert abs(np.mean(errors)) <= 3 * np.std(errors) / np.sqrt(len(errors))


def test_holdout_size_and_report() -> None:
    _, inc, camp = _one(0)
    assert inc["holdout_customers"] == round(0.3 * N) == camp.holdout.sum()
    assert inc["treated_customers"] == N - inc["holdout_customers"]
    assert (
        inc["incremental_revenue_ci_low"] <= inc["incremental_revenue"] <= inc["incremental_revenue_ci_high"]
    )


def test_incremental_goal_needs_a_holdout_and_can_be_reached() -> None:
    with pytest.raises(ValidationError, match="needs a holdout"):
        CampaignSpec(goal=Goal(metric="incremental_conversions", target=10), budget=10)
    sim = Simulator(load_scenario("retail"), n_customers=N)
    spec = CampaignSpec(
        goal=Goal(metric="incremental_conversions", target=20),
        budget=1e5,
        customers_per_iteration=N // 4,
        max_iterations=8,
        holdout=0.3,
    )
    rep = Campaign(spec, sim, make_policy(f"fixed:{ARM}", sim, seed=1), seed=1).run()
    assert rep.incremental is not None
    assert rep.goal_reached == (rep.incremental["incremental_conversions"] >= 20)
    with pytest.raises(CampaignError, match="empty group"):
        tiny = Simulator(load_scenario("retail"), n_customers=3)
        Campaign(CampaignSpec(goal=Goal(target=1), budget=1, holdout=0.1), tiny, make_policy("random", tiny))
