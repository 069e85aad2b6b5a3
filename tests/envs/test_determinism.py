"""The same seed gives the same episode, bit for bit; different seeds give different ones."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from tests.envs.conftest import SMALL

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    (envs.CAMPAIGN_ID, {}),
    (envs.CUSTOMER_BANDIT_ID, {"batch_size": 8, "episode_length": 60}),
    (envs.CUSTOMER_BANDIT_ID, {"batch_size": 8, "episode_length": 60, "delayed": True}),
]
IDS = ["campaign", "bandit", "bandit-delayed"]


def rollout(env_id: str, kwargs: dict[str, Any], seed: int, steps: int = 200) -> list[Any]:
    """200 random steps (actions from a fixed stream), resetting without a seed when done."""
    env = gym.make(env_id, scenario="retail", n_customers=SMALL, **kwargs)
    env.action_space.seed(12345)
    obs, info = env.reset(seed=seed)
    trace: list[Any] = [obs, info["action_mask"]]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace += [obs, reward, terminated, truncated, info["spent"], info["action_mask"]]
        if terminated or truncated:
            obs, info = env.reset()
            trace += [obs, info["action_mask"]]
    env.close()
    return trace


def same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS, ids=IDS)
def test_same_seed_same_episode(env_id: str, kwargs: dict[str, Any]) -> None:
    first = rollout(env_id, kwargs, seed=7)
    assert same(first, rollout(env_id, kwargs, seed=7))
    assert not same(first, rollout(env_id, kwargs, seed=8))


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS[:2], ids=IDS[:2])
def test_episodes_are_done_within_the_rollout(env_id: str, kwargs: dict[str, Any]) -> None:
    """The 200-step rollouts cross episode boundaries (so resets without a seed are covered)."""
    env = gym.make(env_id, scenario="retail", n_customers=SMALL, **kwargs)
    env.action_space.seed(0)
    env.reset(seed=0)
    ends = 0
    for _ in range(200):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            ends += 1
            env.reset()
    assert ends >= 2
