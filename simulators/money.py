"""Money and attribution, once: micro-dollars, the budget ledger and the attribution window.

Every layer that moves money uses these rules (the campaign loop, the environments, the
policies' delayed-feedback bookkeeping and, one function per rule, the SQL path of ``serving/``):

* **micro-dollars**: amounts are integers of :data:`MICROS_PER_DOLLAR`; reservations are rounded
  up (:func:`to_micros` with ``round_up=True``, :func:`micros_up`), charges to the nearest
  (:func:`micros_paid`), so that no rounding can push spend past the budget;
* **reserve before sending**: each decision reserves its worst case (send cost plus the offer's
  cap); ``spent + reserved <= budget`` holds after every operation;
* **charge the send at once**: a send whose fate is unknown counts as spent;
* **settle once**: the first conversion of a decision inside its attribution window charges the
  redeemed offer cost and releases the rest of the reservation; later conversions of that
  decision (duplicates, repeats) and conversions after the window closed settle nothing;
* **the window**: a decision sent in iteration ``s`` is attributed the conversions of iterations
  ``s .. s + window``; its window closes when iteration ``s + window`` is complete, i.e. once the
  clock reads ``now > s + window`` (:func:`window_closed`); its reservation is then released;
* **drain**: when a campaign ends, every open reservation is released.

:class:`BudgetLedger` keeps reservations, charges and releases; :class:`CampaignLedger` adds the
attribution window and applies the rules above to whole batches of decisions and events.

Example:
    >>> import numpy as np
    >>> ledger = CampaignLedger(budget=10.0, window=1)
    >>> ids = ledger.send(0, worst=np.array([2.0, 2.0]), send_cost=np.array([0.5, 0.5]))
    >>> ledger.convert(np.array([1, 1]), np.array([1.0, 1.0])).counted.tolist()
    [True, False]
    >>> _ = ledger.close(now=2)
    >>> round(ledger.spent, 6), round(ledger.reserved, 6)
    (2.0, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MICROS_PER_DOLLAR = 1_000_000
"""Money is counted in integer micro-dollars everywhere (ledgers, database columns)."""

_UNLIMITED = 2**62
"""The budget of an unlimited ledger, in micro-dollars (larger than any spend)."""


class LedgerError(RuntimeError):
    """An operation that would break the ledger's invariants (nothing was changed)."""


class InsufficientBudgetError(LedgerError):
    """A reservation larger than the available budget (nothing was reserved)."""


# -- micro-dollars -----------------------------------------------------------------------------
def to_micros(dollars: ArrayLike, *, round_up: bool = False) -> IntArray:
    """Dollars to integer micro-dollars: ``round_up`` for reservations, nearest for charges.

    Args:
        dollars: any shape of non-negative finite amounts.
        round_up: ceil instead of rounding to the nearest micro-dollar.

    Returns:
        The amounts as ``int64`` micro-dollars, same shape.

    Raises:
        LedgerError: a negative or non-finite amount.
    """
    x = np.asarray(dollars, dtype=np.float64) * MICROS_PER_DOLLAR
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise LedgerError("amounts must be finite and non-negative")
    # Round in two steps so that 0.3 * 1e6 = 300000.00000000006 does not ceil to 300001.
    x = np.round(x, 3)
    return (np.ceil(x) if round_up else np.round(x)).astype(np.int64)


def micros(dollars: float, *, round_up: bool = True) -> int:
    """One amount in micro-dollars (rounded up by default: what a reservation holds).

    The scalar form of :func:`to_micros`, for code that writes one row at a time (SQL).
    """
    return int(to_micros(dollars, round_up=round_up)[()])


def dollars(amount_micros: int) -> float:
    """Micro-dollars to dollars."""
    return amount_micros / MICROS_PER_DOLLAR


def micros_up(dollars: float) -> int:
    """What a reservation, hold or cap check holds, in micro-dollars: rounded **up**.

    The one rounding rule, for every path that moves money (the ledgers here and the SQL of
    ``serving/``): money that is *held* against the budget (a decision's worst case, reserved
    before it is sent) is rounded up, so a hold is never smaller than what it may have to pay
    and ``spent + reserved <= budget`` cannot be broken by rounding; money that is *paid* (a
    send cost, a redeemed offer) is rounded to the nearest micro-dollar (:func:`micros_paid`),
    exactly as :meth:`BudgetLedger.charge` does. A payment never exceeds its hold: both come
    from the same dollars and ``nearest(x) <= up(y)`` whenever ``x <= y``.

    Raises:
        LedgerError: a negative or non-finite amount, or one too large for any budget
            (``>= 2**62`` micro-dollars), which no int64 column could hold.

    Example:
        >>> micros_up(0.3), micros_up(0.0000001)
        (300000, 1)
    """
    return _bounded(dollars, round_up=True)


def micros_paid(dollars: float) -> int:
    """What a charge pays, in micro-dollars: rounded to the nearest (see :func:`micros_up`).

    Raises:
        LedgerError: as :func:`micros_up`.

    Example:
        >>> micros_paid(0.0000004), micros_paid(1.5)
        (0, 1500000)
    """
    return _bounded(dollars, round_up=False)


def _bounded(dollars: float, *, round_up: bool) -> int:
    if math.isfinite(dollars) and dollars * MICROS_PER_DOLLAR >= _UNLIMITED:  # inf, NaN: to_micros
        raise LedgerError(f"amount ${dollars:,.2f} is larger than any budget")
    return int(to_micros(dollars, round_up=round_up)[()])


def to_dollars(amount_micros: ArrayLike) -> FloatArray:
    """Micro-dollars to dollars, any shape (the array form of :func:`dollars`)."""
    out: FloatArray = np.asarray(amount_micros, dtype=np.int64) / MICROS_PER_DOLLAR
    return out


# -- the attribution window --------------------------------------------------------------------
def attribution_window(max_delay: int, override: int | None) -> int:
    """The attribution window in iterations: the longest conversion delay, unless overridden.

    Args:
        max_delay: the simulator's (or channel's) longest conversion delay (0 without delays).
        override: a window chosen by the owner, at least ``max_delay``.

    Raises:
        ValueError: an override shorter than ``max_delay`` (offers redeemed later could not be
            paid from a reservation).
    """
    if override is None:
        return int(max_delay)
    if override < max_delay:
        raise ValueError(
            f"attribution_window {override} is shorter than the longest conversion delay {max_delay}: "
            "offers redeemed later could not be paid from a reservation"
        )
    return int(override)


@overload
def window_closed(sent_iteration: int, now: int, window: int) -> bool: ...
@overload
def window_closed(sent_iteration: IntArray, now: int | IntArray, window: int) -> BoolArray: ...
def window_closed(sent_iteration: int | IntArray, now: int | IntArray, window: int) -> bool | BoolArray:
    """Whether the attribution window of decisions sent in ``sent_iteration`` has closed.

    A decision sent in iteration ``s`` is attributed conversions of iterations ``s .. s + window``;
    at clock ``now`` (iterations ``0 .. now - 1`` complete) its window is closed when
    ``s + window < now``. For one event, ``now`` is the iteration the event happened in: the event
    is inside the window when this is ``False``. In SQL: ``WHERE iteration < now - window`` (see
    :func:`first_open_iteration`).

    Args:
        sent_iteration: an iteration or ``(n,)`` iterations of sends.
        now: the clock, or ``(n,)`` clocks (e.g. the iterations events happened in).
        window: the attribution window in iterations.

    Returns:
        A bool, or ``(n,)`` bools.
    """
    if isinstance(sent_iteration, int) and isinstance(now, int):
        return sent_iteration + window < now
    closed: BoolArray = np.asarray(sent_iteration) + window < now
    return closed


def first_open_iteration(now: int, window: int) -> int:
    """The earliest send iteration whose window is still open at clock ``now`` (see
    :func:`window_closed`): decisions sent before it are closed."""
    return max(now - window, 0)


def holds_after_send(worst_micros: int, send_micros: int) -> bool:
    """Whether a decision still holds money once its send cost is charged: only when its worst
    case (:func:`micros_up`) exceeds its send cost (:func:`micros_paid`), i.e. an offer may still
    be redeemed. A decision that holds nothing is closed at once (as :meth:`CampaignLedger.send`
    does), but stays attributable until its window closes."""
    return worst_micros > send_micros


def first_per_decision(decision_id: IntArray) -> tuple[IntArray, IntArray]:
    """The first event of each decision among ``(k,)`` events, in arrival order.

    Returns:
        ``(ids, index)``: the distinct decision ids (sorted) and the position of each one's
        first event; repeated events of a decision (duplicates) are left out.
    """
    ids, index = np.unique(np.asarray(decision_id, dtype=np.int64), return_index=True)
    return ids.astype(np.int64), index.astype(np.int64)


def find_decisions(buffer_ids: IntArray, ids: IntArray) -> tuple[IntArray, BoolArray]:
    """Where decisions sit in a buffer of pending decisions (e.g. a policy's, keyed by id).

    Args:
        buffer_ids: ``(m,)`` distinct decision ids, in any order (``m`` may be 0).
        ids: ``(k,)`` decision ids to look up.

    Returns:
        ``(rows, found)``: ``found`` ``(k,)`` marks the ids in the buffer, ``rows`` their
        positions in ``buffer_ids`` (one per found id, in the order of ``ids``).
    """
    if buffer_ids.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(ids.shape, bool)
    order = np.argsort(buffer_ids, kind="stable")
    pos = np.minimum(np.searchsorted(buffer_ids[order], ids), buffer_ids.shape[0] - 1)
    found: BoolArray = buffer_ids[order[pos]] == ids
    return order[pos[found]].astype(np.int64), found


# -- scaling a campaign to a population --------------------------------------------------------
@dataclass(frozen=True)
class Scaled:
    """A scenario's default goal and limits for a population of another size.

    Attributes:
        target: the goal value.
        budget: dollars.
        customers_per_iteration: the most customers one wave may contact (at least 1).
    """

    target: float
    budget: float
    customers_per_iteration: int


def scale_to_population(
    target: float, budget: float, customers_per_iteration: int, n_customers: int, population_size: int
) -> Scaled:
    """The same campaign in miniature (or enlarged): goal, budget and wave size scaled by
    ``n_customers / population_size``.

    Example:
        >>> scale_to_population(2000, 10_000, 10_000, 6_400, 64_000)
        Scaled(target=200.0, budget=1000.0, customers_per_iteration=1000)
    """
    ratio = n_customers / population_size
    return Scaled(
        target=target * ratio,
        budget=budget * ratio,
        customers_per_iteration=max(1, round(customers_per_iteration * ratio)),
    )


# -- the ledger --------------------------------------------------------------------------------
class BudgetLedger:
    """Reservations, charges and releases against one budget (vectorized over decisions).

    Every decision reserves its worst-case cost *before* it is sent. A reservation is then
    charged (money actually spent) and finally closed; closing releases whatever was reserved but
    not charged. The invariant ``spent + reserved + external <= budget`` holds after every
    operation, in integer micro-dollars.

    Args:
        budget: the total cost threshold in dollars; ``math.inf`` for no limit.

    Reservation ids are consecutive integers from 0, so they double as decision ids.

    Example:
        >>> import numpy as np
        >>> ledger = BudgetLedger(budget=1.0)
        >>> ids = ledger.reserve(np.array([0.4, 0.4]))
        >>> ledger.charge(ids, np.array([0.1, 0.4]))
        >>> ledger.release(ids).tolist()
        [0.3, 0.0]
        >>> round(ledger.spent, 6), round(ledger.reserved, 6), round(ledger.available, 6)
        (0.5, 0.0, 0.5)
    """

    def __init__(self, budget: float) -> None:
        if not budget > 0:
            raise LedgerError(f"budget must be > 0, got {budget}")
        self.unlimited = math.isinf(budget)
        self._budget = _UNLIMITED if self.unlimited else micros(budget, round_up=False)
        self._spent = 0
        self._reserved = 0
        self._external = 0  # micro-dollars held outside this ledger
        self._remaining = np.zeros(0, np.int64)  # per reservation: reserved, not charged
        self._charged = np.zeros(0, np.int64)  # per reservation: charged so far
        self._open = np.zeros(0, bool)
        self._n = 0

    # -- read ---------------------------------------------------------------------------------
    @property
    def budget(self) -> float:
        """The cost threshold in dollars (``inf`` if unlimited)."""
        return math.inf if self.unlimited else dollars(self._budget)

    @property
    def spent(self) -> float:
        """Dollars actually spent (charged)."""
        return dollars(self._spent)

    @property
    def reserved(self) -> float:
        """Dollars held by open reservations and not yet charged."""
        return dollars(self._reserved)

    @property
    def available(self) -> float:
        """Dollars that new reservations may take: budget - spent - reserved - external (``inf``
        if unlimited)."""
        return math.inf if self.unlimited else dollars(self.available_micros)

    @property
    def budget_micros(self) -> int:
        """The budget in micro-dollars."""
        return self._budget

    @property
    def spent_micros(self) -> int:
        """Spend in micro-dollars."""
        return self._spent

    @property
    def reserved_micros(self) -> int:
        """Open reservations in micro-dollars."""
        return self._reserved

    @property
    def available_micros(self) -> int:
        """What new reservations may take, in micro-dollars."""
        return self._budget - self._spent - self._reserved - self._external

    @property
    def n_reservations(self) -> int:
        """Reservations made so far (open and closed)."""
        return self._n

    def is_open(self, ids: ArrayLike) -> BoolArray:
        """``(k,)`` which of the given reservations are still open."""
        return self._open[self._check_ids(ids)]

    def charged(self, ids: ArrayLike) -> FloatArray:
        """``(k,)`` dollars charged so far to each of the given reservations."""
        return self._charged[self._check_ids(ids)] / MICROS_PER_DOLLAR

    def committed(self, ids: ArrayLike) -> FloatArray:
        """``(k,)`` dollars each reservation commits: its charges plus what it still holds (its
        whole worst case while open, its charges once closed). In SQL: ``charged + held``."""
        idx = self._check_ids(ids)
        return (self._charged[idx] + self._remaining[idx]) / MICROS_PER_DOLLAR

    def open_ids(self) -> IntArray:
        """Ids of all open reservations."""
        return np.flatnonzero(self._open[: self._n]).astype(np.int64)

    def affordable(self, amounts: ArrayLike) -> BoolArray:
        """``(n,)`` the decisions that fit when reserved in order: the longest prefix of
        ``amounts`` whose total fits the available budget (zero amounts always fit)."""
        m = to_micros(amounts, round_up=True).reshape(-1)
        out: BoolArray = (np.cumsum(m) <= self.available_micros) | (m == 0)
        return out

    def fits(self, amounts: ArrayLike) -> BoolArray:
        """Which amounts, each on its own, fit the available budget (any shape)."""
        out: BoolArray = to_micros(amounts, round_up=True) <= self.available_micros
        return out

    # -- write --------------------------------------------------------------------------------
    def reserve(self, amounts: ArrayLike) -> IntArray:
        """Reserve one amount per decision, all or nothing.

        Args:
            amounts: ``(n,)`` worst-case dollars per decision.

        Returns:
            ``(n,)`` reservation ids.

        Raises:
            InsufficientBudgetError: the total exceeds :attr:`available`; nothing is reserved.
        """
        m = to_micros(amounts, round_up=True).reshape(-1)
        total = int(m.sum())
        if total > self.available_micros:
            raise InsufficientBudgetError(
                f"cannot reserve ${dollars(total):,.6f}: "
                f"only ${self.available:,.6f} of ${self.budget:,.2f} is available"
            )
        k = m.shape[0]
        self._grow(self._n + k)
        ids = np.arange(self._n, self._n + k, dtype=np.int64)
        self._remaining[ids] = m
        self._charged[ids] = 0
        self._open[ids] = True
        self._n += k
        self._reserved += total
        return ids

    def charge(self, ids: ArrayLike, amounts: ArrayLike) -> None:
        """Spend from open reservations; each charge must fit what its reservation still holds.

        Raises:
            LedgerError: a closed or unknown reservation, a repeated id, or a charge larger than
                the reservation's remainder; nothing is charged.
        """
        idx = self._check_ids(ids)
        m = to_micros(amounts).reshape(-1)
        if m.shape != idx.shape:
            raise LedgerError("ids and amounts must have the same length")
        if np.unique(idx).shape != idx.shape:
            raise LedgerError("charge each reservation at most once per call")
        if not np.all(self._open[idx]):
            raise LedgerError(f"reservation(s) already closed: {idx[~self._open[idx]][:5].tolist()}")
        over = m > self._remaining[idx]
        if np.any(over):
            raise LedgerError(
                f"charge exceeds the reservation for id(s) {idx[over][:5].tolist()}: "
                "no money is spent without a reservation"
            )
        self._remaining[idx] -= m
        self._charged[idx] += m
        total = int(m.sum())
        self._reserved -= total
        self._spent += total

    def release(self, ids: ArrayLike) -> FloatArray:
        """Close open reservations, freeing what they hold beyond their charges.

        Returns:
            ``(k,)`` dollars freed per reservation.

        Raises:
            LedgerError: a closed, unknown or repeated id; nothing is released.
        """
        idx = self._check_ids(ids)
        if np.unique(idx).shape != idx.shape:
            raise LedgerError("release each reservation at most once per call")
        if not np.all(self._open[idx]):
            raise LedgerError(f"reservation(s) already closed: {idx[~self._open[idx]][:5].tolist()}")
        freed = self._remaining[idx].copy()
        self._reserved -= int(freed.sum())
        self._remaining[idx] = 0
        self._open[idx] = False
        return freed / MICROS_PER_DOLLAR

    def set_budget(self, budget: float) -> None:
        """Change the cost threshold; it may not drop below what is spent or reserved.

        Raises:
            LedgerError: the new budget is below spent + reserved (+ external).
        """
        b = micros(budget, round_up=False)
        if b < self._spent + self._reserved + self._external:
            raise LedgerError(
                f"budget ${budget:,.2f} is below what is already spent (${self.spent:,.2f}) "
                f"plus reserved (${self.reserved:,.2f})"
                + (f" plus held outside this ledger (${self.external:,.2f})" if self._external else "")
            )
        self._budget = b
        self.unlimited = False

    @property
    def external(self) -> float:
        """Dollars held outside this ledger (e.g. real-time decisions reserved in a database)."""
        return dollars(self._external)

    def set_external(self, amount: float) -> None:
        """Count money held outside this ledger against the budget (lowers :attr:`available`).

        Raises:
            LedgerError: spent + reserved + the new amount would exceed the budget.
        """
        m = micros(amount)
        if self._spent + self._reserved + m > self._budget:
            raise LedgerError(
                f"cannot hold ${amount:,.6f} outside the ledger: only "
                f"${dollars(self._budget - self._spent - self._reserved):,.6f} is free"
            )
        self._external = m

    # -- internals ----------------------------------------------------------------------------
    def _check_ids(self, ids: ArrayLike) -> IntArray:
        idx = np.asarray(ids, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise LedgerError(f"unknown reservation id(s); valid ids are 0..{self._n - 1}")
        return idx

    def _grow(self, size: int) -> None:
        if size <= self._remaining.shape[0]:
            return
        cap = max(size, 2 * self._remaining.shape[0], 1024)
        for name in self._PER_DECISION:
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    _PER_DECISION: ClassVar[tuple[str, ...]] = ("_remaining", "_charged", "_open")


@dataclass(frozen=True)
class Settlement:
    """What one batch of conversions (or a window close) did to the ledger.

    Attributes:
        counted: ``(k,)`` per conversion event: the first of its decision inside the window
            (the one that settles it and counts towards the goal).
        late: ``(k,)`` per conversion event: its decision's window had closed.
        released: ``(r,)`` ids of the reservations closed.
        freed: ``(r,)`` dollars each of them released.
    """

    counted: BoolArray
    late: BoolArray
    released: IntArray
    freed: FloatArray


class CampaignLedger(BudgetLedger):
    """A :class:`BudgetLedger` that applies the campaign's money rules with an attribution window.

    Decisions are sent in non-decreasing iterations (:meth:`send`); conversions settle them at
    most once (:meth:`convert`); :meth:`close` ends the windows that have closed and releases
    their reservations; :meth:`drain` releases everything at the end.

    Args:
        budget: dollars; ``math.inf`` for no limit.
        window: the attribution window in iterations (see :func:`window_closed`).
    """

    _PER_DECISION: ClassVar[tuple[str, ...]] = (
        "_remaining",
        "_charged",
        "_open",
        "_sent_at",
        "_attributable",
    )

    def __init__(self, budget: float, window: int) -> None:
        super().__init__(budget)
        if window < 0:
            raise LedgerError(f"the attribution window must be >= 0, got {window}")
        self.window = int(window)
        self._sent_at = np.zeros(0, np.int64)  # per decision: iteration sent
        self._attributable = np.zeros(0, bool)  # per decision: a first conversion may still come
        self._closed = 0  # decisions 0.._closed-1 have their window closed (sends are in order)
        self._n_attributable = 0

    @property
    def n_attributable(self) -> int:
        """Decisions whose window is open and that have not converted yet."""
        return self._n_attributable

    def sent_at(self, ids: ArrayLike) -> IntArray:
        """``(k,)`` iteration each decision was sent in."""
        return self._sent_at[self._check_ids(ids)]

    def in_window(self, ids: ArrayLike) -> BoolArray:
        """``(k,)`` whether each decision's attribution window is still open."""
        out: BoolArray = self._check_ids(ids) >= self._closed
        return out

    def attributable(self, ids: ArrayLike) -> BoolArray:
        """``(k,)`` whether each decision may still be settled by a first conversion."""
        return self._attributable[self._check_ids(ids)]

    def send(self, iteration: int, worst: ArrayLike, send_cost: ArrayLike) -> IntArray:
        """Reserve each decision's worst case and charge its send cost at once, all or nothing.

        A decision with nothing left to pay (no offer: ``worst <= send_cost``) is released at
        once; it stays attributable (its conversions still count) until its window closes.

        Args:
            iteration: the iteration the decisions are sent in (not before the last send's).
            worst: ``(k,)`` worst-case dollars (send cost plus the offer's cap).
            send_cost: ``(k,)`` dollars charged now.

        Returns:
            ``(k,)`` decision ids.

        Raises:
            InsufficientBudgetError: the worst cases do not fit; nothing is reserved.
            LedgerError: an iteration before the last send's.
        """
        w = np.asarray(worst, dtype=np.float64).reshape(-1)
        s = np.asarray(send_cost, dtype=np.float64).reshape(-1)
        if self._n and iteration < int(self._sent_at[self._n - 1]):
            raise LedgerError(f"iteration {iteration} is before the last send's")
        ids = self.reserve(w)
        self.charge(ids, s)
        self._sent_at[ids] = iteration
        self._attributable[ids] = True
        self._n_attributable += int(ids.size)
        done = ids[w <= s]
        if done.size:
            self.release(done)
        return ids

    def convert(self, ids: ArrayLike, offer_cost: ArrayLike) -> Settlement:
        """Settle conversions: the first one per decision inside its window, exactly once.

        The counted conversion charges its redeemed offer cost to the decision's reservation and
        releases the rest. Duplicates, later conversions of a settled decision and conversions
        after the window closed change nothing (``counted`` False).

        Args:
            ids: ``(k,)`` decision id per conversion event, in arrival order.
            offer_cost: ``(k,)`` redeemed offer cost in dollars (0 without an offer).

        Raises:
            LedgerError: an unknown decision, or a counted conversion whose offer cost its
                reservation cannot pay (already released, or too small); nothing is changed.
        """
        idx = self._check_ids(ids)
        cost = np.asarray(offer_cost, dtype=np.float64).reshape(-1)
        counted = np.zeros(idx.shape, bool)
        if idx.size:
            _, first = first_per_decision(idx)
            counted[first] = self._attributable[idx[first]]
        late = idx < self._closed
        settle, c = idx[counted], cost[counted]
        held = self._open[settle]
        if np.any(c[~held] > 0):
            raise LedgerError("an offer was redeemed on a decision with no open reservation")
        self.charge(settle[held], c[held])  # checks every charge before changing anything
        self._attributable[settle] = False
        self._n_attributable -= int(settle.size)
        released = settle[held]
        return Settlement(counted, late, released, self.release(released))

    def close(self, now: int) -> Settlement:
        """End the windows closed at clock ``now`` (:func:`window_closed`) and release their
        reservations."""
        lo = self._closed
        hi = lo + int(np.searchsorted(self._sent_at[lo : self._n], now - self.window, side="left"))
        self._closed = hi
        ended = np.arange(lo, hi, dtype=np.int64)
        self._n_attributable -= int(np.count_nonzero(self._attributable[lo:hi]))
        self._attributable[lo:hi] = False
        released = ended[self._open[lo:hi]]
        return self._settled(released, self.release(released))

    def drain(self) -> Settlement:
        """Release every open reservation (the campaign sends nothing more)."""
        released = self.open_ids()
        return self._settled(released, self.release(released))

    @staticmethod
    def _settled(released: IntArray, freed: FloatArray) -> Settlement:
        none = np.zeros(0, bool)
        return Settlement(none, none, released, freed)
