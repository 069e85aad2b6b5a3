"""Stable-Baselines3 PPO learns on Campaign-v0 (a short smoke run per seed).

The run uses a 3,000-customer retail world (the default goal scaled to it) and volume levels
(0.5, 1): every wave sends, so the policy must learn *what* to send (cheap channels, no deep
discounts) rather than discover first that sending anything can pay. With a 0 level, a run this
short often settles on sending nothing, which also beats random (random letters and discounts
lose money) but by a thin margin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs

KWARGS: dict[str, Any] = {"scenario": "retail", "n_customers": 3000, "volume_levels": (0.5, 1.0)}


def mean_return(policy: Callable[[np.ndarray, gym.Env[Any, Any]], Any], episodes: int) -> float:
    env = gym.make(envs.CAMPAIGN_ID, **KWARGS)
    env.action_space.seed(99)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=1000 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs, env))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_beats_random(seed: int) -> None:
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO(
        "MlpPolicy",
        gym.make(envs.CAMPAIGN_ID, **KWARGS),
        n_steps=256,
        batch_size=64,
        n_epochs=5,
        learning_rate=1e-3,
        gamma=0.9,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=4096)
    trained = mean_return(lambda obs, _: model.predict(obs, deterministic=True)[0], episodes=8)
    random = mean_return(lambda _, env: env.action_space.sample(), episodes=16)
    print(f"seed {seed}: trained {trained:.3f} random {random:.3f}")
    assert trained > random + 0.5, (trained, random)
