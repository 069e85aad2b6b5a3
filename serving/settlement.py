"""The money rules of :mod:`simulators.money` in SQL, one function per rule.

Every amount is integer micro-dollars, converted by :func:`simulators.money.micros_up` (what is
held: worst cases) and :func:`simulators.money.micros_paid` (what is paid: send and offer costs).
Each rule that moves money is one conditional ``UPDATE ... RETURNING``: the condition is the rule,
so parallel requests and runner commits, in any number of processes sharing one database, apply
it at most once and never commit more than the budget:

* **reserve** (:func:`reserve_decision`): a real-time decision's worst case, only while
  ``spent + reserved + decide_spent + decide_held + worst <= budget``; its send cost is charged
  at once, the rest is held;
* **settle once** (:func:`claim_hold`): a conversion claims its decision's hold only while the
  hold is open and holds at least the offer cost, so one decision is settled once;
* **release** (:func:`release_decide_holds`): the holds whose attribution window closed
  (:func:`simulators.money.first_open_iteration`), or all of them at the end;
* **book** (:func:`settle_decide_money`): claimed holds move to spend or back to the budget,
  never taking the campaign's held money below zero;
* **commit** (:func:`fits_budget`, :func:`commit_ledger_rows`): a runner iteration's ledger
  (the in-memory :class:`simulators.money.CampaignLedger`) is written back only if it still fits
  beside the real-time money.

Every movement also writes its ledger rows, so ``reserve - charge - release`` is always what the
campaign still holds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.engine import Connection

from serving.errors import ConflictError
from serving.models import CampaignRow, DecisionRow, LedgerRow
from simulators.money import dollars, to_micros

logger = logging.getLogger(__name__)

DECIDE_ID_BASE = 10**12
"""Real-time (``/decide``) decision ids start here; runner decisions count up from 0."""


def fits_budget(spent: int | Any, reserved: int | Any, budget: int | Any) -> ColumnElement[bool]:
    """The budget rule as a WHERE clause: the runner's ``spent + reserved`` (its ledger) plus the
    real-time money of the row must fit ``budget``."""
    return spent + reserved + CampaignRow.decide_spent_micros + CampaignRow.decide_held_micros <= budget


def reserve_decision(conn: Connection, cid: int, send: int, worst: int) -> int | None:
    """Reserve one real-time decision of a running campaign: charge ``send`` and hold the rest of
    ``worst`` (micro-dollars), if the budget holds ``worst`` beside everything committed.

    Returns:
        The campaign's real-time decision number (the decision id is ``DECIDE_ID_BASE`` plus it),
        or ``None`` when refused (no budget left, or the campaign is not running).
    """
    seq = conn.execute(
        update(CampaignRow)
        .where(
            CampaignRow.id == cid,
            CampaignRow.status == "running",
            fits_budget(
                CampaignRow.spent_micros, CampaignRow.reserved_micros + worst, CampaignRow.budget_micros
            ),
        )
        .values(
            decide_spent_micros=CampaignRow.decide_spent_micros + send,
            decide_held_micros=CampaignRow.decide_held_micros + (worst - send),
            decisions_decided=CampaignRow.decisions_decided + 1,
        )
        .returning(CampaignRow.decisions_decided)
    ).scalar()
    return None if seq is None else int(seq)


def release_decide_holds(conn: Connection, cid: int, before_iteration: int | None) -> None:
    """Release what real-time decisions still hold (all, or those made before an iteration).

    One conditional UPDATE claims the open holds (``WHERE open``) and returns what each held,
    so a hold that a conversion settles at the same moment is released by neither twice.
    """
    cond = [DecisionRow.campaign_id == cid, DecisionRow.source == "decide", DecisionRow.open.is_(True)]
    if before_iteration is not None:
        cond.append(DecisionRow.iteration < before_iteration)
    claimed = conn.execute(
        update(DecisionRow)
        .where(*cond)
        .values(held_micros=0, open=False)
        .returning(DecisionRow.reserved_micros, DecisionRow.charged_micros)
    ).all()
    settle_decide_money(conn, cid, 0, sum(int(r - c) for r, c in claimed), "decide:expired")


def settle_decide_money(conn: Connection, cid: int, charge: int, release: int, ref: str) -> None:
    """Move claimed real-time holds to spend (``charge``) or back to the budget (``release``),
    with their ledger rows; the UPDATE refuses to take the held money below zero."""
    if not charge and not release:
        return
    res = conn.execute(
        update(CampaignRow)
        .where(CampaignRow.id == cid, CampaignRow.decide_held_micros >= charge + release)
        .values(
            decide_spent_micros=CampaignRow.decide_spent_micros + charge,
            decide_held_micros=CampaignRow.decide_held_micros - charge - release,
        )
    )
    if res.rowcount != 1:  # pragma: no cover - the claims above make it impossible
        raise ConflictError("real-time holds changed meanwhile; nothing was settled")
    conn.execute(
        insert(LedgerRow),
        [
            {"campaign_id": cid, "kind": kind, "amount_micros": amount, "ref": ref}
            for kind, amount in (("charge", charge), ("release", release))
            if amount
        ],
    )


def claim_hold(conn: Connection, cid: int, decision_id: int, cost: int) -> tuple[int, str | None]:
    """Settle one real-time decision's hold with a conversion costing ``cost``.

    A single conditional UPDATE claims the hold only while it is open and holds at least the
    cost, so parallel conversions of one decision settle it once.

    Returns:
        ``(released micro-dollars, None)`` when settled here, else ``(0, reason)`` (the reason
        is ``None`` too for a free conversion of a hold already closed: nothing to settle).
    """
    got = conn.execute(
        update(DecisionRow)
        .where(
            DecisionRow.campaign_id == cid,
            DecisionRow.decision_id == decision_id,
            DecisionRow.open.is_(True),
            DecisionRow.held_micros >= cost,
        )
        .values(held_micros=0, open=False, charged_micros=DecisionRow.charged_micros + cost)
        .returning(DecisionRow.reserved_micros, DecisionRow.charged_micros)
    ).first()
    if got is not None:
        return int(got[0] - got[1]), None
    is_open = conn.execute(
        select(DecisionRow.open).where(DecisionRow.campaign_id == cid, DecisionRow.decision_id == decision_id)
    ).scalar()
    if is_open:
        return 0, f"offer cost ${dollars(cost):,.2f} exceeds what decision {decision_id} holds"
    if cost > 0:
        return 0, f"decision {decision_id} already settled or expired"
    return 0, None


def commit_ledger_rows(
    cid: int,
    ref: str,
    new_reserved: NDArray[np.float64],
    spent: tuple[int, int],
    reserved: tuple[int, int],
) -> list[dict[str, Any]]:
    """The ledger rows of a runner commit: what its new decisions reserved, what it charged and
    what it released since the version read.

    Args:
        cid: the campaign.
        ref: names the movement (e.g. ``iteration:7``).
        new_reserved: dollars reserved by each decision made since that version.
        spent: the runner's spend in micro-dollars ``(before, after)``.
        reserved: what the runner holds in micro-dollars ``(before, after)``.
    """
    # reserve - charge - release == the change of what is reserved, so the ledger adds up.
    reserve = int(to_micros(new_reserved, round_up=True).sum()) if new_reserved.size else 0
    charge = spent[1] - spent[0]
    release = reserve - charge - (reserved[1] - reserved[0])
    if release < 0:  # rounding of the per-decision micro-dollars: the reservation was larger
        reserve, release = reserve - release, 0
    return [
        {"campaign_id": cid, "kind": k, "amount_micros": v, "ref": ref}
        for k, v in (("reserve", reserve), ("charge", charge), ("release", release))
        if v
    ]
