"""Shared helpers for the environment tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulators import CustomerSimulator, EventBatch, Simulator, builtin_scenarios, load_scenario

# Stable-Baselines3 writes nothing outside a temporary folder.
os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="campaign-opt-sb3-"))

TINY = Path(__file__).with_name("tiny.yaml")
"""Two customer types, three arms, best arm per type known in closed form."""

SMALL = 2000
"""Population size used where the test does not need a full scenario."""

SCENARIOS = builtin_scenarios()


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    """Every built-in scenario."""
    return str(request.param)


class RecordingSimulator:
    """A protocol-only wrapper around :class:`Simulator` that records every send and event.

    It is not a ``Simulator`` (so the environments treat it as a foreign model: masks are
    re-checked, segments come from the features) and it lets a test add up the money actually
    spent, independently of the environments' ledgers.
    """

    def __init__(self, scenario: str | Path, n_customers: int | None = None) -> None:
        self._sim = Simulator(load_scenario(scenario), n_customers=n_customers)
        self.sent_arms: list[np.ndarray] = []
        self.events: list[EventBatch] = []

    arms = property(lambda self: self._sim.arms)
    n_customers = property(lambda self: self._sim.n_customers)
    feature_names = property(lambda self: self._sim.feature_names)
    iteration = property(lambda self: self._sim.iteration)
    margin = property(lambda self: self._sim.margin)
    max_delay = property(lambda self: self._sim.max_delay)

    def reset(self, seed: int | None = None) -> None:
        self._sim.reset(seed)
        self.sent_arms, self.events = [], []

    def features(self, customers: np.ndarray) -> Any:
        return self._sim.features(customers)

    def arm_mask(self, customers: np.ndarray) -> Any:
        return self._sim.arm_mask(customers)

    def expected(self, customers: np.ndarray, arms: np.ndarray) -> Any:
        return self._sim.expected(customers, arms)

    def send(self, decision_ids: np.ndarray, customers: np.ndarray, arms: np.ndarray) -> EventBatch:
        self.sent_arms.append(np.asarray(arms)[np.asarray(arms) != 0])
        ev = self._sim.send(decision_ids, customers, arms)
        self.events.append(ev)
        return ev

    def advance(self) -> EventBatch:
        ev = self._sim.advance()
        self.events.append(ev)
        return ev

    def money_spent(self) -> float:
        """Send costs of everything sent plus offers redeemed (once per decision) so far."""
        arms = np.concatenate([np.zeros(0, np.int64), *self.sent_arms])
        send = float(self._sim.arms.send_cost[arms].sum())
        ev = EventBatch.concat(self.events)
        conv = (ev.kind == 3) & (ev.decision_id >= 0)
        _, first = np.unique(ev.decision_id[conv], return_index=True)
        return send + float(ev.offer_cost[conv][first].sum())

    def drain(self) -> None:
        """Let every delayed conversion of past sends arrive."""
        for _ in range(self._sim.max_delay):
            self.advance()


def check_protocol(sim: object) -> None:
    """The wrapper must satisfy the protocol it stands in for (checked after a reset: the
    protocol's runtime check reads the properties)."""
    sim.reset(seed=0)  # type: ignore[attr-defined]
    assert isinstance(sim, CustomerSimulator)
