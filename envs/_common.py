"""Pieces shared by the environments: building the simulator, goal defaults and reward values.

Money follows the project's one set of rules, :class:`simulators.money.CampaignLedger` (the
campaign loop's too): every decision reserves its worst-case cost (send cost plus the offer's
``max_value``) before it is sent; the send cost is spent when sent; an offer's cost is spent when
the decision's first ``CONVERTED`` event inside its attribution window redeems it, and the rest of
its reservation is released then; the reservations of offers not redeemed are released when the
window (the longest conversion delay) closes. Amounts are integer micro-dollars.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simulators import CustomerSimulator, EventBatch, Scenario, Simulator, load_scenario
from simulators.money import Scaled, scale_to_population
from simulators.money import attribution_window as window_rule
from simulators.scenario import GoalConfig

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DEFAULT_SCENARIO = "retail"
"""The scenario used when neither ``scenario=`` nor ``simulator=`` is given."""

DEFAULT_FATIGUE_DECAY = 0.6
"""Fatigue decay per iteration assumed for a simulator that does not carry a scenario."""


def make_simulator(
    scenario: str | Path | Scenario | None,
    simulator: CustomerSimulator | None,
    n_customers: int | None,
) -> CustomerSimulator:
    """The simulator an environment runs on.

    Args:
        scenario: a built-in scenario name, a YAML path or a loaded :class:`Scenario`.
        simulator: any object following :class:`simulators.CustomerSimulator`.
        n_customers: population size for a simulator built from ``scenario`` (default: the
            scenario's own size); not allowed together with ``simulator``.

    Raises:
        ValueError: both ``scenario`` and ``simulator`` given, ``n_customers`` with ``simulator``,
            or a ``simulator`` that does not follow the protocol.
        simulators.ScenarioError: unknown scenario name or invalid file.
    """
    if simulator is not None:
        if scenario is not None:
            raise ValueError("give either scenario= or simulator=, not both")
        if n_customers is not None:
            raise ValueError(
                "n_customers= only applies to a simulator built from scenario=; "
                "size your own simulator yourself"
            )
        if not follows_protocol(simulator):
            raise ValueError(
                "simulator= must follow simulators.CustomerSimulator (arms, n_customers, "
                "feature_names, iteration, margin, reset, features, arm_mask, expected, send, advance)"
            )
        return simulator
    if n_customers is not None and n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or DEFAULT_SCENARIO)
    return Simulator(sc, n_customers=n_customers)


PROTOCOL_MEMBERS: tuple[str, ...] = (
    "arms",
    "n_customers",
    "feature_names",
    "iteration",
    "margin",
    "reset",
    "features",
    "arm_mask",
    "expected",
    "send",
    "advance",
)
"""The members of :class:`simulators.CustomerSimulator`."""


def follows_protocol(obj: object) -> bool:
    """Whether ``obj`` has every member of :class:`simulators.CustomerSimulator`.

    Looked up statically: ``isinstance(obj, CustomerSimulator)`` evaluates the properties, and
    some (``iteration`` of a :class:`simulators.Simulator` not yet reset) raise before ``reset``.
    """
    return all(_has_static(obj, name) for name in PROTOCOL_MEMBERS)


def _has_static(obj: object, name: str) -> bool:
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def scenario_of(sim: CustomerSimulator) -> Scenario | None:
    """The scenario behind a simulator, when it exposes one as ``.scenario`` (the built-in does)."""
    sc = getattr(sim, "scenario", None)
    return sc if isinstance(sc, Scenario) else None


def attribution_window(sim: CustomerSimulator, override: int | None) -> int:
    """Iterations after sending during which a decision's conversions may still arrive.

    Mirrors the campaign loop: the optional protocol member ``simulator.max_delay`` (the
    longest conversion delay; 0 when the simulator does not define it), unless overridden.

    Raises:
        ValueError: a negative override, or one shorter than ``simulator.max_delay`` (offers
            redeemed later could not be paid from a reservation).
    """
    return window_rule(int(getattr(sim, "max_delay", 0)), override)


def fatigue_decay(sim: CustomerSimulator, override: float | None) -> float:
    """Per-iteration fatigue decay used for the environments' fatigue statistics."""
    if override is not None:
        if not 0.0 <= override <= 1.0:
            raise ValueError(f"fatigue_decay must be in [0, 1], got {override}")
        return float(override)
    sc = scenario_of(sim)
    return DEFAULT_FATIGUE_DECAY if sc is None else float(sc.dynamics.fatigue_decay)


@dataclass(frozen=True)
class CampaignGoal:
    """A campaign's goal and limits, resolved from the scenario's default goal and overrides.

    Attributes:
        metric: ``"conversions"`` or ``"revenue"``.
        target: the goal value.
        budget: the cost threshold in dollars.
        max_iterations: iteration limit.
        customers_per_iteration: the most customers one wave may contact.
    """

    metric: str
    target: float
    budget: float
    max_iterations: int
    customers_per_iteration: int


def resolve_goal(
    sim: CustomerSimulator,
    *,
    metric: str | None,
    target: float | None,
    budget: float | None,
    max_iterations: int | None,
    customers_per_iteration: int | None,
) -> CampaignGoal:
    """Goal and limits: each from its override or from ``scenario.default_goal``.

    When the simulator's population is smaller (or larger) than the scenario's
    ``population.size``, the scenario's ``target``, ``budget`` and ``customers_per_iteration`` are
    scaled by ``n_customers / population.size`` (the same campaign in miniature); overrides are
    taken as given. A simulator without a scenario needs ``target`` and ``budget``.

    Raises:
        ValueError: a missing or invalid value.
    """
    sc = scenario_of(sim)
    if sc is not None:
        g = sc.default_goal
        scaled = scale_to_population(
            g.target, g.budget, g.customers_per_iteration, sim.n_customers, sc.population.size
        )
    else:
        if target is None or budget is None:
            raise ValueError(
                "a simulator without a scenario needs goal_target= and budget= "
                "(and optionally goal_metric=, max_iterations=, customers_per_iteration=)"
            )
        g = GoalConfig(target=target, budget=budget)
        scaled = Scaled(g.target, g.budget, g.customers_per_iteration)
    out = CampaignGoal(
        metric=metric if metric is not None else g.metric,
        target=float(target) if target is not None else scaled.target,
        budget=float(budget) if budget is not None else scaled.budget,
        max_iterations=int(max_iterations) if max_iterations is not None else g.max_iterations,
        customers_per_iteration=int(customers_per_iteration)
        if customers_per_iteration is not None
        else scaled.customers_per_iteration,
    )
    if out.metric not in ("conversions", "revenue"):
        raise ValueError(f"goal_metric must be 'conversions' or 'revenue', got {out.metric!r}")
    if not (out.target > 0 and math.isfinite(out.target)):
        raise ValueError(f"goal_target must be a positive number, got {out.target}")
    if not (out.budget > 0 and math.isfinite(out.budget)):
        raise ValueError(f"budget must be a positive number, got {out.budget}")
    if out.max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {out.max_iterations}")
    if out.customers_per_iteration < 1:
        raise ValueError(f"customers_per_iteration must be >= 1, got {out.customers_per_iteration}")
    return out


def event_value(events: EventBatch, kind: str, margin: float, converted: BoolArray) -> FloatArray:
    """``(n_events,)`` value of each event for a reward ``kind`` (costs of sends not included).

    Args:
        events: the events.
        kind: ``"net_value"`` (revenue * margin - offer cost), ``"conversions"`` (1 per
            conversion) or ``"revenue"``.
        margin: the scenario's margin.
        converted: ``(n_events,)`` the conversions that count (first per decision).
    """
    if kind == "net_value":
        v = events.revenue * margin - events.offer_cost
    elif kind == "revenue":
        v = events.revenue.copy()
    else:
        v = np.ones(len(events))
    return np.where(converted, v, 0.0)


REWARD_KINDS: tuple[str, ...] = ("net_value", "conversions", "revenue")
