"""Events: response events stored idempotently by event id; a conversion of a real-time
decision settles its hold at once (:func:`serving.settlement.claim_hold`), events of runner
decisions are applied by the campaign at its next iteration (or at once when it is not running)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from agent import Campaign
from agent.control import EventIn
from serving.channels import ChannelsMixin
from serving.errors import NotFoundError
from serving.models import CampaignRow, DecisionRow, EventRow, utcnow
from serving.schemas import EventsResult
from serving.settlement import DECIDE_ID_BASE, claim_hold, settle_decide_money
from serving.store import aware, session, snapshot_blob
from simulators.money import LedgerError, micros_paid

logger = logging.getLogger(__name__)


class Decided(EventIn):
    """An event as stored: the decision it names, or -1 when it names the owner's customer id
    (the campaign finds that decision when it applies the event)."""

    decision_id: int


def apply_events(camp: Campaign, pending: list[EventRow]) -> dict[str, str | None]:
    """Hand stored events to the campaign; per event id ``None`` (applied) or the rejection."""
    if not pending:
        return {}
    got = camp.ingest_events(
        [
            EventIn(
                event_id=e.event_id,
                decision_id=e.decision_id if e.decision_id >= 0 else None,
                customer_id=e.customer_ref if e.decision_id < 0 else None,
                kind=e.kind,
                revenue=e.revenue,
                offer_cost=e.offer_cost,
            )
            for e in pending
        ],
        # Events stored before arrival times were kept (0.0) are not judged by the clock.
        received_at=[e.received_at or 0.0 for e in pending],
    )
    return {**dict.fromkeys(got.accepted), **dict.fromkeys(got.duplicates), **got.rejected}


def write_verdicts(conn: Connection, cid: int, verdicts: dict[str, str | None]) -> None:
    applied = [k for k, v in verdicts.items() if v is None]
    if applied:
        conn.execute(
            update(EventRow)
            .where(EventRow.campaign_id == cid, EventRow.event_id.in_(applied))
            .values(status="applied")
        )
    for k, v in verdicts.items():  # rejections are few: one UPDATE each, with the reason
        if v is not None:
            conn.execute(
                update(EventRow)
                .where(EventRow.campaign_id == cid, EventRow.event_id == k)
                .values(status="rejected", reason=v)
            )


def pending_events(conn: Connection, cid: int) -> list[EventRow]:
    return list(
        session(conn).scalars(
            select(EventRow)
            .where(EventRow.campaign_id == cid, EventRow.status == "pending")
            .order_by(EventRow.id)
        )
    )


def insert_new_events(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows, skipping event ids already stored; returns the ids inserted."""
    if not rows:
        return set()
    from sqlalchemy.dialects import postgresql, sqlite

    ins = postgresql.insert(EventRow) if conn.dialect.name == "postgresql" else sqlite.insert(EventRow)
    stmt = ins.on_conflict_do_nothing(index_elements=["campaign_id", "event_id"]).returning(EventRow.event_id)
    return set(conn.execute(stmt, rows).scalars())


class EventsMixin(ChannelsMixin):
    """Storing, settling and listing response events."""

    def ingest_events(self, owner_id: int, cid: int, events: Sequence[EventIn]) -> EventsResult:
        """Store a batch of events: duplicates (by event id) change nothing; unknown decisions are
        rejected item by item; a conversion of a real-time decision settles its hold now (each
        hold once, see :func:`serving.settlement.claim_hold`); events of runner decisions are
        applied by the runner at its next iteration, or at once when the campaign is not running
        (the answer then says which of them the campaign rejected)."""
        accepted: list[str] = []
        duplicates: list[str] = []
        rejected: dict[str, str] = {}
        received_at = self.clock.now()
        events = self._by_decision(events)
        settles = any(e.decision_id >= DECIDE_ID_BASE and e.kind == "converted" for e in events)
        with self.engine.begin() as conn:
            q = select(CampaignRow.decisions_done, CampaignRow.status).where(
                CampaignRow.id == cid, CampaignRow.owner_id == owner_id
            )
            # Settling takes the campaign row first, as /decide and the runner's commit do (no deadlock).
            r = conn.execute(q.with_for_update() if settles else q).first()
            if r is None:
                raise NotFoundError(f"no campaign {cid}")
            decide_ids = sorted({e.decision_id for e in events if e.decision_id >= DECIDE_ID_BASE})
            known_decide: set[int] = set()
            for chunk in range(0, len(decide_ids), 500):
                known_decide.update(
                    conn.execute(
                        select(DecisionRow.decision_id).where(
                            DecisionRow.campaign_id == cid,
                            DecisionRow.decision_id.in_(decide_ids[chunk : chunk + 500]),
                        )
                    ).scalars()
                )
            rows: list[dict[str, Any]] = []
            in_batch: set[str] = set()
            kept: list[Decided] = []  # the event stored under each id of the batch (the first known one)
            for e in events:  # validation per item of one request, not a loop over customers
                if e.event_id in in_batch:
                    duplicates.append(e.event_id)
                    continue
                known = (
                    e.decision_id in known_decide
                    if e.decision_id >= DECIDE_ID_BASE
                    else e.decision_id < r.decisions_done or e.decision_id == -1
                )
                if not known:
                    rejected[e.event_id] = f"unknown decision {e.decision_id}"
                    continue
                in_batch.add(e.event_id)
                kept.append(e)
                rows.append(
                    {
                        "campaign_id": cid,
                        "event_id": e.event_id,
                        "decision_id": e.decision_id,
                        "kind": e.kind,
                        "revenue": e.revenue,
                        "offer_cost": e.offer_cost,
                        "status": "applied" if e.decision_id >= DECIDE_ID_BASE else "pending",
                        "received_at": received_at,
                        "customer_ref": e.customer_id if e.decision_id == -1 else None,
                        "created_at": utcnow(),
                    }
                )
            # Duplicates are found by the insert itself (the unique constraint), not by a lookup first.
            new = insert_new_events(conn, rows)
            # The events stored, not the first of each id: an id may come first with an unknown
            # decision (rejected above, not stored) and then with a known one.
            fresh = [e for e in kept if e.event_id in new]
            duplicates += [e.event_id for e in kept if e.event_id not in new]  # the database held them
            charge = release = 0
            late: dict[str, str] = {}
            conversions = [e for e in fresh if e.decision_id >= DECIDE_ID_BASE and e.kind == "converted"]
            # In decision order (stable: a decision's first conversion wins), as every settler locks.
            for e in sorted(conversions, key=lambda e: e.decision_id):
                try:
                    cost = micros_paid(e.offer_cost)
                except LedgerError:  # an amount no hold can pay
                    late[e.event_id] = f"offer cost exceeds what decision {e.decision_id} holds"
                    continue
                freed, reason = claim_hold(conn, cid, e.decision_id, cost)
                if reason is not None:
                    late[e.event_id] = reason
                elif freed or cost:
                    charge, release = charge + cost, release + freed
            for event_id, reason in late.items():  # stored as rejected, with the reason
                conn.execute(
                    update(EventRow)
                    .where(EventRow.campaign_id == cid, EventRow.event_id == event_id)
                    .values(status="rejected", reason=reason)
                )
            settle_decide_money(conn, cid, charge, release, "decide:events")
        accepted = [e.event_id for e in fresh if e.event_id not in late]
        rejected.update(late)
        if r.status != "running" and any(e.decision_id < DECIDE_ID_BASE for e in fresh):
            # No runner iteration will come to apply them: apply now and answer with the verdicts.
            for event_id, reason in self._apply_now(cid).items():
                if reason is not None and event_id in accepted:
                    accepted.remove(event_id)
                    rejected[event_id] = reason
        self._count("events_accepted_total", len(accepted))
        self._count("events_rejected_total", len(rejected))
        return EventsResult(accepted=accepted, duplicates=duplicates, rejected=rejected)

    @staticmethod
    def _by_decision(events: Sequence[EventIn]) -> list[Decided]:
        """Events with the decision they answer, or -1 for events given by the owner's
        ``customer_id``: the campaign finds that customer's decision when it applies the event
        (the latest one sent before the event arrived; a sender may answer before the wave that
        contacted the customer is committed), or rejects it."""
        # Already validated: built without validating again.
        return [
            Decided.model_construct(
                **{**e.model_dump(), "decision_id": e.decision_id if e.decision_id is not None else -1}
            )
            for e in events
        ]

    def _apply_now(self, cid: int) -> dict[str, str | None]:
        """Apply the pending events of a campaign that is not running, under its lease; returns
        the verdict per event id (``None``: applied)."""
        with self._leased(cid, wait=self.settings.lease_seconds + 5) as holder:
            with self.engine.connect() as conn:
                r = session(conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
                pending = pending_events(conn, cid)
                blob = snapshot_blob(conn, cid)
            camp = self._load_row(blob, r)
            verdicts = apply_events(camp, pending)
            with self.engine.begin() as conn:
                self._commit_snapshot(conn, r, camp, holder, ref="events")
                write_verdicts(conn, cid, verdicts)
        return verdicts

    def list_events(
        self, owner_id: int, cid: int, status: str | None, offset: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Stored events (``pending``, ``applied`` or ``rejected`` with the reason), oldest first."""
        q = (
            select(EventRow)
            .where(EventRow.campaign_id == cid)
            .order_by(EventRow.id)
            .offset(offset)
            .limit(limit)
        )
        if status is not None:
            q = q.where(EventRow.status == status)
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            return [
                {
                    "event_id": e.event_id,
                    "decision_id": e.decision_id,
                    "kind": e.kind,
                    "revenue": e.revenue,
                    "offer_cost": e.offer_cost,
                    "status": e.status,
                    "reason": e.reason,
                    "created_at": aware(e.created_at),
                }
                for e in session(conn).scalars(q)
            ]
