"""Environment throughput on ``retail`` (one core): CustomerBandit-v0 and Campaign-v0.

Rows:
    * CustomerBandit-v0 with ``batch_size=10,000``: customer decisions per second (uniformly
      random arms, default options: complete rewards, fatigue carried across steps);
    * Campaign-v0: steps per second with random actions, without and with the episode resets
      (a reset draws a fresh 60,000-customer population);
    * Campaign-v0: the share of step time spent inside the simulator's ``send`` and ``advance``
      (the rest is the environment's own work).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from envs.campaign import CampaignEnv
from envs.customer_bandit import CustomerBanditEnv

COMMAND = "make bench"


def _best_of(fn: Callable[[], float], repeats: int) -> float:
    """The smallest of ``repeats`` timings (the least disturbed by other load)."""
    return min(fn() for _ in range(repeats))


def _bandit_rate(steps: int, repeats: int) -> float:
    batch = 10_000
    env = CustomerBanditEnv("retail", batch_size=batch, episode_length=10**9)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, env.n_arms, batch) for _ in range(8)]
    env.step(actions[0])  # warm-up

    def once() -> float:
        t = time.perf_counter()
        for i in range(steps):
            env.step(actions[i % len(actions)])
        return time.perf_counter() - t

    return steps * batch / _best_of(once, repeats)


class _Timed:
    """Wraps a simulator method and adds up the time spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, *args: Any) -> Any:
        t = time.perf_counter()
        out = self.fn(*args)
        self.seconds += time.perf_counter() - t
        return out


def _campaign_rates(steps: int, repeats: int) -> tuple[float, float, float]:
    """Steps/s without resets, steps/s with resets, share of step time in send + advance."""
    env = CampaignEnv("retail")
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(997)]
    env.reset(seed=0)
    sim: Any = env.simulator
    send, advance = _Timed(sim.send), _Timed(sim.advance)
    sim.send, sim.advance = send, advance  # instance attributes shadow the methods

    def once() -> tuple[float, float, float]:
        stepping = resetting = 0.0
        send.seconds = advance.seconds = 0.0
        for i in range(steps):
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
            t2 = time.perf_counter()
            stepping += t2 - t
            if terminated or truncated:
                env.reset()
                resetting += time.perf_counter() - t2
        # (Draining at an episode's end happens inside step(): simulator time as well.)
        return stepping, stepping + resetting, send.seconds + advance.seconds

    runs = [once() for _ in range(repeats)]
    stepping, total, in_sim = min(runs, key=lambda r: r[0])
    return steps / stepping, steps / total, in_sim / stepping


def run(quick: bool = False) -> list[dict[str, object]]:
    """Benchmark rows: ``{"benchmark", "value", "unit", "target", "command"}``."""
    repeats = 2 if quick else 5
    bandit = _bandit_rate(steps=5 if quick else 30, repeats=repeats)
    no_reset, with_reset, sim_share = _campaign_rates(steps=100 if quick else 1000, repeats=repeats)
    return [
        {
            "benchmark": "CustomerBandit-v0 retail, batch_size=10,000, random arms",
            "value": bandit,
            "unit": "decisions/s",
            "target": ">= 1,000,000",
            "command": COMMAND,
        },
        {
            "benchmark": "Campaign-v0 retail (60,000 customers), random actions, steps only",
            "value": no_reset,
            "unit": "steps/s",
            "target": ">= 1,000",
            "command": COMMAND,
        },
        {
            "benchmark": "Campaign-v0 retail, random actions, including episode resets",
            "value": with_reset,
            "unit": "steps/s",
            "target": "",
            "command": COMMAND,
        },
        {
            "benchmark": "Campaign-v0 retail: share of step time in simulator send + advance",
            "value": 100.0 * sim_share,
            "unit": "%",
            "target": "",
            "command": COMMAND,
        },
    ]


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
