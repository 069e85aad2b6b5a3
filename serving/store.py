"""The store under the services: the database engine, campaign snapshots, leases and the commit.

The campaign itself is an :class:`agent.Campaign`, kept as a compressed, versioned JSON snapshot
(``Campaign.snapshot()``, never a pickle) in its row. Whoever changes the snapshot (the runner's
iteration, an owner's pause or modify) first takes the row's lease with a conditional UPDATE, and
writes back with another that also checks the version it read: a crashed or slow holder can never
overwrite a newer state. Money is checked in SQL (:mod:`serving.settlement`): every UPDATE that
adds spend or reservations carries ``spent + reserved + decide_spent + decide_held + new <= budget``
in its WHERE clause, so parallel ``/decide`` calls and runner commits, in any number of processes
sharing one database, never commit more than the budget.

Crash safety: an iteration is computed in memory from the snapshot and committed in one
transaction (decisions, iteration record, ledger rows, events applied, alerts, snapshot). A
process killed before the commit leaves the previous snapshot; the next holder recomputes the
same iteration from it (the campaign is deterministic from its snapshot), so no decision is
committed twice (a unique constraint on ``(campaign_id, decision_id)`` enforces it) and a
webhook receiver sees the same idempotency keys again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from agent import Campaign
from agent.channels import Channel
from agent.schedule import Clock, WallClock
from serving.db import make_engine, migrate
from serving.errors import BusyError, ConflictError, NotFoundError
from serving.models import AuditRow, CampaignRow, CampaignState, LedgerRow, utcnow
from serving.settings import Settings
from serving.settlement import commit_ledger_rows, fits_budget

logger = logging.getLogger(__name__)

COUNTERS = (
    "decisions_total",
    "decide_requests_total",
    "decide_budget_refusals_total",
    "events_accepted_total",
    "events_rejected_total",
    "iterations_total",
    "commit_conflicts_total",
)
"""The service's counters (``/metrics``), all from 0."""


def session(conn: Connection) -> Session:
    """An ORM session on a connection (reads of whole rows as model objects)."""
    return Session(bind=conn)


def snapshot_blob(conn: Connection, cid: int) -> bytes:
    """The stored snapshot of a campaign, as stored (compressed JSON)."""
    return bytes(
        conn.execute(select(CampaignState.snapshot).where(CampaignState.campaign_id == cid)).scalar_one()
    )


def dump_snapshot(camp: Campaign) -> bytes:
    """The compressed, versioned snapshot (plain JSON, no pickle); the channel and so a webhook
    channel's secret are never in it (see :meth:`serving.channels.ChannelsMixin._channel_factory`)."""
    return zlib.compress(json.dumps(camp.snapshot(), separators=(",", ":")).encode(), 1)


def load_snapshot(blob: bytes, channel: Callable[[Any], Channel] | None = None) -> Campaign:
    """A campaign from its stored snapshot; ``channel`` builds its channel around the rebuilt
    simulator (``None``: the simulator itself, enough for reports and forecasts)."""
    return Campaign.from_snapshot(json.loads(zlib.decompress(blob)), channel=channel)


def still_held(r: CampaignRow, holder: str) -> list[ColumnElement[bool]]:
    """The lease rule as a WHERE clause: the row is still at the version ``r`` read and
    ``holder`` still holds its lease (a crashed or slow holder's write then changes nothing)."""
    return [CampaignRow.id == r.id, CampaignRow.version == r.version, CampaignRow.lease_owner == holder]


def aware(at: datetime) -> datetime:
    """A stored time as UTC with its offset (SQLite gives times back without one)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class Store:
    """The database, the leases on campaign rows and the commit of a changed snapshot.

    Args:
        settings: where the database and data folder are, lease and poll times.
        engine: an engine to use instead of one made from ``settings.database_url`` (tests).
    """

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._heavy = threading.BoundedSemaphore(max(settings.heavy_workers, 1))
        self._counters_lock = threading.Lock()
        self.counters: dict[str, float] = dict.fromkeys(COUNTERS, 0)
        # The schedules' clock (tests put a ManualClock here); leases keep real time.
        self.clock: Clock = WallClock(settings.clock_speed)

    def _count(self, name: str, n: float = 1) -> None:
        """Add to a counter (request threads, the decide batcher and the runner all count)."""
        with self._counters_lock:
            self.counters[name] += n

    def counter_values(self) -> dict[str, float]:
        """A consistent copy of the counters."""
        with self._counters_lock:
            return dict(self.counters)

    def migrate(self) -> None:
        """Create or upgrade the schema (safe to call from every process on start)."""
        migrate(self.engine)

    @contextmanager
    def _heavy_work(self) -> Iterator[None]:
        """Hold one of the server's few slots for expensive work, or refuse with a 503."""
        if not self._heavy.acquire(timeout=self.settings.heavy_wait_seconds):
            raise BusyError("the server is busy with other expensive requests; try again shortly", 5)
        try:
            yield
        finally:
            self._heavy.release()

    def _orm(self, conn: Connection, owner_id: int, cid: int) -> CampaignRow:
        """The campaign row of an owner, or :class:`NotFoundError`."""
        row = (
            session(conn)
            .scalars(select(CampaignRow).where(CampaignRow.id == cid, CampaignRow.owner_id == owner_id))
            .one_or_none()
        )
        if row is None:
            raise NotFoundError(f"no campaign {cid}")
        return row

    def _audit(self, conn: Connection, cid: int, action: str, reason: str, changes: dict[str, Any]) -> None:
        conn.execute(
            insert(AuditRow).values(
                campaign_id=cid,
                action=action,
                reason=reason,
                changes_json=json.dumps(changes, default=str),
                at=utcnow(),
            )
        )

    # -- leases ---------------------------------------------------------------------------------
    def _claim(self, cid: int, holder: str, statuses: tuple[str, ...] | None = None) -> bool:
        """Take (or extend) the lease of a campaign row: one conditional UPDATE that succeeds only
        when nobody else holds an unexpired lease (and the status is one of ``statuses``)."""
        now = time.time()
        cond = [
            CampaignRow.id == cid,
            or_(
                CampaignRow.lease_owner.is_(None),
                CampaignRow.lease_expires < now,
                CampaignRow.lease_owner == holder,
            ),
        ]
        if statuses is not None:
            cond.append(CampaignRow.status.in_(statuses))
        with self.engine.begin() as conn:
            res = conn.execute(
                update(CampaignRow)
                .where(*cond)
                .values(lease_owner=holder, lease_expires=now + self.settings.lease_seconds)
            )
            return res.rowcount == 1

    def _release_lease(self, cid: int, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid, CampaignRow.lease_owner == holder)
                .values(lease_owner=None, lease_expires=0.0)
            )

    @contextmanager
    def _leased(self, cid: int, wait: float) -> Iterator[str]:
        """Hold the lease of a campaign (waiting up to ``wait`` seconds) for an owner's change."""
        holder = f"api-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + wait
        while not self._claim(cid, holder):
            if time.monotonic() > deadline:
                logger.info("lease busy campaign_id=%s waited_s=%.1f", cid, wait)
                raise ConflictError(f"campaign {cid} is busy (an iteration is running); try again")
            time.sleep(0.02)
        try:
            yield holder
        finally:
            self._release_lease(cid, holder)

    # -- the commit -----------------------------------------------------------------------------
    def _commit_snapshot(
        self,
        conn: Connection,
        r: CampaignRow,
        camp: Campaign,
        holder: str,
        ref: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write the campaign back if the row is still at the version read and the money fits,
        with the ledger rows of every money movement since that version (``ref`` names them)."""
        spent, reserved = camp.ledger.spent_micros, camp.ledger.reserved_micros
        budget = (extra or {}).get("budget_micros", CampaignRow.budget_micros)
        res = conn.execute(
            update(CampaignRow)
            .where(*still_held(r, holder), fits_budget(spent, reserved, budget))
            .values(
                version=r.version + 1,
                spent_micros=spent,
                reserved_micros=reserved,
                status=camp.status,
                stop_reason=camp.stop_reason,
                iterations_done=camp.iterations,
                decisions_done=len(camp.log),
                spec_json=camp.spec.model_dump_json(),
                goal_progress=min(camp.achieved / camp.spec.goal.target, 1.0),
                conversions=camp.conversions,
                next_due_at=camp.next_due,
                updated_at=utcnow(),
                **(extra or {}),
            )
        )
        if res.rowcount != 1:
            self._count("commit_conflicts_total")
            logger.info("commit refused campaign_id=%s version=%s ref=%s", r.id, r.version, ref)
            raise ConflictError(
                "the campaign changed meanwhile, or the change would commit more than the budget "
                "(real-time decisions hold part of it); nothing was changed"
            )
        conn.execute(
            update(CampaignState)
            .where(CampaignState.campaign_id == r.id)
            .values(snapshot=dump_snapshot(camp), report_json=json.dumps(camp.report().to_dict()))
        )
        rows = commit_ledger_rows(
            r.id,
            f"{ref}:{camp.iterations}",
            camp.log.reserved[int(r.decisions_done) :],
            spent=(r.spent_micros, spent),
            reserved=(r.reserved_micros, reserved),
        )
        if rows:
            conn.execute(insert(LedgerRow), rows)
