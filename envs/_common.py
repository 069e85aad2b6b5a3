"""Pieces shared by the environments: building the simulator, goal defaults and the budget ledger.

The ledger here mirrors the project's budget semantics (the ledger of ``agent/``, which ``envs/``
must not import): every decision reserves its worst-case cost (send cost plus the offer's
``max_value``) before it is sent; the send cost is spent when sent; an offer's cost is spent when
a ``CONVERTED`` event redeems it, and the rest of its reservation is released then; reservations of
offers not redeemed are released when the attribution window (the longest conversion delay) of
their iteration closes. ``budget - spent - reserved`` never goes negative; amounts are integer
micro-dollars (reservations rounded up), so rounding cannot push spend past the budget.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simulators import CustomerSimulator, EventBatch, Scenario, Simulator, load_scenario
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
    max_delay = int(getattr(sim, "max_delay", 0))
    if override is None:
        return max_delay
    if override < max_delay:
        raise ValueError(
            f"attribution_window {override} is shorter than the simulator's longest conversion "
            f"delay {max_delay}: offers redeemed later could not be paid from a reservation"
        )
    return int(override)


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
        ratio = sim.n_customers / sc.population.size
    else:
        if target is None or budget is None:
            raise ValueError(
                "a simulator without a scenario needs goal_target= and budget= "
                "(and optionally goal_metric=, max_iterations=, customers_per_iteration=)"
            )
        g = GoalConfig(target=target, budget=budget)
        ratio = 1.0
    out = CampaignGoal(
        metric=metric if metric is not None else g.metric,
        target=float(target) if target is not None else g.target * ratio,
        budget=float(budget) if budget is not None else g.budget * ratio,
        max_iterations=int(max_iterations) if max_iterations is not None else g.max_iterations,
        customers_per_iteration=int(customers_per_iteration)
        if customers_per_iteration is not None
        else max(1, round(g.customers_per_iteration * ratio)),
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


MICROS_PER_DOLLAR = 1_000_000
"""The ledger counts integer micro-dollars, as the project's ledger does: no rounding drift."""


def to_micros(dollars: FloatArray | float, *, round_up: bool = False) -> IntArray:
    """Dollars to integer micro-dollars: ceil for reservations, nearest for charges.

    Raises:
        ValueError: negative or non-finite amounts.
    """
    x = np.asarray(dollars, dtype=np.float64) * MICROS_PER_DOLLAR
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise ValueError("amounts must be finite and non-negative")
    x = np.round(x, 3)  # so that 0.3 * 1e6 = 300000.00000000006 does not ceil to 300001
    return (np.ceil(x) if round_up else np.round(x)).astype(np.int64)


class BudgetLedger:
    """Spend and reservations of one episode, by the project's ledger rules, in micro-dollars.

    Each decision reserves ``ceil(worst_case_cost)``; its send cost is charged at once and the
    rest (the offer's room) stays reserved in the bucket of its iteration (a ring of ``window + 1``
    buckets). A first conversion charges the redeemed offer cost and releases the rest of the
    decision's room; a bucket is released when its iteration's attribution window closes.
    ``spent + reserved <= budget`` holds after every operation.

    Args:
        budget: dollars; ``math.inf`` for no limit.
        window: attribution window in iterations.
        send_cost: ``(n_arms,)`` send cost per arm (dollars).
        max_offer_cost: ``(n_arms,)`` worst-case offer cost per arm (dollars).
    """

    def __init__(self, budget: float, window: int, send_cost: FloatArray, max_offer_cost: FloatArray) -> None:
        if not budget > 0:
            raise ValueError(f"budget must be > 0, got {budget}")
        self.unlimited = math.isinf(budget)
        self._budget = 0 if self.unlimited else int(to_micros(budget)[()])
        self.window = int(window)
        self._ring = self.window + 1
        self.wcc = to_micros(send_cost + max_offer_cost, round_up=True)
        """``(n_arms,)`` micro-dollars reserved per decision."""
        self.send = np.minimum(to_micros(send_cost), self.wcc)
        """``(n_arms,)`` micro-dollars charged when sent."""
        self.room = self.wcc - self.send
        """``(n_arms,)`` micro-dollars left reserved for the offer after sending."""
        self._bucket_iter = np.full(self._ring, -1, dtype=np.int64)
        self._bucket = np.zeros(self._ring, dtype=np.int64)
        self._spent = 0

    @property
    def budget(self) -> float:
        """The cost threshold in dollars (``inf`` if unlimited)."""
        return math.inf if self.unlimited else self._budget / MICROS_PER_DOLLAR

    @property
    def spent(self) -> float:
        """Dollars spent (send costs and redeemed offers)."""
        return self._spent / MICROS_PER_DOLLAR

    @property
    def reserved(self) -> float:
        """Dollars reserved for offers whose redemption is still possible."""
        return self.reserved_micros / MICROS_PER_DOLLAR

    @property
    def budget_micros(self) -> int:
        """The budget in micro-dollars (0 if unlimited)."""
        return self._budget

    @property
    def spent_micros(self) -> int:
        """Spend in micro-dollars."""
        return self._spent

    @property
    def reserved_micros(self) -> int:
        """Reservations in micro-dollars."""
        return int(self._bucket.sum())

    @property
    def available_micros(self) -> int:
        """``budget - spent - reserved`` in micro-dollars (a huge number if unlimited)."""
        if self.unlimited:
            return 2**62
        return self._budget - self._spent - self.reserved_micros

    @property
    def remaining(self) -> float:
        """``budget - spent - reserved`` in dollars (what new reservations may use)."""
        return math.inf if self.unlimited else self.available_micros / MICROS_PER_DOLLAR

    def affordable(self, arm: int, n: int) -> int:
        """How many of ``n`` decisions with ``arm`` fit the available budget."""
        unit = int(self.wcc[arm])
        if n <= 0 or unit == 0 or self.unlimited:
            return max(n, 0)
        return min(n, self.available_micros // unit)

    def affordable_prefix(self, arms: IntArray) -> BoolArray:
        """``(n,)`` the decisions that fit, reserving in order until the first that does not.

        Args:
            arms: ``(n,)`` arm per decision (no contact costs 0 and always fits).
        """
        if self.unlimited:
            return np.ones(arms.shape[0], dtype=bool)
        cost = self.wcc[arms]
        fits: BoolArray = (np.cumsum(cost) <= self.available_micros) | (cost == 0)
        return fits

    def commit(self, iteration: int, arms: IntArray) -> None:
        """Reserve and send decisions (checked with :meth:`affordable` first).

        Args:
            iteration: the iteration they are sent in.
            arms: ``(k,)`` arm per decision.
        """
        if arms.shape[0] == 0:
            return
        self._commit(iteration, int(self.send[arms].sum()), int(self.room[arms].sum()))

    def commit_wave(self, iteration: int, arm: int, k: int) -> None:
        """:meth:`commit` for ``k`` decisions that all use ``arm``."""
        if k > 0:
            self._commit(iteration, k * int(self.send[arm]), k * int(self.room[arm]))

    def _commit(self, iteration: int, send: int, room: int) -> None:
        if not self.unlimited and send + room > self.available_micros:
            raise RuntimeError("internal error: reservation larger than the available budget")
        self._spent += send
        if room > 0:
            r = iteration % self._ring
            if self._bucket_iter[r] != iteration:
                self._bucket_iter[r] = iteration
                self._bucket[r] = 0
            self._bucket[r] += room

    def redeem(self, iterations: IntArray, arms: IntArray, offer_cost: FloatArray) -> None:
        """Book the first conversion of decisions inside their attribution window.

        Charges the redeemed offer cost and releases the rest of each decision's room.

        Args:
            iterations: ``(k,)`` iteration in which each decision was sent.
            arms: ``(k,)`` arm of each decision.
            offer_cost: ``(k,)`` redeemed discount in dollars (0 when no offer was redeemed).

        Raises:
            RuntimeError: a redemption whose reservation was already released (the attribution
                window is shorter than the simulator's conversion delays).
        """
        if iterations.shape[0] == 0:
            return
        room = self.room[arms]
        charge = np.minimum(to_micros(offer_cost), room)
        slot = iterations % self._ring
        live = self._bucket_iter[slot] == iterations
        if np.any(charge[~live] > 0):
            raise RuntimeError(
                "an offer was redeemed after its reservation was released: the attribution "
                "window is shorter than the simulator's conversion delays (set attribution_window=)"
            )
        self._spent += int(charge.sum())
        np.subtract.at(self._bucket, slot[live], room[live])

    def release(self, now: int) -> None:
        """Release the offer reservations of iterations whose window closed before ``now``."""
        done = (self._bucket_iter >= 0) & (self._bucket_iter + self.window < now)
        self._bucket[done] = 0
        self._bucket_iter[done] = -1


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
