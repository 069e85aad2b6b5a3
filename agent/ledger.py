"""The budget ledger: the single source of truth for campaign spend.

Every decision reserves its worst-case cost *before* it is sent. A reservation is then
charged (money actually spent: the send cost when sent, the offer cost when redeemed) and
finally closed; closing releases whatever was reserved but not charged. The invariant
``spent + reserved <= budget`` holds after every operation, and amounts are kept as integer
micro-dollars so that no rounding can ever push spend past the budget.

Example:
    >>> import numpy as np
    >>> ledger = BudgetLedger(budget=1.0)
    >>> ids = ledger.reserve(np.array([0.4, 0.4]))
    >>> ledger.charge(ids, np.array([0.1, 0.4]))
    >>> ledger.release(ids)
    >>> round(ledger.spent, 6), round(ledger.reserved, 6), round(ledger.available, 6)
    (0.5, 0.0, 0.5)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

MICROS_PER_DOLLAR = 1_000_000


class LedgerError(RuntimeError):
    """An operation that would break the ledger's invariants (nothing was changed)."""


class InsufficientBudgetError(LedgerError):
    """A reservation larger than the available budget (nothing was reserved)."""


def to_micros(dollars: ArrayLike, *, round_up: bool = False) -> NDArray[np.int64]:
    """Dollars to integer micro-dollars (ceil for reservations, nearest for charges)."""
    x = np.asarray(dollars, dtype=np.float64) * MICROS_PER_DOLLAR
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise LedgerError("amounts must be finite and non-negative")
    # Round in two steps so that 0.3 * 1e6 = 300000.00000000006 does not ceil to 300001.
    x = np.round(x, 3)
    return (np.ceil(x) if round_up else np.round(x)).astype(np.int64)


class BudgetLedger:
    """Reservations, charges and releases against one budget (vectorized over decisions).

    Args:
        budget: the total cost threshold in dollars.

    Reservation ids are consecutive integers from 0, so they double as decision ids.
    """

    def __init__(self, budget: float) -> None:
        self._budget = int(to_micros(budget)[()])
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
        """The cost threshold in dollars."""
        return self._budget / MICROS_PER_DOLLAR

    @property
    def spent(self) -> float:
        """Dollars actually spent (charged)."""
        return self._spent / MICROS_PER_DOLLAR

    @property
    def reserved(self) -> float:
        """Dollars held by open reservations and not yet charged."""
        return self._reserved / MICROS_PER_DOLLAR

    @property
    def available(self) -> float:
        """Dollars that new reservations may take: budget - spent - reserved - external (never negative)."""
        return self._free() / MICROS_PER_DOLLAR

    @property
    def n_reservations(self) -> int:
        """Reservations made so far (open and closed)."""
        return self._n

    def is_open(self, ids: ArrayLike) -> NDArray[np.bool_]:
        """Which of the given reservations are still open."""
        return self._open[self._check_ids(ids)]

    def charged(self, ids: ArrayLike) -> NDArray[np.float64]:
        """Dollars charged so far to each of the given reservations."""
        return self._charged[self._check_ids(ids)] / MICROS_PER_DOLLAR

    def open_ids(self) -> NDArray[np.int64]:
        """Ids of all open reservations."""
        return np.flatnonzero(self._open[: self._n]).astype(np.int64)

    # -- write --------------------------------------------------------------------------------
    def affordable(self, amounts: ArrayLike) -> NDArray[np.bool_]:
        """Mask of the longest prefix of ``amounts`` whose total fits the available budget."""
        m = to_micros(amounts, round_up=True)
        return np.cumsum(m) <= self._free()

    def reserve(self, amounts: ArrayLike) -> NDArray[np.int64]:
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
        if total > self._free():
            raise InsufficientBudgetError(
                f"cannot reserve ${total / MICROS_PER_DOLLAR:,.6f}: "
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

    def release(self, ids: ArrayLike) -> None:
        """Close open reservations, freeing what they hold beyond their charges.

        Raises:
            LedgerError: a closed, unknown or repeated id; nothing is released.
        """
        idx = self._check_ids(ids)
        if np.unique(idx).shape != idx.shape:
            raise LedgerError("release each reservation at most once per call")
        if not np.all(self._open[idx]):
            raise LedgerError(f"reservation(s) already closed: {idx[~self._open[idx]][:5].tolist()}")
        self._reserved -= int(self._remaining[idx].sum())
        self._remaining[idx] = 0
        self._open[idx] = False

    def set_budget(self, budget: float) -> None:
        """Change the cost threshold; it may not drop below what is spent or reserved.

        Raises:
            LedgerError: the new budget is below spent + reserved.
        """
        b = int(to_micros(budget)[()])
        if b < self._spent + self._reserved + self._external:
            raise LedgerError(
                f"budget ${budget:,.2f} is below what is already spent (${self.spent:,.2f}) "
                f"plus reserved (${self.reserved:,.2f})"
                + (f" plus held outside this ledger (${self.external:,.2f})" if self._external else "")
            )
        self._budget = b

    @property
    def external(self) -> float:
        """Dollars held outside this ledger (e.g. real-time decisions reserved in a database)."""
        return self._external / MICROS_PER_DOLLAR

    def set_external(self, amount: float) -> None:
        """Count money held outside this ledger against the budget (lowers :attr:`available`).

        Raises:
            LedgerError: spent + reserved + the new amount would exceed the budget.
        """
        m = int(to_micros(amount, round_up=True)[()])
        if self._spent + self._reserved + m > self._budget:
            raise LedgerError(
                f"cannot hold ${amount:,.6f} outside the ledger: only "
                f"${(self._budget - self._spent - self._reserved) / MICROS_PER_DOLLAR:,.6f} is free"
            )
        self._external = m

    def _free(self) -> int:
        return self._budget - self._spent - self._reserved - self._external

    # -- internals ----------------------------------------------------------------------------
    def _check_ids(self, ids: ArrayLike) -> NDArray[np.int64]:
        idx = np.asarray(ids, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise LedgerError(f"unknown reservation id(s); valid ids are 0..{self._n - 1}")
        return idx

    def _grow(self, size: int) -> None:
        if size <= self._remaining.shape[0]:
            return
        cap = max(size, 2 * self._remaining.shape[0], 1024)
        for name in ("_remaining", "_charged", "_open"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)
