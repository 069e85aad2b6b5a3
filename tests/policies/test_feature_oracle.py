"""``feature_oracle``: fitted from observable features only, cached, calibrated, saved and loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent import Campaign, CampaignSpec
from policies import load_policy, make_policy
from policies.feature_oracle import FeatureOraclePolicy, cache_root
from simulators import Simulator, load_scenario

TINY = Path(__file__).parents[1] / "envs" / "tiny.yaml"
NAME = "feature_oracle:pairs=20000,fit_iterations=4"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAMPAIGN_OPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fits_once_is_cached_and_calibrated(cache: Path) -> None:
    sim = Simulator(load_scenario(TINY), n_customers=500)
    pol = make_policy(NAME, sim, seed=0)
    assert isinstance(pol, FeatureOraclePolicy)
    model = pol.model
    assert cache_root() == cache and len(list(cache.rglob("*.pkl"))) == 1
    assert model.pairs == 20_000
    # Tiny's response depends on the segment (observed) and the arm only: the model recovers it.
    assert model.r2["p_convert"] > 0.95 and model.r2["cost"] > 0.95
    pred, truth, _ = np.array(model.calibration).T
    assert np.abs(pred - truth).max() < 0.01
    again = make_policy(NAME, sim, seed=1)
    assert isinstance(again, FeatureOraclePolicy)
    assert again.model.seconds == model.seconds  # read from the cache, not refitted


def test_runs_a_campaign_and_survives_save_and_load(cache: Path, tmp_path: Path) -> None:
    sc = load_scenario(TINY)
    sim = Simulator(sc, n_customers=2000)
    pol = make_policy(NAME, sim, seed=3)
    spec = CampaignSpec.from_scenario(sc).model_copy(update={"budget": 5000.0})
    rep = Campaign(spec, sim, pol, seed=3).run()
    assert rep.spend <= spec.budget and rep.conversions > 0
    folder = pol.save(tmp_path / "saved")
    for path in cache.rglob("*.pkl"):
        path.unlink()  # the saved folder holds its own model
    loaded = load_policy(folder, sim)
    assert isinstance(loaded, FeatureOraclePolicy) and loaded.config() == pol.config()
    c = np.arange(300)
    from policies import DecisionContext

    ctx = DecisionContext(
        customers=c,
        features=sim.features(c),
        mask=sim.arm_mask(c),
        arms=sim.arms,
        iteration=0,
        iterations_left=3,
        budget_available=1e6,
        goal_metric="conversions",
        goal_remaining=20.0,
    )
    assert np.array_equal(loaded.act(ctx).arms, pol.act(ctx).arms)
    assert not list(cache.rglob("*.pkl"))  # nothing was refitted
