"""Simulator throughput and the wall time of a full default campaign (one core)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent import Campaign, CampaignSpec
from policies import make_policy
from simulators import Simulator, load_scenario


def _best_of(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(quick: bool = False) -> list[dict[str, object]]:
    """Customer decisions per second for one 100,000-customer iteration, and campaign wall times."""
    sc = load_scenario("retail")
    n = 100_000
    sim = Simulator(sc, n_customers=n)
    sim.reset(seed=0)
    rng = np.random.default_rng(0)
    customers = np.arange(n, dtype=np.int64)
    arms = rng.integers(1, len(sim.arms), n)

    def one_iteration() -> None:
        sim.send(customers, customers, arms)
        sim.advance()

    secs = _best_of(one_iteration, 3 if quick else 10)
    rows: list[dict[str, object]] = [
        {
            "benchmark": "simulator: one 100,000-customer iteration (send + advance)",
            "value": n / secs,
            "unit": "decisions/s",
            "target": ">= 2,000,000",
        },
    ]
    gt_secs = _best_of(lambda: sim.expected(customers, arms), 3 if quick else 10)
    rows.append(
        {
            "benchmark": "simulator: ground truth for 100,000 (customer, arm) pairs",
            "value": n / gt_secs,
            "unit": "pairs/s",
            "target": "",
        }
    )
    for policy in ("oracle", "random"):
        t = time.perf_counter()
        s = Simulator(sc)
        rep = Campaign(CampaignSpec.from_scenario(sc), s, make_policy(policy, s, seed=0), seed=0).run()
        rows.append(
            {
                "benchmark": f"full default retail campaign, {policy} ({rep.iterations} iterations)",
                "value": time.perf_counter() - t,
                "unit": "s wall",
                "target": "",
            }
        )
    return rows
