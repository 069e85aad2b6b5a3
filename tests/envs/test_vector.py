"""Both environments run in Gymnasium's synchronous and asynchronous vector environments."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from tests.envs.conftest import SMALL

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    (envs.CAMPAIGN_ID, {}),
    (envs.CUSTOMER_BANDIT_ID, {"batch_size": 4, "episode_length": 10, "delayed": True}),
]


def run(vec: gym.vector.VectorEnv, steps: int = 30) -> list[Any]:
    vec.action_space.seed(3)
    obs, info = vec.reset(seed=[1, 2])
    assert obs.shape == (2, *vec.single_observation_space.shape)
    assert "action_mask" in info
    out: list[Any] = [obs]
    for _ in range(steps):
        obs, rew, term, trunc, info = vec.step(vec.action_space.sample())
        assert obs.shape[0] == rew.shape[0] == term.shape[0] == trunc.shape[0] == 2
        assert vec.single_observation_space.contains(obs[0].astype(np.float32))
        out += [obs, rew, term, trunc]
    vec.close()
    return out


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS, ids=["campaign", "bandit"])
def test_sync_and_async_agree(env_id: str, kwargs: dict[str, Any]) -> None:
    def make() -> gym.Env[Any, Any]:
        return gym.make(env_id, scenario="retail", n_customers=SMALL, **kwargs)

    sync = run(gym.vector.SyncVectorEnv([make, make]))
    asyn = run(gym.vector.AsyncVectorEnv([make, make]))
    assert all(np.array_equal(a, b) for a, b in zip(sync, asyn, strict=True))


def test_make_vec() -> None:
    vec = gym.make_vec(envs.CAMPAIGN_ID, num_envs=2, vectorization_mode="sync", n_customers=SMALL)
    run(vec, steps=5)
