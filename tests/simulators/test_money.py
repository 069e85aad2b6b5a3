"""The money and attribution rules (simulators/money.py) under random event streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.money import (
    CampaignLedger,
    InsufficientBudgetError,
    LedgerError,
    attribution_window,
    find_decisions,
    first_open_iteration,
    first_per_decision,
    micros,
    scale_to_population,
    to_micros,
    window_closed,
)

SEND = np.array([0.001, 0.04, 0.6])  # e-mail, SMS, mail
CAP = np.array([0.0, 5.0, 15.0])  # the offer's cap per arm (0: no offer)

# One step of a stream: send a wave, deliver conversion events, or let an iteration pass.
sends = st.tuples(st.just("send"), st.lists(st.integers(0, 2), min_size=0, max_size=8))
conversions = st.tuples(
    st.just("convert"),
    # (decision id, share of the cap redeemed): ids may repeat, be out of order, or late.
    st.lists(st.tuples(st.integers(0, 60), st.floats(0, 1)), min_size=0, max_size=10),
)
ticks = st.tuples(st.just("tick"), st.just([]))
streams = st.lists(st.one_of(sends, conversions, ticks), max_size=50)


@settings(max_examples=300, deadline=None)
@given(budget=st.floats(0.5, 60), window=st.integers(0, 3), stream=streams)
def test_random_event_streams_keep_the_books(budget: float, window: int, stream: list) -> None:
    ledger = CampaignLedger(budget, window)
    now = 0
    reserve = charge = release = 0  # micro-dollars moved, as the database's ledger rows count them
    settled = np.zeros(0, np.int64)  # per decision: settlements so far
    arm_of = np.zeros(0, np.int64)
    closed_before: set[int] = set()

    def books() -> None:
        assert ledger.spent_micros + ledger.reserved_micros <= ledger.budget_micros
        assert ledger.spent_micros == charge
        assert reserve - charge - release == ledger.reserved_micros
        assert np.all(settled <= 1)

    for op, items in stream:
        if op == "send":
            arms = np.asarray(items, np.int64)
            worst, send = SEND[arms] + CAP[arms], SEND[arms]
            fits = ledger.affordable(worst)
            try:
                ids = ledger.send(now, worst, send)
            except InsufficientBudgetError:
                assert not fits.all()
                books()
                continue
            held, paid = to_micros(worst, round_up=True), to_micros(send)
            reserve += int(held.sum())
            charge += int(paid.sum())
            release += int((held - paid)[~ledger.is_open(ids)].sum())  # no offer: released at once
            settled = np.concatenate([settled, np.zeros(ids.size, np.int64)])
            arm_of = np.concatenate([arm_of, arms])
        elif op == "convert":
            ids = np.array([i for i, _ in items], np.int64)
            ids = ids[ids < ledger.n_reservations]
            share = np.array([f for i, f in items if i < ledger.n_reservations])
            cost = np.round(share * CAP[arm_of[ids]], 6) if ids.size else np.zeros(0)
            was_attributable = ledger.attributable(ids)
            result = ledger.convert(ids, cost)
            assert not np.any(result.counted & result.late)
            assert not np.any(result.counted & np.isin(ids, list(closed_before)))
            assert np.all(was_attributable[result.counted])
            np.add.at(settled, ids[result.counted], 1)
            charge += int(to_micros(cost[result.counted]).sum())
            release += int(to_micros(result.freed).sum())
        else:
            now += 1
            result = ledger.close(now)
            release += int(to_micros(result.freed).sum())
            closed_before.update(
                np.flatnonzero(window_closed(ledger.sent_at(np.arange(ledger.n_reservations)), now, window))
                .astype(int)
                .tolist()
            )
        books()
    release += int(to_micros(ledger.drain().freed).sum())
    books()
    assert ledger.reserved_micros == 0 and ledger.open_ids().size == 0


def test_a_decision_settles_once_and_not_after_its_window() -> None:
    ledger = CampaignLedger(100.0, window=1)
    ids = ledger.send(0, SEND[[1, 2]] + CAP[[1, 2]], SEND[[1, 2]])
    first = ledger.convert(np.array([1, 1, 0]), np.array([2.0, 2.0, 1.0]))
    assert first.counted.tolist() == [True, False, True]
    assert ledger.convert(np.array([1]), np.array([0.0])).counted.tolist() == [False]
    assert ledger.spent == pytest.approx(0.64 + 3.0) and ledger.reserved == 0
    later = ledger.send(1, SEND[[1]] + CAP[[1]], SEND[[1]])
    assert ledger.close(2).released.size == 0 and ledger.in_window(later).tolist() == [True]
    assert ledger.close(3).released.tolist() == later.tolist()
    late = ledger.convert(later, np.array([1.0]))
    assert late.counted.tolist() == [False] and late.late.tolist() == [True]
    assert ledger.attributable(ids).tolist() == [False, False]


def test_a_redeemed_offer_needs_an_open_reservation() -> None:
    ledger = CampaignLedger(10.0, window=2)
    ids = ledger.send(0, SEND[[0]] + CAP[[0]], SEND[[0]])  # no offer: released at once
    assert ledger.is_open(ids).tolist() == [False]
    with pytest.raises(LedgerError, match="no open reservation"):
        ledger.convert(ids, np.array([1.0]))
    assert ledger.convert(ids, np.array([0.0])).counted.tolist() == [True]
    with pytest.raises(LedgerError, match="before the last send"):
        ledger.send(-1, np.array([1.0]), np.array([0.5]))


def test_an_unlimited_ledger_never_refuses() -> None:
    ledger = CampaignLedger(float("inf"), window=0)
    assert ledger.affordable(np.full(5, 1e9)).all() and ledger.available == float("inf")
    ledger.send(0, np.full(3, 1e9), np.full(3, 1.0))
    assert ledger.budget == float("inf") and ledger.spent == 3.0


def test_the_rules_as_plain_functions() -> None:
    assert micros(0.3) == 300_000 and micros(1e-7) == 1 and micros(1e-7, round_up=False) == 0
    assert window_closed(2, 5, 2) and not window_closed(2, 4, 2)
    assert window_closed(np.array([0, 1, 2]), 4, 2).tolist() == [True, True, False]
    assert first_open_iteration(4, 2) == 2 and first_open_iteration(1, 3) == 0
    ids, first = first_per_decision(np.array([5, 3, 5, 3, 7]))
    assert ids.tolist() == [3, 5, 7] and first.tolist() == [1, 0, 4]
    rows, found = find_decisions(np.array([9, 4, 6]), np.array([6, 5, 9]))
    assert rows.tolist() == [2, 0] and found.tolist() == [True, False, True]
    rows, found = find_decisions(np.zeros(0, np.int64), np.array([1]))
    assert rows.size == 0 and found.tolist() == [False]
    scaled = scale_to_population(2000, 10_000, 10_000, 6_400, 64_000)
    assert (scaled.target, scaled.budget, scaled.customers_per_iteration) == (200.0, 1000.0, 1000)
    assert scale_to_population(10, 10, 10, 1, 1000).customers_per_iteration == 1


def test_the_attribution_window_covers_the_longest_delay() -> None:
    assert attribution_window(2, None) == 2 and attribution_window(2, 5) == 5
    with pytest.raises(ValueError, match="shorter than the longest conversion delay 2"):
        attribution_window(2, 1)


# -- the one rounding rule: held rounded up, paid to the nearest --------------------------------
@settings(max_examples=200, deadline=None)
@given(paid=st.floats(0, 1e6), extra=st.floats(0, 1e6))
def test_a_payment_never_exceeds_its_hold(paid: float, extra: float) -> None:
    from simulators.money import holds_after_send, micros_paid, micros_up

    worst = paid + extra
    assert micros_paid(paid) <= micros_up(worst)
    assert micros_up(worst) == int(to_micros(worst, round_up=True))  # as the ledger reserves
    assert micros_paid(paid) == int(to_micros(paid))  # as the ledger charges
    assert holds_after_send(micros_up(worst), micros_paid(paid)) == (micros_up(worst) > micros_paid(paid))


def test_rounding_rule_examples_and_bounds() -> None:
    from simulators.money import micros_paid, micros_up, to_dollars

    assert micros_up(0.3) == 300_000  # 0.3 * 1e6 is 300000.00000000006: not 300001
    assert micros_up(1e-7) == 1 and micros_paid(1e-7) == 0
    assert micros_paid(2.5e-6) == 2  # to the nearest (half to even, as numpy rounds)
    assert to_dollars(np.array([1_500_000, 1])).tolist() == [1.5, 1e-6]
    for bad in (-1.0, float("inf"), float("nan"), 1e300):
        with pytest.raises(LedgerError):
            micros_up(bad)
        with pytest.raises(LedgerError):
            micros_paid(bad)
