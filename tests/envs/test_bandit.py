"""CustomerBandit-v0: spaces, masks, budget refusals, delayed rewards, fatigue options."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.customer_bandit import CustomerBanditEnv
from tests.envs.conftest import SMALL, TINY


def test_spaces_single_and_batch() -> None:
    one = CustomerBanditEnv("retail", n_customers=SMALL)
    n_arms, n_feat = len(one.arm_names), len(one.feature_names)
    assert one.action_space == gym.spaces.Discrete(n_arms)
    assert one.observation_space.shape == (n_feat,)
    obs, info = one.reset(seed=0)
    assert obs.shape == (n_feat,) and obs.dtype == np.float32
    assert info["action_mask"].shape == (n_arms,) and info["action_mask"][0]
    batch = CustomerBanditEnv("retail", n_customers=SMALL, batch_size=32)
    assert batch.action_space == gym.spaces.MultiDiscrete([n_arms] * 32)
    obs, info = batch.reset(seed=0)
    assert obs.shape == (32, n_feat)
    assert batch.action_masks().shape == (32 * n_arms,)
    assert len(np.unique(info["customers"])) == 32


def test_masked_arms_are_sent_as_no_contact() -> None:
    env = CustomerBanditEnv("retail", n_customers=SMALL, batch_size=200)
    env.reset(seed=1)
    mask = env.action_masks().reshape(200, -1)
    # For each customer the first forbidden arm if there is one, else the first allowed one.
    forbidden = ~mask
    has = forbidden.any(axis=1)
    assert has.any()
    action = np.where(has, forbidden.argmax(axis=1), 1 + mask[:, 1:].argmax(axis=1))
    _, _, _, _, info = env.step(action)
    assert np.array_equal(info["invalid"], has)
    assert np.all(info["arms"][has] == 0)
    assert np.array_equal(info["arms"][~has], action[~has])


def test_budget_refuses_in_batch_order() -> None:
    env = CustomerBanditEnv(TINY, batch_size=100, budget=10.0)
    env.reset(seed=0)
    # The deal reserves 0.5 + 30 = 30.5 > 10: every deal is refused; plain e-mails (0.5) fit
    # until 20 of them have been reserved.
    _, _, _, _, info = env.step(np.full(100, 2))
    assert info["refused"].all() and np.all(info["arms"] == 0)
    _, _, _, _, info = env.step(np.full(100, 1))
    assert np.array_equal(info["refused"], np.arange(100) >= 20)
    assert info["spent"] == pytest.approx(10.0)


@pytest.mark.parametrize("reward", ["conversions", "revenue"])
def test_reward_kinds(reward: str) -> None:
    env = CustomerBanditEnv(TINY, batch_size=500, reward=reward)  # type: ignore[arg-type]
    env.reset(seed=0)
    total = 0.0
    for _ in range(5):
        _, r, _, _, info = env.step(np.full(500, 1))
        assert np.all(info["rewards"] >= 0)
        total += float(r)
    if reward == "conversions":
        assert total == int(total) and total > 0
    else:
        assert total > 0 and total % 100 == pytest.approx(0.0, abs=1e-6)  # $100 orders


def test_delayed_rewards_arrive_later() -> None:
    env = CustomerBanditEnv(TINY, batch_size=2000, episode_length=6, delayed=True)
    env.reset(seed=0)
    late_total = 0.0
    for t in range(6):
        _, reward, _, truncated, info = env.step(np.full(2000, 2))
        assert info["late_rewards"].shape == (env.window, 2000) == (1, 2000)
        assert reward == pytest.approx(info["rewards"].sum() + info["late_rewards"].sum())
        if t > 0:
            late_total += float(info["late_rewards"].sum())
    assert truncated
    assert late_total > 0  # half of tiny's conversions arrive one iteration late


def test_no_fatigue_presents_each_customer_once() -> None:
    env = CustomerBanditEnv(TINY, n_customers=300, batch_size=50, episode_length=6, fatigue=False)
    obs, info = env.reset(seed=0)
    seen = [info["customers"]]
    contacts_col = env.feature_names.index("contacts")
    for _ in range(6):
        obs, _, _, truncated, info = env.step(np.full(50, 1))
        if not truncated:  # (the final observation shows the last batch again)
            assert np.all(obs[:, contacts_col] == 0)  # nobody presented was ever contacted
        seen.append(info["customers"])
    assert truncated
    assert len(np.unique(np.concatenate(seen[1:]))) == 300
    with pytest.raises(ValueError, match="at most once per episode"):
        CustomerBanditEnv(TINY, n_customers=300, batch_size=50, episode_length=7, fatigue=False)


def test_fatigue_carries_across_steps() -> None:
    env = CustomerBanditEnv(TINY, n_customers=100, batch_size=100, episode_length=5)
    env.reset(seed=0)
    contacts_col = env.feature_names.index("contacts")
    obs = None
    for _ in range(3):
        obs, *_ = env.step(np.full(100, 1))
    assert obs is not None and np.all(obs[:, contacts_col] > 0)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        CustomerBanditEnv(TINY, n_customers=10, batch_size=11)
    with pytest.raises(ValueError, match="reward"):
        CustomerBanditEnv(TINY, reward="profit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="episode_length"):
        CustomerBanditEnv(TINY, episode_length=0)
    env = CustomerBanditEnv(TINY, batch_size=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="3 arm"):
        env.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="arms must be in"):
        env.step(np.array([0, 1, 3]))


def test_gym_make_kwargs() -> None:
    env = gym.make(envs.CUSTOMER_BANDIT_ID, scenario=str(TINY), batch_size=4, episode_length=2)
    env.reset(seed=0)
    *_, truncated, _ = env.step(env.action_space.sample())
    assert not truncated
    *_, truncated, _ = env.step(env.action_space.sample())
    assert truncated
