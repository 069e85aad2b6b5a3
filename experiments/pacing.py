"""Train the PPO pacer: Stable-Baselines3 PPO on randomized simulated campaigns (:mod:`.pacing_env`).

:func:`train_pacer` trains a small Gaussian MLP policy on a few vectorized
:class:`experiments.pacing_env.PacingEnv` (each episode a randomly drawn, perturbed built-in scenario with a
randomized goal and budget), then writes the actor's weights as a plain ``.npz``
(:class:`policies.pacing.MLPActor`: no pickle, no torch file) so ``funnel_ts:pacer=ppo`` decides
in numpy, and a ``.json`` beside it with the training configuration, the timesteps, the seed, the
mean return of the last training episodes, the time taken and an evaluation against the neutral
``rule`` pacer on fresh episodes.

Example (the shipped pacer, ``policies/data/ppo_pacer.npz``)::

    campaign-opt train-pacer --timesteps 60000 --seed 0 --out policies/data/ppo_pacer.npz
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from experiments.pacing_env import PacingEnv
from policies.pacing import PPO_PACER_PATH, MLPActor

__all__ = ["DEFAULT_CONFIG", "actor_from_model", "evaluate_pacer", "train_pacer"]

DEFAULT_CONFIG: dict[str, Any] = {
    "n_envs": 4,
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "net_arch": [32, 32],
    "log_std_init": -0.5,
    "env": {"strength": 0.3, "spread": 0.3, "max_candidates": 500},
}
"""PPO's settings for the shipped pacer (SB3 names; ``env`` holds :class:`PacingEnv`'s)."""

RULE_ACTION: NDArray[np.float32] = np.array(
    [
        0.0,  # price 1: log-uniform middle of [0.25, 4]
        2.0 * np.log(1.0 / 0.5) / np.log(3.0 / 0.5) - 1.0,  # volume 1 in [0.5, 3]
    ],
    dtype=np.float32,
)
"""The raw action of the neutral ``rule`` pacer (price 1, volume 1)."""


def actor_from_model(model: Any) -> MLPActor:
    """The deterministic actor of an SB3 ``PPO("MlpPolicy")`` model as numpy weights.

    The model's policy must be the default Gaussian MLP (``mlp_extractor.policy_net`` of linear
    layers and one activation, then ``action_net``) on an unnormalized Box observation.
    """
    import torch

    policy = model.policy
    layers: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
    activation = "tanh"
    for module in policy.mlp_extractor.policy_net:
        if isinstance(module, torch.nn.Linear):
            layers.append(
                (
                    module.weight.detach().cpu().numpy().T.astype(np.float64),
                    module.bias.detach().cpu().numpy(),
                )
            )
        elif isinstance(module, torch.nn.Tanh):
            activation = "tanh"
        elif isinstance(module, torch.nn.ReLU):
            activation = "relu"
        else:
            raise ValueError(f"unsupported layer {module!r} in the policy network")
    head = policy.action_net
    layers.append((head.weight.detach().cpu().numpy().T.astype(np.float64), head.bias.detach().cpu().numpy()))
    return MLPActor([(w, np.asarray(b, dtype=np.float64)) for w, b in layers], activation)


def evaluate_pacer(
    act: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    episodes: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean return, goal-reached rate and spend share of ``act`` (raw action per observation) on
    ``episodes`` fresh campaigns (seeds ``seed .. seed + episodes - 1``), overall and per scenario."""
    env = PacingEnv(**(env_kwargs or {}))
    rows: list[tuple[str, float, bool, float]] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        info: dict[str, Any] = {}
        while not done:
            obs, reward, done, _, info = env.step(act(obs))
            total += reward
        rows.append(
            (str(info["scenario"]), total, bool(info["goal_reached"]), info["spent"] / info["budget"])
        )

    def summary(sel: list[tuple[str, float, bool, float]]) -> dict[str, float]:
        return {
            "episodes": len(sel),
            "mean_return": float(np.mean([r[1] for r in sel])),
            "goal_reached_rate": float(np.mean([r[2] for r in sel])),
            "mean_spent_share": float(np.mean([r[3] for r in sel])),
        }

    out: dict[str, Any] = summary(rows)
    out["by_scenario"] = {s: summary([r for r in rows if r[0] == s]) for s in sorted({r[0] for r in rows})}
    return out


def train_pacer(
    timesteps: int,
    seed: int,
    out_path: str | Path = PPO_PACER_PATH,
    config: dict[str, Any] | None = None,
    max_seconds: float | None = None,
    eval_episodes: int = 100,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the PPO pacer and write its actor (``out_path``, ``.npz``) and a ``.json`` report.

    Args:
        timesteps: PPO timesteps (waves) to train for.
        seed: seeds PPO and the environments (environment ``i`` starts from ``seed + i``).
        out_path: where the actor's weights go; the report goes beside it (``.json``).
        config: overrides of :data:`DEFAULT_CONFIG`.
        max_seconds: stop training (at the end of a rollout) after this much wall time.
        eval_episodes: fresh campaigns on which the trained pacer and the neutral rule are
            evaluated for the report (0: none).
        progress: show a progress bar.

    Returns:
        The report written to the ``.json``.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    cfg = {**DEFAULT_CONFIG, **(config or {})}
    env_kwargs = dict(cfg["env"])
    vec = make_vec_env(PacingEnv, n_envs=int(cfg["n_envs"]), seed=seed, env_kwargs=env_kwargs)
    model = PPO(
        "MlpPolicy",
        vec,
        n_steps=int(cfg["n_steps"]),
        batch_size=int(cfg["batch_size"]),
        n_epochs=int(cfg["n_epochs"]),
        learning_rate=float(cfg["learning_rate"]),
        gamma=float(cfg["gamma"]),
        gae_lambda=float(cfg["gae_lambda"]),
        clip_range=float(cfg["clip_range"]),
        ent_coef=float(cfg["ent_coef"]),
        policy_kwargs={
            "net_arch": {"pi": list(cfg["net_arch"]), "vf": list(cfg["net_arch"])},
            "log_std_init": float(cfg["log_std_init"]),
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()

    class _Deadline(BaseCallback):
        """Stops training once ``max_seconds`` have passed."""

        def _on_step(self) -> bool:
            return max_seconds is None or time.perf_counter() - start < max_seconds

    model.learn(total_timesteps=int(timesteps), callback=_Deadline(), progress_bar=progress)
    seconds = time.perf_counter() - start
    actor = actor_from_model(model)
    out = actor.save(out_path)
    returns = [float(e["r"]) for e in (model.ep_info_buffer or [])]
    report: dict[str, Any] = {
        "algorithm": "PPO (stable-baselines3), MlpPolicy, deterministic mean action at decide time",
        "environment": "experiments.pacing_env.PacingEnv",
        "config": cfg,
        "timesteps": int(model.num_timesteps),
        "timesteps_requested": int(timesteps),
        "seed": int(seed),
        "train_seconds": round(seconds, 1),
        "final_mean_episode_reward": float(np.mean(returns)) if returns else None,
        "final_episodes_averaged": len(returns),
        "weights": out.name,
        "weights_bytes": out.stat().st_size,
        "machine": platform.machine(),
    }
    if eval_episodes > 0:

        def ppo_act(obs: NDArray[np.float32]) -> NDArray[np.float32]:
            return np.asarray(actor(obs), dtype=np.float32)

        eval_seed = 1_000_000 + seed
        report["evaluation"] = {
            "episodes": eval_episodes,
            "seeds_from": eval_seed,
            "ppo": evaluate_pacer(ppo_act, eval_episodes, eval_seed, env_kwargs),
            "rule": evaluate_pacer(lambda _: RULE_ACTION, eval_episodes, eval_seed, env_kwargs),
        }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    vec.close()
    return report
