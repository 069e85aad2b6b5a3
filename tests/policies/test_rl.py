"""RL policies (``ppo``, ``a2c``): training, save/load, and campaigns through the agent loop.

One short PPO run (a few thousand steps on a 3,000-customer retail world) is shared by the
tests of this module; it learns little, the tests check the plumbing, not the quality.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3-test-"))

from agent import Campaign, CampaignSpec
from envs.campaign import CampaignEnv
from policies.base import DecisionContext
from policies.rl import A2CPolicy, PPOPolicy, SB3Policy, train_rl
from simulators import Simulator, load_scenario

N = 3000


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[PPOPolicy, Path]:
    out = tmp_path_factory.mktemp("ppo")
    policy = train_rl("ppo", "retail", 4096, out, seed=0, n_customers=N, progress=False)
    assert isinstance(policy, PPOPolicy)
    return policy, out


def small_spec() -> CampaignSpec:
    sc = load_scenario("retail")
    return CampaignSpec.from_scenario(sc, goal_target=100, budget=500, customers_per_iteration=600)


def context(sim: Simulator, rng: np.random.Generator, iteration: int = 0) -> DecisionContext:
    customers = np.sort(rng.choice(sim.n_customers, 600, replace=False))
    return DecisionContext(
        customers=customers,
        features=sim.features(customers),
        mask=sim.arm_mask(customers),
        arms=sim.arms,
        iteration=iteration,
        iterations_left=20 - iteration,
        budget_available=500.0,
        goal_metric="conversions",
        goal_remaining=100.0,
        attribution_window=2,
    )


def test_saved_files_and_config(trained: tuple[PPOPolicy, Path]) -> None:
    policy, out = trained
    assert (out / "policy.json").is_file() and (out / "model.zip").is_file()
    doc = json.loads((out / "policy.json").read_text())
    assert doc["policy"] == "ppo"
    assert doc["config"]["training"]["timesteps"] == 4096
    assert doc["config"]["segment_names"][-1] == "all"
    assert policy.model is not None


def test_observation_matches_environment_layout(trained: tuple[PPOPolicy, Path]) -> None:
    policy, _ = trained
    env = CampaignEnv("retail", n_customers=N)
    assert policy.model.observation_space.shape == env.observation_space.shape
    assert tuple(policy.segment_names) == env.segment_names


def test_same_decisions_after_load(trained: tuple[PPOPolicy, Path], tmp_path: Path) -> None:
    policy, out = trained
    sim = Simulator(load_scenario("retail"), n_customers=N)
    sim.reset(seed=1)
    for deterministic in (True, False):
        before = PPOPolicy.load(out, deterministic=deterministic)
        before.save(tmp_path / "again")
        after = PPOPolicy.load(tmp_path / "again")
        for it in range(3):
            ctx = context(sim, np.random.default_rng(it), iteration=it)
            a, b = before.act(ctx), after.act(ctx)
            np.testing.assert_array_equal(a.arms, b.arms)
            np.testing.assert_array_equal(a.pscores, b.pscores)
    # The trained policy itself, and the one loaded from its folder.
    ctx = context(sim, np.random.default_rng(7))
    np.testing.assert_array_equal(policy.act(ctx).arms, PPOPolicy.load(out).act(ctx).arms)
    # And the campaign as a whole, for the same seed.
    spec = small_spec()
    r1 = Campaign(spec, Simulator(load_scenario("retail"), n_customers=N), PPOPolicy.load(out), seed=3).run()
    r2 = Campaign(spec, Simulator(load_scenario("retail"), n_customers=N), PPOPolicy.load(out), seed=3).run()
    assert r1.spend == r2.spend and r1.conversions == r2.conversions and r1.sends == r2.sends


def test_save_mid_campaign_round_trip(trained: tuple[PPOPolicy, Path], tmp_path: Path) -> None:
    _, out = trained
    spec = small_spec()
    sc = load_scenario("retail")
    policy = PPOPolicy.load(out, deterministic=False)
    camp = Campaign(spec, Simulator(sc, n_customers=N), policy, seed=5)
    for _ in range(3):
        camp.step()
    policy.save(tmp_path / "mid")
    copy = PPOPolicy.load(tmp_path / "mid")
    rng = np.random.default_rng(9)
    sim = camp.sim
    ctx = context(sim, rng, iteration=3)  # type: ignore[arg-type]
    a, b = policy.act(ctx), copy.act(ctx)
    np.testing.assert_array_equal(a.arms, b.arms)
    np.testing.assert_array_equal(a.pscores, b.pscores)


@pytest.mark.parametrize("deterministic", [True, False])
def test_campaign_end_to_end_within_budget(trained: tuple[PPOPolicy, Path], deterministic: bool) -> None:
    _, out = trained
    spec = small_spec()
    policy = PPOPolicy.load(out, deterministic=deterministic)
    report = Campaign(spec, Simulator(load_scenario("retail"), n_customers=N), policy, seed=0).run()
    assert report.spend <= report.budget + 1e-9
    assert report.iterations >= 1
    assert report.policy == "ppo"


def test_propensities_are_probabilities(trained: tuple[PPOPolicy, Path]) -> None:
    _, out = trained
    sim = Simulator(load_scenario("retail"), n_customers=N)
    sim.reset(seed=2)
    rng = np.random.default_rng(4)
    for deterministic in (True, False):
        policy = PPOPolicy.load(out, deterministic=deterministic)
        for it in range(3):
            dec = policy.act(context(sim, rng, iteration=it))
            assert np.all(dec.pscores > 0) and np.all(dec.pscores <= 1)
            assert dec.arms.shape == dec.pscores.shape
            contacted = dec.arms != 0
            if contacted.any():
                # One wave per iteration: a single arm, and one joint probability.
                assert np.unique(dec.arms[contacted]).size == 1
                assert np.unique(dec.pscores[contacted]).size == 1


def test_respects_mask(trained: tuple[PPOPolicy, Path]) -> None:
    _, out = trained
    sim = Simulator(load_scenario("retail"), n_customers=N)
    sim.reset(seed=2)
    ctx = context(sim, np.random.default_rng(1))
    policy = PPOPolicy.load(out, deterministic=False)
    for _ in range(5):
        dec = policy.act(ctx)
        assert np.all(ctx.mask[np.arange(len(ctx)), dec.arms])
    blocked = replace(ctx, mask=np.eye(1, len(sim.arms), dtype=bool).repeat(len(ctx), 0))
    dec = policy.act(blocked)
    assert np.all(dec.arms == 0)


def test_a2c_trains_and_loads(tmp_path: Path) -> None:
    policy = train_rl("a2c", "retail", 200, tmp_path, seed=1, n_customers=N, progress=False)
    assert isinstance(policy, A2CPolicy)
    loaded = SB3Policy.load(tmp_path)
    assert isinstance(loaded, A2CPolicy)
    report = Campaign(small_spec(), Simulator(load_scenario("retail"), n_customers=N), loaded, seed=0).run()
    assert report.spend <= report.budget + 1e-9


def test_wrong_policy_and_algo(trained: tuple[PPOPolicy, Path]) -> None:
    _, out = trained
    with pytest.raises(ValueError, match="ppo"):
        A2CPolicy.load(out)
    with pytest.raises(ValueError, match="algo"):
        train_rl("dqn", "retail", 10, out / "x", seed=0, n_customers=N, progress=False)
    with pytest.raises(RuntimeError, match="no model"):
        PPOPolicy(seed=0).act(context(_reset_sim(), np.random.default_rng(0)))


def _reset_sim() -> Simulator:
    sim = Simulator(load_scenario("retail"), n_customers=N)
    sim.reset(seed=0)
    return sim
