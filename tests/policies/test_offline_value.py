"""The offline value policy in the catalogue: built by name, run in a campaign (learning through
``update``), saved and loaded by :func:`policies.load_policy`, refused on features it did not learn.
(Fitting it from logs and its OPE: tests/experiments/test_offline.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent import Campaign, CampaignSpec, Goal
from policies import load_policy, make_policy
from policies.base import DecisionContext
from policies.offline_value import MAX_STATISTICS, OfflineValuePolicy, _n_features, value_basis
from simulators import Simulator, load_scenario


def _ctx(sim: Simulator, n: int = 50) -> DecisionContext:
    c = np.arange(n, dtype=np.int64)
    return DecisionContext(
        customers=c,
        features=sim.features(c),
        mask=sim.arm_mask(c),
        arms=sim.arms,
        iteration=0,
        iterations_left=1,
        budget_available=100.0,
        goal_metric="conversions",
        goal_remaining=10.0,
    )


def test_a_retail_campaign_by_name_learns_and_round_trips(tmp_path: Path) -> None:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    pol = make_policy("offline_value:epsilon=0.2", sim, seed=0)
    assert isinstance(pol, OfflineValuePolicy) and pol.interactions is None
    spec = CampaignSpec(goal=Goal(target=120), budget=60.0, max_iterations=4, customers_per_iteration=1000)
    report = Campaign(spec, sim, pol, seed=0).run()
    assert report.iterations >= 1 and report.sends > 0
    assert report.spend <= spec.budget + 1e-9
    # 37 arms and 24 features: no pairwise products (the statistics would hold 3.9 million numbers)
    assert pol.interactions is False and pol.xtx is not None and pol.xtx.shape == (37, 25, 25)
    assert pol.weight is not None and pol.weight.sum() > 0
    loaded = load_policy(pol.save(tmp_path / "p"), sim)
    assert isinstance(loaded, OfflineValuePolicy) and loaded.config() == pol.config()
    ctx = _ctx(sim)
    pi = loaded.action_probabilities(ctx)
    assert np.allclose(pi, pol.action_probabilities(ctx)) and np.allclose(pi.sum(axis=1), 1.0)
    assert np.all(pi[~ctx.mask] == 0)


def test_unfitted_it_decides_with_known_propensities() -> None:
    sim = Simulator(load_scenario("hillstrom"), n_customers=100)
    sim.reset(seed=0)
    pol = OfflineValuePolicy(epsilon=0.3, seed=1)
    ctx = _ctx(sim)
    dec = pol.act(ctx)
    pi = pol.action_probabilities(ctx)
    assert np.allclose(dec.pscores, pi[np.arange(len(ctx)), dec.arms])
    assert pol.interactions is True  # 3 arms and 18 features: 3 * 190**2 numbers
    assert 3 * value_basis(np.zeros((1, 18))).shape[1] ** 2 <= MAX_STATISTICS


def test_a_policy_fitted_on_other_features_is_refused() -> None:
    sim = Simulator(load_scenario("hillstrom"), n_customers=100)
    sim.reset(seed=0)
    pol = OfflineValuePolicy(seed=0)
    rng = np.random.default_rng(0)
    pol.observe(rng.random((60, 11)), rng.integers(0, 3, 60), rng.random(60), np.ones(60), 3)
    with pytest.raises(ValueError, match="learned from 3 arms and 11 features, got 3 arms and 18"):
        pol.act(_ctx(sim))
    with pytest.raises(ValueError, match="learned from 11 features, got 18"):
        pol.values(sim.features(np.arange(5)))


@pytest.mark.parametrize(("d", "interactions"), [(0, True), (1, True), (11, True), (24, False), (24, True)])
def test_the_number_of_features_is_read_back_from_the_basis(d: int, interactions: bool) -> None:
    assert _n_features(value_basis(np.zeros((1, d)), interactions).shape[1], interactions) == d
