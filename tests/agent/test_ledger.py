"""Budget ledger: invariants under random sequences of operations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.money import MICROS_PER_DOLLAR, BudgetLedger, InsufficientBudgetError, LedgerError


def _invariants(ledger: BudgetLedger) -> None:
    assert ledger.spent >= 0 and ledger.reserved >= 0
    assert ledger._spent + ledger._reserved <= ledger._budget  # exact, in micro-dollars
    assert ledger.available >= 0
    # The ledger's totals are the sums of its per-reservation books.
    n = ledger.n_reservations
    assert ledger._reserved == int(ledger._remaining[:n][ledger._open[:n]].sum())
    assert ledger._spent == int(ledger._charged[:n].sum())


ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "charge", "release", "budget"]),
        st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=6),
        st.lists(st.integers(0, 40), min_size=1, max_size=6),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(budget=st.floats(0.01, 200), ops=ops)
def test_random_operations_never_overspend(budget: float, ops: list) -> None:
    ledger = BudgetLedger(budget)
    closed: set[int] = set()
    for op, amounts, ids in ops:
        before = (ledger._spent, ledger._reserved, ledger._budget, ledger.n_reservations)
        try:
            if op == "reserve":
                ledger.reserve(np.array(amounts))
            elif op == "charge":
                ledger.charge(np.array(ids[: len(amounts)]), np.array(amounts[: len(ids)]))
            elif op == "release":
                ledger.release(np.array(ids))
                closed.update(ids)
            else:
                ledger.set_budget(amounts[0] * 4)
        except LedgerError:
            # A refused operation changes nothing.
            assert before == (
                ledger._spent,
                ledger._reserved,
                ledger._budget,
                ledger.n_reservations,
            )
        _invariants(ledger)
    # Every closed reservation is closed exactly once: releasing again is refused.
    for i in closed:
        with pytest.raises(LedgerError):
            ledger.release([i])


def test_reserve_is_all_or_nothing() -> None:
    ledger = BudgetLedger(1.0)
    with pytest.raises(InsufficientBudgetError, match="only"):
        ledger.reserve([0.6, 0.6])
    assert ledger.n_reservations == 0 and ledger.available == 1.0
    ids = ledger.reserve([0.6, 0.4])
    assert ledger.available == 0.0
    assert ids.tolist() == [0, 1]


def test_charge_cannot_exceed_reservation_or_touch_closed() -> None:
    ledger = BudgetLedger(10.0)
    ids = ledger.reserve([1.0, 2.0])
    with pytest.raises(LedgerError, match="exceeds"):
        ledger.charge(ids, [1.5, 0.0])
    ledger.charge(ids, [0.25, 2.0])
    ledger.release(ids)
    assert ledger.spent == pytest.approx(2.25) and ledger.reserved == 0
    with pytest.raises(LedgerError, match="closed"):
        ledger.charge([0], [0.0])
    with pytest.raises(LedgerError, match="unknown"):
        ledger.release([7])


def test_affordable_prefix_and_exact_cents() -> None:
    ledger = BudgetLedger(0.3)
    # 0.1 + 0.2 is 0.30000000000000004 in floats; micro-dollars make it exactly 0.3.
    assert ledger.affordable([0.1, 0.2, 0.001]).tolist() == [True, True, False]
    ledger.reserve([0.1, 0.2])
    assert ledger.available == 0.0
    assert MICROS_PER_DOLLAR == 1_000_000


def test_budget_cannot_drop_below_commitments() -> None:
    ledger = BudgetLedger(5.0)
    ids = ledger.reserve([2.0])
    ledger.charge(ids, [1.0])
    with pytest.raises(LedgerError, match="below what is already spent"):
        ledger.set_budget(1.5)
    ledger.set_budget(2.0)
    assert ledger.available == 0.0


def test_bad_amounts_are_refused() -> None:
    ledger = BudgetLedger(5.0)
    for bad in ([-1.0], [float("nan")], [float("inf")]):
        with pytest.raises(LedgerError, match="finite and non-negative"):
            ledger.reserve(bad)
    assert ledger.n_reservations == 0


def test_money_held_outside_the_ledger_counts_against_the_budget() -> None:
    ledger = BudgetLedger(10.0)
    ledger.set_external(4.0)
    assert ledger.available == 6.0 and ledger.external == 4.0
    with pytest.raises(InsufficientBudgetError):
        ledger.reserve(np.array([6.5]))
    ids = ledger.reserve(np.array([6.0]))
    assert ledger.available == 0.0
    with pytest.raises(LedgerError, match="outside the ledger"):
        ledger.set_external(4.5)
    with pytest.raises(LedgerError, match="held outside"):
        ledger.set_budget(9.0)
    ledger.release(ids)
    ledger.set_external(0.0)
    assert ledger.available == 10.0
