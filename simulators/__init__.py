"""The simulated customer-response world (numpy only): scenarios, population, responses.

Example:
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=500)
    >>> sim.reset(seed=0)
    >>> len(sim.arms)
    37
"""

from simulators.scenario import Scenario, ScenarioError, builtin_scenarios, load_scenario
from simulators.simulator import Population, Simulator, build_arms
from simulators.types import (
    NO_CONTACT,
    ArmTable,
    CustomerSimulator,
    EventBatch,
    EventKind,
    GroundTruth,
)

__all__ = [
    "NO_CONTACT",
    "ArmTable",
    "CustomerSimulator",
    "EventBatch",
    "EventKind",
    "GroundTruth",
    "Population",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "build_arms",
    "builtin_scenarios",
    "load_scenario",
]
