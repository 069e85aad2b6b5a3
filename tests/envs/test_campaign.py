"""Campaign-v0: layout, mapping and masks, budget and goal stops, draining, defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.campaign import ALL_SEGMENT, CampaignEnv
from simulators import load_scenario
from tests.envs.conftest import SMALL, TINY, RecordingSimulator

# tiny: segments (persuadable, sleeper); arms no_contact, email/promo/none, email/promo/deal.
EMAIL_ALL = np.array([2, 0, 0, 0, 4])  # all customers, plain e-mail, full volume
DEAL_PERSUADABLE = np.array([0, 0, 0, 1, 4])


def run(env: CampaignEnv, action: np.ndarray, seed: int = 0) -> list[tuple[Any, ...]]:
    env.reset(seed=seed)
    out = []
    while True:
        step = env.step(action)
        out.append(step)
        if step[2] or step[3]:
            return out


def test_layout(scenario: str) -> None:
    env = CampaignEnv(scenario, n_customers=SMALL)
    sc = load_scenario(scenario)
    arms = env.simulator.arms
    assert env.segment_names == (*sc.population.segments, ALL_SEGMENT)
    assert list(env.action_space.nvec) == [
        len(sc.population.segments) + 1,
        len(arms.channel_names),
        len(arms.content_names),
        len(arms.offer_names),
        5,
    ]
    S, C, A = len(sc.population.segments), len(arms.channel_names), len(arms)
    assert env.observation_space.shape == (7 + S * (5 + C) + 4 * (A - 1),)
    assert len(env.observation_names) == env.observation_space.shape[0]
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert obs[env.observation_names.index("budget_remaining")] == 1.0
    assert info["action_mask"].shape == (int(env.action_space.nvec.sum()),)


def test_wave_and_statistics() -> None:
    env = CampaignEnv(TINY, max_iterations=3)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(EMAIL_ALL)
    assert info["segment"] == ALL_SEGMENT and info["arm_name"] == "email/promo/none"
    assert info["eligible"] == 2000 and info["requested"] == info["sent"] == 500
    assert not info["mapped"] and not info["budget_limited"]
    assert info["spent_step"] == pytest.approx(250.0)  # 500 e-mails at $0.50
    names = env.observation_names
    assert obs[names.index("last_wave")] == 1.0
    assert obs[names.index("budget_spent")] == pytest.approx(250.0 / 400.0)
    assert obs[names.index("arm/email/promo/none/sends")] > 0
    rate = obs[names.index("arm/email/promo/none/conversion_rate")]
    assert rate == pytest.approx(info["conversions"] / 500, abs=1e-6)
    # Reward "goal": conversions * budget / target - spend, over the budget.
    value = info["conversions"] * 400.0 / 300.0
    assert reward == pytest.approx((value - 250.0) / 400.0)
    assert not terminated and not truncated


def test_nonexistent_arm_is_mapped() -> None:
    sc = load_scenario(TINY).model_copy(update={"arms": ["email/promo/deal"]})
    env = CampaignEnv(sc, n_customers=500)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([2, 0, 0, 0, 1]))  # email/promo/none is not an arm
    assert info["mapped"] and info["arm_name"] == "email/promo/deal"
    assert env.arm_lookup.tolist() == [[[1, 1]]]


def test_volume_zero_and_segments() -> None:
    env = CampaignEnv(TINY, max_iterations=3)
    env.reset(seed=0)
    _, _reward, _, _, info = env.step(np.array([0, 0, 0, 0, 0]))
    assert info["sent"] == 0 and info["spent_step"] == 0
    _, _, _, _, info = env.step(np.array([1, 0, 0, 0, 2]))  # half of the sleepers
    assert info["segment"] == "sleeper"
    assert info["sent"] == pytest.approx(info["eligible"] / 2, abs=1)


def test_goal_reached_terminates_with_bonus() -> None:
    env = CampaignEnv(TINY, goal_target=20, goal_bonus=2.5)
    steps = run(env, EMAIL_ALL)
    _obs, reward, terminated, truncated, info = steps[-1]
    assert terminated and not truncated and info["goal_reached"]
    assert info["stop_reason"] == "goal_reached" and info["conversions"] >= 20
    assert reward > 2.0  # the bonus dominates one wave's value
    with pytest.raises(RuntimeError, match="reset"):
        env.step(EMAIL_ALL)


def test_budget_exhaustion_terminates_and_never_overspends() -> None:
    env = CampaignEnv(TINY, budget=40.0, goal_target=10**6)
    env.reset(seed=0)
    info = env.step(DEAL_PERSUADABLE)[4]
    assert info["budget_limited"] and info["sent"] == 1  # one deal reserves $30.50
    env = CampaignEnv(TINY, budget=1.2, goal_target=10**6)
    steps = run(env, EMAIL_ALL)
    assert len(steps) == 1
    _, _, terminated, truncated, info = steps[0]
    assert info["sent"] == 2 and info["budget_limited"]  # $0.50 each
    assert terminated and not truncated and info["stop_reason"] == "budget_exhausted"
    assert info["spent"] == pytest.approx(1.0) and info["remaining"] == pytest.approx(0.2)


def test_masks_follow_budget() -> None:
    env = CampaignEnv(TINY, budget=20.0)
    _, info = env.reset(seed=0)
    nvec = env.action_space.nvec
    mask = info["action_mask"]
    seg, ch, co, of, vol = np.split(mask, np.cumsum(nvec)[:-1])
    assert seg.all() and ch.all() and co.all() and vol.all()
    assert of.tolist() == [True, False]  # the deal (worst case $30.50) cannot be afforded


def test_truncation_drains_delayed_conversions() -> None:
    sim = RecordingSimulator(TINY)
    env = CampaignEnv(simulator=sim, goal_target=10**6, budget=10**6, max_iterations=2)
    steps = run(env, EMAIL_ALL)
    assert len(steps) == 2 and steps[-1][3] and not steps[-1][2]
    assert steps[-1][4]["stop_reason"] == "max_iterations"
    assert sim.iteration == 2 + env.window  # drained through the attribution window
    assert steps[-1][4]["reserved"] == 0


def test_min_contact_gap() -> None:
    env = CampaignEnv(
        TINY,
        n_customers=400,
        customers_per_iteration=400,
        min_contact_gap=3,
        goal_target=10**6,
        budget=10**6,
    )
    env.reset(seed=0)
    sent = [env.step(EMAIL_ALL)[4]["sent"] for _ in range(4)]
    assert sent == [400, 0, 0, 400]


def test_net_value_reward() -> None:
    env = CampaignEnv(TINY, reward="net_value", reward_scale=1.0, max_iterations=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(EMAIL_ALL)
    assert reward == pytest.approx(info["revenue"] * 0.5 - info["spent_step"])


def test_defaults_scale_with_population() -> None:
    sc = load_scenario("retail")
    g = sc.default_goal
    env = CampaignEnv("retail", n_customers=sc.population.size // 10)
    assert env.goal.budget == pytest.approx(g.budget / 10)
    assert env.goal.target == pytest.approx(g.target / 10)
    assert env.goal.customers_per_iteration == round(g.customers_per_iteration / 10)
    assert env.goal.max_iterations == g.max_iterations
    full = CampaignEnv("retail", budget=123.0, max_iterations=4)
    assert full.goal.budget == 123.0 and full.goal.target == g.target
    assert full.simulator.n_customers == sc.population.size


class NoSegments(RecordingSimulator):
    """A foreign simulator without segment features: only the "all" audience exists."""

    @property  # type: ignore[misc]
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f for f in self._sim.feature_names if not f.startswith("segment="))

    def features(self, customers: np.ndarray) -> Any:
        keep = [not f.startswith("segment=") for f in self._sim.feature_names]
        return self._sim.features(customers)[:, keep]


def test_foreign_simulator_without_segments() -> None:
    env = CampaignEnv(simulator=NoSegments(TINY), goal_target=100, budget=10**4)
    assert env.segment_names == (ALL_SEGMENT,) and env.action_space.nvec[0] == 1
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 0, 0, 0, 4]))
    assert info["sent"] == 2000  # everyone: no scenario, so customers_per_iteration is 10,000


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="volume_levels"):
        CampaignEnv(TINY, volume_levels=(0.0, 1.5))
    with pytest.raises(ValueError, match="reward"):
        CampaignEnv(TINY, reward="profit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_contact_gap"):
        CampaignEnv(TINY, min_contact_gap=0)
    with pytest.raises(ValueError, match="attribution_window"):
        CampaignEnv(TINY, attribution_window=0)  # tiny's conversions lag up to 1 iteration
    with pytest.raises(ValueError, match="budget"):
        CampaignEnv(TINY, budget=-1.0)
    env = CampaignEnv(TINY)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="5 indices"):
        env.step(np.array([9, 0, 0, 0, 0]))
