"""Shared fixtures: scenarios, small simulators and validated scenario variants.

The fixtures are session-scoped factories (no per-test state), so they also work inside
hypothesis tests; every simulator they build is fresh and reset with the given seed.
"""

from __future__ import annotations

import os
import tempfile

# Nothing may call out, also when pytest is run without the Makefile's exports.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("SB3_LOGDIR", os.path.join(tempfile.gettempdir(), "campaign-opt-sb3"))

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from simulators import Scenario, Simulator, load_scenario
from simulators.scenario import parse_scenario

pytest_plugins = ["tests.webhook"]  # the `receiver` fixture: a webhook endpoint on 127.0.0.1

SMALL_POPULATION = 2_000
"""Customers in the default test simulator: big enough for rates, small enough to be fast."""

ScenarioFactory = Callable[..., Scenario]
SimulatorFactory = Callable[..., Simulator]


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, recursively for nested mappings.

    Args:
        base: e.g. ``scenario.model_dump()``.
        overrides: values to replace; a nested mapping updates the nested mapping of ``base``.

    Returns:
        A new dict; ``base`` is not modified.
    """
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def retail() -> Scenario:
    """The built-in retail scenario."""
    return load_scenario("retail")


@pytest.fixture(scope="session")
def scenario_with(retail: Scenario) -> ScenarioFactory:
    """Factory: a validated copy of a scenario (retail by default) with nested overrides.

    Example: ``scenario_with({"dynamics": {"conversion_delay": [1.0]}})``.
    """

    def make(overrides: Mapping[str, Any], base: Scenario | None = None) -> Scenario:
        data = deep_merge((base or retail).model_dump(), overrides)
        return parse_scenario(data, "<test override>")

    return make


@pytest.fixture(scope="session")
def make_sim(retail: Scenario) -> SimulatorFactory:
    """Factory: a fresh simulator (retail, 2,000 customers by default) reset with ``seed``."""

    def make(scenario: Scenario | None = None, n: int = SMALL_POPULATION, seed: int = 0) -> Simulator:
        sim = Simulator(scenario or retail, n_customers=n)
        sim.reset(seed=seed)
        return sim

    return make


@pytest.fixture
def small_sim(make_sim: SimulatorFactory) -> Simulator:
    """A retail simulator with 2,000 customers, reset with seed 0 (fresh for every test)."""
    return make_sim()
