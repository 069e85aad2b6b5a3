"""The serving logic between the routes and the agent: campaigns in the database, the money
ledger, real-time decisions, events and the live runner's iterations.

The campaign itself is an :class:`agent.Campaign`, kept as a compressed, versioned JSON snapshot
(``Campaign.snapshot()``, never a pickle) in its row. Whoever changes the snapshot (the runner's
iteration, an owner's pause or modify) first takes the row's lease with a conditional UPDATE, and
writes back with another that also checks the version it read: a crashed or slow holder can never
overwrite a newer state. Money is checked in SQL: every UPDATE that adds spend or reservations carries
``spent + reserved + decide_spent + decide_held + new <= budget`` in its WHERE clause, so
parallel ``/decide`` calls and runner commits, in any number of processes sharing one database,
never commit more than the budget.

Crash safety: an iteration is computed in memory from the snapshot and committed in one
transaction (decisions, iteration record, ledger rows, events applied, alerts, snapshot). A
process killed before the commit leaves the previous snapshot; the next holder recomputes the
same iteration from it (the campaign is deterministic from its snapshot), so no decision is
committed twice (a unique constraint on ``(campaign_id, decision_id)`` enforces it) and a
webhook receiver sees the same idempotency keys again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import queue
import secrets
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from agent import Campaign, CampaignError, CampaignSpec
from agent import CampaignUpdate as AgentUpdate
from agent.channels import Channel, FileChannel, SimulatedChannel, WebhookChannel
from agent.control import EventIn
from agent.loop import ExternalContacts
from serving.db import make_engine, migrate
from serving.models import (
    AlertRow,
    ApiKey,
    AuditRow,
    CampaignRow,
    CampaignState,
    DecisionRow,
    EventRow,
    IterationRow,
    LedgerRow,
    Owner,
    utcnow,
)
from serving.schemas import (
    CampaignCreate,
    CampaignUpdate,
    ChannelConfig,
    DecideOut,
    EventsResult,
    check_policy_name,
)
from serving.settings import SECRET_ENV_PREFIX, Settings
from simulators.money import (
    LedgerError,
    dollars,
    first_open_iteration,
    holds_after_send,
    micros_paid,
    micros_up,
    to_dollars,
    to_micros,
)

DECIDE_ID_BASE = 10**12
"""Real-time (``/decide``) decision ids start here; runner decisions count up from 0."""
DECIDE_CACHE_CAMPAIGNS = 8
"""Campaigns whose policy a server keeps in memory for ``/decide`` (the most recently loaded)."""
T = TypeVar("T")


class ServiceError(Exception):
    """A request the service refuses; ``status`` is the HTTP code, ``field`` the offending field,
    ``retry_after`` the seconds after which trying again may succeed (429 and 503)."""

    status = 400

    def __init__(
        self, message: str, field: list[str | int] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.field = message, field
        self.retry_after = None if retry_after is None else max(1, int(np.ceil(retry_after)))


class NotFoundError(ServiceError):
    status = 404


class ConflictError(ServiceError):
    status = 409


class InvalidError(ServiceError):
    status = 422


class RateLimitedError(ServiceError):
    """A rate limit or quota is reached (429 with ``Retry-After``)."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class BusyError(ServiceError):
    """Expensive work is at its bound on this server (503 with ``Retry-After``)."""

    status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _orm(conn: Connection) -> Session:
    """An ORM session on a connection (reads of whole rows as model objects)."""
    return Session(bind=conn)


def _apply_events(camp: Campaign, pending: list[EventRow]) -> dict[str, str | None]:
    """Hand stored events to the campaign; per event id ``None`` (applied) or the rejection."""
    if not pending:
        return {}
    got = camp.ingest_events(
        [
            EventIn(
                event_id=e.event_id,
                decision_id=e.decision_id,
                kind=e.kind,
                revenue=e.revenue,
                offer_cost=e.offer_cost,
            )
            for e in pending
        ]
    )
    return {**dict.fromkeys(got.accepted), **dict.fromkeys(got.duplicates), **got.rejected}


def _write_verdicts(conn: Connection, cid: int, verdicts: dict[str, str | None]) -> None:
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


def _pending(conn: Connection, cid: int) -> list[EventRow]:
    return list(
        _orm(conn).scalars(
            select(EventRow)
            .where(EventRow.campaign_id == cid, EventRow.status == "pending")
            .order_by(EventRow.id)
        )
    )


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows, skipping event ids already stored; returns the ids inserted."""
    if not rows:
        return set()
    from sqlalchemy.dialects import postgresql, sqlite

    ins = postgresql.insert(EventRow) if conn.dialect.name == "postgresql" else sqlite.insert(EventRow)
    stmt = ins.on_conflict_do_nothing(index_elements=["campaign_id", "event_id"]).returning(EventRow.event_id)
    return set(conn.execute(stmt, rows).scalars())


def _snapshot(conn: Connection, cid: int) -> bytes:
    return bytes(
        conn.execute(select(CampaignState.snapshot).where(CampaignState.campaign_id == cid)).scalar_one()
    )


def _dump(camp: Campaign) -> bytes:
    """The compressed, versioned snapshot (plain JSON, no pickle); the channel and so a webhook
    channel's secret are never in it (see ``_channel_factory`` and ``_attach_secret``)."""
    return zlib.compress(json.dumps(camp.snapshot(), separators=(",", ":")).encode(), 1)


CHANNEL_FAILED = (
    "the channel did not take the batch (no connection, timeout or an error answer); "
    "the campaign is paused and resume redelivers it"
)
"""What an owner is told of a failed delivery: never the connection error itself, which would
let a campaign probe the network the server sees."""


def _generic_channel_errors(camp: Campaign, n_audit: int, n_alerts: int) -> None:
    """Replace the text of the channel failures recorded since ``n_audit``/``n_alerts``."""
    camp.audit_log[n_audit:] = [
        dataclasses.replace(a, reason=CHANNEL_FAILED) if a.action == "channel_failed" else a
        for a in camp.audit_log[n_audit:]
    ]
    camp.alerts[n_alerts:] = [
        dataclasses.replace(a, message=CHANNEL_FAILED) if a.kind == "channel_failed" else a
        for a in camp.alerts[n_alerts:]
    ]


def _aware(at: datetime) -> datetime:
    """A stored time as UTC with its offset (SQLite gives times back without one)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _goal_public(goal: Any) -> dict[str, Any]:
    """The stored goal as shown: a target that is not a finite number is shown as ``None``."""
    goal = goal if isinstance(goal, dict) else {}
    target = goal.get("target")
    finite = isinstance(target, int | float) and np.isfinite(target)
    return {"metric": str(goal.get("metric", "conversions")), "target": float(target) if finite else None}


def _load(blob: bytes, channel: Callable[[Any], Channel] | None = None) -> Campaign:
    """A campaign from its stored snapshot; ``channel`` builds its channel around the rebuilt
    simulator (``None``: the simulator itself, enough for reports and forecasts)."""
    return Campaign.from_snapshot(json.loads(zlib.decompress(blob)), channel=channel)


class Service:
    """Everything the API and the runner do, on one database.

    Args:
        settings: where the database and data folder are, lease and poll times.
        engine: an engine to use instead of one made from ``settings.database_url`` (tests).
    """

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._decide_cache: dict[int, tuple[int, Campaign, threading.Lock]] = {}
        self._cache_lock = threading.Lock()
        self._heavy = threading.BoundedSemaphore(max(settings.heavy_workers, 1))
        self._batcher: _DecideBatcher | None = None
        self.counters: dict[str, float] = {
            "decisions_total": 0,
            "decide_requests_total": 0,
            "decide_budget_refusals_total": 0,
            "events_accepted_total": 0,
            "events_rejected_total": 0,
            "iterations_total": 0,
            "commit_conflicts_total": 0,
        }

    def migrate(self) -> None:
        """Create or upgrade the schema (safe to call from every process on start)."""
        migrate(self.engine)

    # -- keys and owners -----------------------------------------------------------------------
    def create_key(self, owner: str) -> str:
        """A new API key for ``owner`` (created when new); only its hash is stored."""
        owner = owner.strip()
        if not owner or len(owner) > 200:
            raise InvalidError("owner name must be 1 to 200 characters", ["owner"])
        key = "co_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            oid = conn.execute(select(Owner.id).where(Owner.name == owner)).scalar()
            if oid is None:
                oid = conn.execute(
                    insert(Owner).values(name=owner, created_at=utcnow()).returning(Owner.id)
                ).scalar_one()
            conn.execute(
                insert(ApiKey).values(
                    owner_id=oid, key_hash=hash_key(key), prefix=key[:10], created_at=utcnow()
                )
            )
        return key

    def authenticate(self, key: str) -> int | None:
        """The owner id of an API key that is not revoked, or ``None``.

        One indexed lookup per request and no cache, so a key revoked by any process (``campaign-opt
        keys revoke``) stops working on every server at once."""
        with self.engine.connect() as conn:
            owner = conn.execute(
                select(ApiKey.owner_id).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            ).scalar()
        return None if owner is None else int(owner)

    def list_keys(self) -> list[dict[str, Any]]:
        """Every key: its id, owner, prefix (the key's first characters), creation and revocation."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ApiKey.id, Owner.name, ApiKey.prefix, ApiKey.created_at, ApiKey.revoked_at)
                .join(Owner, Owner.id == ApiKey.owner_id)
                .order_by(ApiKey.id)
            ).all()
        return [
            {"id": i, "owner": o, "prefix": p, "created_at": c, "revoked_at": rv} for i, o, p, c, rv in rows
        ]

    def revoke_key(self, key_id: int) -> None:
        """Revoke a key by its id (``list_keys``); it stops working at once on every server.

        Raises:
            NotFoundError: no such key, or it is already revoked.
        """
        with self.engine.begin() as conn:
            res = conn.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        if res.rowcount != 1:
            raise NotFoundError(f"no active key with id {key_id}")

    @contextmanager
    def _heavy_work(self) -> Iterator[None]:
        """Hold one of the server's few slots for expensive work, or refuse with a 503."""
        if not self._heavy.acquire(timeout=self.settings.heavy_wait_seconds):
            raise BusyError("the server is busy with other expensive requests; try again shortly", 5)
        try:
            yield
        finally:
            self._heavy.release()

    # -- creating a campaign -------------------------------------------------------------------
    def _build(self, body: CampaignCreate, campaign_id: int) -> Campaign:
        """The agent campaign for a request; :class:`InvalidError` names the field on any mistake."""
        from policies import UnknownPolicyError
        from simulators import ScenarioError, Simulator, builtin_scenarios, load_scenario

        if body.scenario not in builtin_scenarios():
            raise InvalidError(
                f"unknown scenario {body.scenario!r}; built-in: {builtin_scenarios()}", ["scenario"]
            )
        try:
            sc = load_scenario(body.scenario)
        except ScenarioError as err:  # pragma: no cover - built-ins are validated in tests
            raise InvalidError(str(err), ["scenario"]) from None
        base = CampaignSpec.from_scenario(sc).model_dump()
        fields = body.model_dump(
            exclude_unset=True,
            exclude={"name", "scenario", "policy", "seed", "n_customers", "channel"},
        )
        if "suppression" in fields:
            fields["suppression"] = frozenset(fields["suppression"])
        if "alert_fractions" in fields:
            fields["alert_fractions"] = tuple(fields["alert_fractions"])
        try:
            spec = CampaignSpec.model_validate({**base, **fields})
        except ValueError as err:
            raise InvalidError(str(err), ["body"]) from None
        sim = Simulator(sc, n_customers=body.n_customers) if body.n_customers else Simulator(sc)
        try:
            policy = self._policy(body.policy, sim, body.seed)
        except UnknownPolicyError as err:
            raise InvalidError(str(err), ["policy"]) from None
        channel = self._channel(body.channel, sim, campaign_id)
        try:
            return Campaign(
                spec,
                sim,
                policy,
                seed=body.seed,
                scenario_name=sc.name,
                channel=channel,
                campaign_id=f"campaign-{campaign_id}",
            )
        except CampaignError as err:
            raise InvalidError(str(err), ["body"]) from None

    def _policy(self, name: str, sim: Any, seed: int) -> Any:
        """The policy a request names (already syntax-checked by the schema): a built-in, a saved
        folder inside the server's policies folder, or a registered model; nothing else is loaded.

        Raises:
            UnknownPolicyError: no such policy, or a name that would leave the policies folder.
        """
        from policies import UnknownPolicyError, load_policy, make_policy

        if name.startswith("saved:"):
            root = (self.settings.data_dir / "policies").resolve()
            folder = (root / check_policy_name(name).removeprefix("saved:")).resolve()
            if folder.parent != root or not (folder / "policy.json").is_file():
                raise UnknownPolicyError(f"no saved policy {name!r} (GET /policies lists them)")
            return load_policy(folder, sim)
        if name.startswith("models:/"):
            from serving.registry import resolve_policy

            return resolve_policy(name, sim, seed=seed)
        return make_policy(check_policy_name(name), sim, seed=seed)

    def check_webhook_url(self, url: str) -> None:
        """Refuse a webhook URL the configuration does not allow: its scheme, its host (when an
        allow-list is set), and any address it resolves to that is not public (unless allowed).

        Raises:
            InvalidError: the URL is not allowed (the message says what, never why a connection failed).
        """
        cfg = self.settings
        field: list[str | int] = ["channel", "url"]
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in cfg.webhook_schemes:
            raise InvalidError(f"webhook url scheme must be one of {list(cfg.webhook_schemes)}", field)
        if not host or parts.username or parts.password:
            raise InvalidError("webhook url needs a host and no credentials", field)
        if cfg.webhook_hosts and host not in cfg.webhook_hosts:
            raise InvalidError("webhook host is not in the server's allow-list", field)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, ValueError, UnicodeError):
            raise InvalidError("webhook host cannot be resolved", field) from None
        if not cfg.webhook_allow_private:
            for info in infos:
                if not ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_global:
                    raise InvalidError("webhook host must resolve to public addresses only", field)

    def _webhook_secret(self, ref: str) -> str:
        secret = self.settings.webhook_secrets.get(ref)
        if not secret:
            raise InvalidError(
                f"no webhook secret {ref!r} is configured on the server ({SECRET_ENV_PREFIX}{ref})",
                ["channel", "secret_ref"],
            )
        return secret

    def _channel(self, cfg: ChannelConfig, sim: Any, campaign_id: int) -> Channel:
        if cfg.type == "webhook":
            assert cfg.url and cfg.secret_ref  # checked by the schema
            self.check_webhook_url(cfg.url)
            return WebhookChannel(cfg.url, self._webhook_secret(cfg.secret_ref), sim.arms)
        if cfg.type == "file":
            folder = self.settings.data_dir / "exports" / f"campaign-{campaign_id}"
            return FileChannel(folder, sim.arms, fmt=cfg.format)
        return SimulatedChannel(sim)

    def _attach_secret(self, camp: Campaign, r: CampaignRow) -> None:
        """Give a loaded webhook channel its secret (snapshots never hold it) after checking its
        URL again (a host may resolve elsewhere by now)."""
        if isinstance(camp.channel, WebhookChannel):
            try:
                cfg = ChannelConfig.model_validate(json.loads(r.request_json)["channel"])
            except ValueError:  # created before secrets were references: it needs recreating
                raise InvalidError("the webhook channel has no secret_ref", ["channel"]) from None
            assert cfg.url and cfg.secret_ref
            self.check_webhook_url(cfg.url)
            camp.channel.secret = self._webhook_secret(cfg.secret_ref)

    def _channel_factory(self, r: CampaignRow) -> Callable[[Any], Channel]:
        """Builds a stored campaign's channel from the ChannelConfig it was created with; a
        webhook channel gets its secret from its reference later (``_attach_secret``)."""
        try:
            cfg = json.loads(r.request_json).get("channel") or {}
        except (TypeError, ValueError):
            cfg = {}
        kind = cfg.get("type") if isinstance(cfg, dict) else None
        if kind == "webhook":
            # A stand-in secret: the runner attaches the real one (``_attach_secret``) before any
            # delivery and pauses the campaign when it cannot; other loads never deliver.
            return lambda sim: WebhookChannel(str(cfg.get("url") or ""), "unresolved", sim.arms)
        if kind == "file":
            folder = self.settings.data_dir / "exports" / f"campaign-{r.id}"
            fmt: Literal["jsonl", "csv"] = "csv" if cfg.get("format") == "csv" else "jsonl"
            return lambda sim: FileChannel(folder, sim.arms, fmt=fmt)
        return lambda sim: SimulatedChannel(sim)

    def _load_row(self, blob: bytes, r: CampaignRow) -> Campaign:
        return _load(blob, self._channel_factory(r))

    def create_campaign(self, owner_id: int, body: CampaignCreate) -> dict[str, Any]:
        """Create a campaign (``ready``); refused beyond the owner's quota of active campaigns."""
        request = body.model_dump(mode="json")
        with self._heavy_work(), self.engine.begin() as conn:
            # The owner's row first: creates of one owner, on any process, count one at a time.
            conn.execute(update(Owner).where(Owner.id == owner_id).values(name=Owner.name))
            active = conn.execute(
                select(func.count()).where(
                    CampaignRow.owner_id == owner_id, CampaignRow.status.in_(("ready", "running", "paused"))
                )
            ).scalar_one()
            if active >= self.settings.max_active_campaigns:
                raise RateLimitedError(
                    f"quota: at most {self.settings.max_active_campaigns} campaigns ready, running or paused "
                    "per owner; cancel or finish one first",
                    retry_after=60,
                )
            cid = conn.execute(
                insert(CampaignRow)
                .values(
                    owner_id=owner_id,
                    name=body.name,
                    request_json=json.dumps(request),
                    spec_json="{}",
                    status="ready",
                    budget_micros=0,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                .returning(CampaignRow.id)
            ).scalar_one()
            camp = self._build(body, cid)  # an InvalidError rolls the insert back
            conn.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid)
                .values(
                    spec_json=camp.spec.model_dump_json(),
                    budget_micros=camp.ledger.budget_micros,
                )
            )
            conn.execute(
                insert(CampaignState).values(
                    campaign_id=cid, snapshot=_dump(camp), report_json=json.dumps(camp.report().to_dict())
                )
            )
            self._audit(conn, cid, "create", f"created by owner {owner_id}", {"name": body.name})
        return self.get(owner_id, cid)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _money(r: CampaignRow) -> dict[str, float]:
        spent = r.spent_micros + r.decide_spent_micros
        held = r.reserved_micros + r.decide_held_micros
        return {
            "budget": dollars(r.budget_micros),
            "spent": dollars(spent),
            "reserved": dollars(held),
            "available": dollars(r.budget_micros - spent - held),
        }

    def _public(self, r: CampaignRow) -> dict[str, Any]:
        req = json.loads(r.request_json)
        spec = json.loads(r.spec_json)
        spec.pop("suppression", None)
        return {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "stop_reason": r.stop_reason,
            "scenario": req["scenario"],
            "policy": req["policy"],
            "goal": _goal_public(spec.get("goal")),
            "money": self._money(r),
            "iterations": r.iterations_done,
            "goal_progress": r.goal_progress,
            "conversions": r.conversions,
            "created_at": _aware(r.created_at),
            "updated_at": _aware(r.updated_at),
            "spec": spec,
            "channel": req["channel"]["type"],
        }

    def get(self, owner_id: int, cid: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._public(self._orm(conn, owner_id, cid))

    def _orm(self, conn: Connection, owner_id: int, cid: int) -> CampaignRow:
        row = (
            _orm(conn)
            .scalars(select(CampaignRow).where(CampaignRow.id == cid, CampaignRow.owner_id == owner_id))
            .one_or_none()
        )
        if row is None:
            raise NotFoundError(f"no campaign {cid}")
        return row

    def list_campaigns(self, owner_id: int, status: str | None = None) -> list[dict[str, Any]]:
        q = select(CampaignRow).where(CampaignRow.owner_id == owner_id).order_by(CampaignRow.id)
        if status is not None:
            q = q.where(CampaignRow.status == status)
        with self.engine.connect() as conn:
            return [self._public(r) for r in _orm(conn).scalars(q)]

    def report(self, owner_id: int, cid: int) -> dict[str, Any]:
        """The agent's report plus the database ledger (real-time decisions included)."""
        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            n_decide = conn.execute(
                select(func.count()).where(DecisionRow.campaign_id == cid, DecisionRow.source == "decide")
            ).scalar_one()
            rep: dict[str, Any] = json.loads(
                conn.execute(
                    select(CampaignState.report_json).where(CampaignState.campaign_id == cid)
                ).scalar_one()
            )
        rep["campaign_id"] = cid
        rep["money"] = self._money(r)
        rep["realtime"] = {
            "decisions": n_decide,
            "spent": dollars(r.decide_spent_micros),
            "held": dollars(r.decide_held_micros),
        }
        return rep

    def iterations(self, owner_id: int, cid: int, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = conn.execute(
                select(IterationRow.record_json)
                .where(IterationRow.campaign_id == cid)
                .order_by(IterationRow.iteration)
                .offset(offset)
                .limit(limit)
            ).scalars()
            return [json.loads(x) for x in rows]

    def plot(self, owner_id: int, cid: int) -> Path:
        """The report plot as a PNG file (rendered once per campaign version, on one of the
        server's few slots for expensive work)."""
        from agent.plots import plot_report

        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            path = self.settings.data_dir / "plots" / f"campaign-{cid}-v{r.version}.png"
            if path.is_file():
                return path
            blob = _snapshot(conn, cid)
        with self._heavy_work():
            plot_report(_load(blob).report(), path)
        return path

    def forecast(self, owner_id: int, cid: int, runs: int) -> dict[str, Any]:
        """Simulated campaigns before launch, on one of the server's few slots for expensive work."""
        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            if r.status != "ready":
                raise ConflictError("forecast is available before launch only (status 'ready')")
            spec = json.loads(r.spec_json)
            work = runs * int(spec["max_iterations"]) * int(spec["customers_per_iteration"])
            if work > self.settings.forecast_max_decisions:
                most = max(self.settings.forecast_max_decisions * runs // work, 0)
                raise InvalidError(
                    f"{runs} runs of this campaign would decide for {work:,} candidates; a forecast may "
                    f"decide for {self.settings.forecast_max_decisions:,} (at most {most} runs here)",
                    ["query", "runs"],
                )
            blob = _snapshot(conn, cid)
        with self._heavy_work():
            try:
                return asdict(_load(blob).forecast(runs=runs))
            except CampaignError as err:
                raise ConflictError(str(err)) from None

    # -- changing the snapshot under the lease -------------------------------------------------
    def _claim(self, cid: int, holder: str, statuses: tuple[str, ...] | None = None) -> bool:
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
        holder = f"api-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + wait
        while not self._claim(cid, holder):
            if time.monotonic() > deadline:
                raise ConflictError(f"campaign {cid} is busy (an iteration is running); try again")
            time.sleep(0.02)
        try:
            yield holder
        finally:
            self._release_lease(cid, holder)

    def _mutate(self, owner_id: int, cid: int, fn: Callable[[Campaign], T]) -> T:
        """Apply ``fn`` to the campaign under the lease and write it back (all or nothing)."""
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)  # 404 before waiting for a lease
        with self._leased(cid, wait=self.settings.lease_seconds + 5) as holder:
            with self.engine.connect() as conn:
                r = self._orm(conn, owner_id, cid)
                blob = _snapshot(conn, cid)
            camp = self._load_row(blob, r)
            n_audit = len(camp.audit_log)
            try:
                out = fn(camp)
            except CampaignError as err:
                raise ConflictError(str(err)) from None
            with self.engine.begin() as conn:
                self._commit_snapshot(
                    conn, r, camp, holder, ref="owner", extra={"budget_micros": camp.ledger.budget_micros}
                )
                for a in camp.audit_log[n_audit:]:
                    self._audit(conn, cid, a.action, a.reason, a.changes)
                if camp.status in ("completed", "cancelled"):
                    self._release_decide_holds(conn, cid, None)
        return out

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
            .where(
                CampaignRow.id == r.id,
                CampaignRow.version == r.version,
                CampaignRow.lease_owner == holder,
                spent + reserved + CampaignRow.decide_spent_micros + CampaignRow.decide_held_micros <= budget,
            )
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
                updated_at=utcnow(),
                **(extra or {}),
            )
        )
        if res.rowcount != 1:
            self.counters["commit_conflicts_total"] += 1
            raise ConflictError(
                "the campaign changed meanwhile, or the change would commit more than the budget "
                "(real-time decisions hold part of it); nothing was changed"
            )
        conn.execute(
            update(CampaignState)
            .where(CampaignState.campaign_id == r.id)
            .values(snapshot=_dump(camp), report_json=json.dumps(camp.report().to_dict()))
        )
        # reserve - charge - release == the change of what is reserved, so the ledger adds up.
        new = camp.log.reserved[int(r.decisions_done) :]
        reserve = int(to_micros(new, round_up=True).sum()) if new.size else 0
        charge = spent - r.spent_micros
        release = reserve - charge - (reserved - r.reserved_micros)
        if release < 0:  # rounding of the per-decision micro-dollars: the reservation was larger
            reserve, release = reserve - release, 0
        rows = [
            {"campaign_id": r.id, "kind": k, "amount_micros": v, "ref": f"{ref}:{camp.iterations}"}
            for k, v in (("reserve", reserve), ("charge", charge), ("release", release))
            if v
        ]
        if rows:
            conn.execute(insert(LedgerRow), rows)

    def transition(self, owner_id: int, cid: int, action: str, reason: str) -> dict[str, Any]:
        """start, pause, resume or cancel; a wrong transition is a :class:`ConflictError`."""
        ops: dict[str, Callable[[Campaign], None]] = {
            "start": lambda c: c.start(reason),
            "pause": lambda c: c.pause(reason),
            "resume": lambda c: c.resume(reason),
            "cancel": lambda c: c.cancel(reason),
        }
        self._mutate(owner_id, cid, ops[action])
        return self.get(owner_id, cid)

    def modify(self, owner_id: int, cid: int, body: CampaignUpdate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True, exclude={"reason"})
        if not changes:
            raise InvalidError("nothing to change: give at least one field", ["body"])

        def apply(camp: Campaign) -> None:
            if camp.status in ("completed", "cancelled"):
                raise ConflictError(f"cannot modify a campaign that is {camp.status}")
            decide = self._decide_money(cid)
            camp.ledger.set_external(dollars(decide))
            with self.engine.connect() as conn:
                camp.set_external_contacts(self._external_contacts(conn, cid, camp, None))
            try:
                camp.modify(AgentUpdate.model_validate(changes), body.reason)
            except CampaignError as err:
                raise InvalidError(str(err), ["body"]) from None
            finally:
                camp.set_external_contacts(None)  # read afresh each time: not part of the snapshot

        self._mutate(owner_id, cid, apply)
        return self.get(owner_id, cid)

    def _decide_money(self, cid: int) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CampaignRow.decide_spent_micros, CampaignRow.decide_held_micros).where(
                    CampaignRow.id == cid
                )
            ).one()
        return int(row[0] + row[1])

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

    def audit_log(self, owner_id: int, cid: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = _orm(conn).scalars(
                select(AuditRow).where(AuditRow.campaign_id == cid).order_by(AuditRow.id)
            )
            return [
                {
                    "action": a.action,
                    "reason": a.reason,
                    "changes": json.loads(a.changes_json),
                    "at": _aware(a.at),
                }
                for a in rows
            ]

    # -- real-time decisions -------------------------------------------------------------------
    def _cached(
        self, cid: int, version: int, blob_loader: Callable[[], bytes]
    ) -> tuple[Campaign, threading.Lock]:
        with self._cache_lock:
            hit = self._decide_cache.get(cid)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        camp = _load(blob_loader())
        entry = (version, camp, threading.Lock())
        with self._cache_lock:
            self._decide_cache.pop(cid, None)
            self._decide_cache[cid] = entry  # newest last
            while len(self._decide_cache) > DECIDE_CACHE_CAMPAIGNS:  # snapshots are large: keep a few
                self._decide_cache.pop(next(iter(self._decide_cache)))
        return camp, entry[2]

    def decide(self, owner_id: int, cid: int, customer: int) -> DecideOut:
        """One customer's decision now; its worst case is reserved in the database before it is
        returned, or the call is refused (:class:`ConflictError`) when the budget cannot hold it.

        Concurrent calls are served together (:class:`_DecideBatcher`): one policy call and one
        transaction for all of them, each decision still reserved by its own conditional UPDATE.
        """
        self.counters["decide_requests_total"] += 1
        with self._cache_lock:
            if self._batcher is None:
                self._batcher = _DecideBatcher(self)
        return self._batcher.submit(owner_id, cid, customer)

    def _decide_group(self, owner_id: int, cid: int, customers: list[int]) -> list[DecideOut | ServiceError]:
        """Decide for several customers of one campaign; one result (or refusal) per customer.

        The transaction first takes the campaign row (a no-op UPDATE), so the real-time decisions
        of every process are made one group at a time, each seeing all those before it: the
        loop's caps (:meth:`agent.Campaign.decide`) count them through
        :meth:`_external_contacts`. A customer asked for twice in a group is decided in a second
        round that sees the first.
        """
        with self.engine.begin() as conn:
            r = conn.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid, CampaignRow.owner_id == owner_id)
                .values(decisions_decided=CampaignRow.decisions_decided)
                .returning(CampaignRow.status, CampaignRow.version)
            ).first()
            if r is None:
                return [NotFoundError(f"no campaign {cid}")] * len(customers)
            if r.status != "running":
                return [ConflictError(f"the campaign is {r.status}; /decide needs a running campaign")] * len(
                    customers
                )

            def blob() -> bytes:
                with self.engine.connect() as c:
                    return _snapshot(c, cid)

            camp, lock = self._cached(cid, r.version, blob)
            n = camp.sim.n_customers
            out: list[DecideOut | ServiceError] = [
                InvalidError(f"customer ids are 0..{n - 1}", ["customer"]) for _ in customers
            ]
            todo = [k for k, c in enumerate(customers) if c < n]
            while todo:  # rounds of distinct customers (a loop over one request group's items)
                first = {customers[k]: k for k in reversed(todo)}
                round_ = sorted(first.values())
                todo = [k for k in todo if first[customers[k]] != k]
                who = np.array([customers[k] for k in round_], dtype=np.int64)
                with lock:
                    camp.set_external_contacts(self._external_contacts(conn, cid, camp, who))
                    chosen, pscores = camp.decide(who)
                    now = camp.t
                results = self._reserve(conn, cid, camp, now, who, chosen, pscores)
                for k, res in zip(round_, results, strict=True):
                    out[k] = res
        return out

    def _reserve(
        self,
        conn: Connection,
        cid: int,
        camp: Campaign,
        now: int,
        who: NDArray[np.int64],
        chosen: NDArray[np.int64],
        pscores: NDArray[np.float64],
    ) -> list[DecideOut | ServiceError]:
        """Reserve each contact's worst case (a conditional UPDATE that checks the budget) and
        record it; a contact the budget cannot hold is refused."""
        arms = camp.sim.arms
        out: list[DecideOut | ServiceError] = []
        rows: list[dict[str, Any]] = []
        ledger: list[dict[str, Any]] = []
        for customer, arm_, ps in zip(who.tolist(), chosen.tolist(), pscores.tolist(), strict=True):
            if arm_ == 0:
                out.append(
                    DecideOut(
                        decision_id=None, customer=customer, arm=arms.names[0], channel=None, content=None,
                        offer=None, pscore=ps, reserved=0.0,
                    )
                )  # fmt: skip
                continue
            # Held rounded up, paid to the nearest micro-dollar: the one rule of simulators.money.
            send, worst = (
                micros_paid(float(arms.send_cost[arm_])),
                micros_up(float(arms.worst_case_cost[arm_])),
            )
            seq = conn.execute(
                update(CampaignRow)
                .where(
                    CampaignRow.id == cid,
                    CampaignRow.status == "running",
                    CampaignRow.spent_micros
                    + CampaignRow.reserved_micros
                    + CampaignRow.decide_spent_micros
                    + CampaignRow.decide_held_micros
                    + worst
                    <= CampaignRow.budget_micros,
                )
                .values(
                    decide_spent_micros=CampaignRow.decide_spent_micros + send,
                    decide_held_micros=CampaignRow.decide_held_micros + (worst - send),
                    decisions_decided=CampaignRow.decisions_decided + 1,
                )
                .returning(CampaignRow.decisions_decided)
            ).scalar()
            if seq is None:
                self.counters["decide_budget_refusals_total"] += 1
                out.append(
                    ConflictError("not enough budget left for this decision (or the campaign stopped)")
                )
                continue
            did = DECIDE_ID_BASE + int(seq)
            rows.append(
                {
                    "campaign_id": cid, "decision_id": did, "source": "decide", "iteration": now,
                    "customer": customer, "arm": arms.names[arm_], "pscore": ps, "reserved_micros": worst,
                    "held_micros": worst - send, "charged_micros": send,
                    "open": holds_after_send(worst, send),
                }
            )  # fmt: skip
            ledger += [
                {"campaign_id": cid, "kind": "reserve", "amount_micros": worst, "ref": f"decision:{did}"},
                {"campaign_id": cid, "kind": "charge", "amount_micros": send, "ref": f"decision:{did}"},
            ]
            out.append(
                DecideOut(
                    decision_id=did,
                    customer=customer,
                    arm=arms.names[arm_],
                    channel=arms.channel_names[arms.channel[arm_]],
                    content=arms.content_names[arms.content[arm_]],
                    offer=arms.offer_names[arms.offer[arm_]],
                    pscore=ps,
                    reserved=dollars(worst),
                )
            )
        if rows:
            conn.execute(insert(DecisionRow), rows)
            conn.execute(insert(LedgerRow), ledger)
        self.counters["decisions_total"] += len(rows)
        return out

    @staticmethod
    def _external_contacts(
        conn: Connection, cid: int, camp: Campaign, customers: NDArray[np.int64] | None
    ) -> ExternalContacts:
        """The real-time decisions the loop's caps must count: every contact of ``customers``
        (``None``: of everyone), the money they hold by channel, and the unsubscribes reported
        through ``/events`` for those customers (the channel itself knows only its own)."""
        arms = camp.sim.arms
        mine = [DecisionRow.campaign_id == cid, DecisionRow.source == "decide"]
        who = [] if customers is None else [DecisionRow.customer.in_(np.unique(customers).tolist())]
        committed = DecisionRow.charged_micros + DecisionRow.held_micros
        rows = conn.execute(
            select(DecisionRow.customer, DecisionRow.iteration, committed).where(*mine, *who)
        ).all()
        by_channel = np.zeros(len(arms.channel_names))
        for arm, m in conn.execute(
            select(DecisionRow.arm, func.sum(committed)).where(*mine).group_by(DecisionRow.arm)
        ):
            by_channel[arms.channel[arms.index(arm)]] += dollars(int(m))  # a loop over arms, not customers
        out = conn.execute(
            select(DecisionRow.customer, DecisionRow.arm)
            .join(
                EventRow,
                (EventRow.campaign_id == DecisionRow.campaign_id)
                & (EventRow.decision_id == DecisionRow.decision_id),
            )
            .where(
                DecisionRow.campaign_id == cid,
                EventRow.kind == "unsubscribed",
                EventRow.status != "rejected",
                *who,
            )
        ).all()
        contacts = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return ExternalContacts(
            customers=contacts[:, 0],
            times=contacts[:, 1],
            committed=to_dollars(contacts[:, 2]),
            channel_committed=by_channel,
            opted_out=np.array([(c, arms.channel[arms.index(a)]) for c, a in out], dtype=np.int64).reshape(
                -1, 2
            ),
        )

    def _release_decide_holds(self, conn: Connection, cid: int, before_iteration: int | None) -> None:
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
        self._settle_decide_money(conn, cid, 0, sum(int(r - c) for r, c in claimed), "decide:expired")

    @staticmethod
    def _settle_decide_money(conn: Connection, cid: int, charge: int, release: int, ref: str) -> None:
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

    def _claim_hold(self, conn: Connection, cid: int, decision_id: int, cost: int) -> tuple[int, str | None]:
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
            select(DecisionRow.open).where(
                DecisionRow.campaign_id == cid, DecisionRow.decision_id == decision_id
            )
        ).scalar()
        if is_open:
            return 0, f"offer cost ${dollars(cost):,.2f} exceeds what decision {decision_id} holds"
        if cost > 0:
            return 0, f"decision {decision_id} already settled or expired"
        return 0, None

    # -- events --------------------------------------------------------------------------------
    def ingest_events(self, owner_id: int, cid: int, events: Sequence[EventIn]) -> EventsResult:
        """Store a batch of events: duplicates (by event id) change nothing; unknown decisions are
        rejected item by item; a conversion of a real-time decision settles its hold now (each
        hold once, see :meth:`_claim_hold`); events of runner decisions are applied by the runner
        at its next iteration, or at once when the campaign is not running (the answer then says
        which of them the campaign rejected)."""
        accepted: list[str] = []
        duplicates: list[str] = []
        rejected: dict[str, str] = {}
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
            kept: list[EventIn] = []  # the event stored under each id of the batch (the first known one)
            for e in events:  # validation per item of one request, not a loop over customers
                if e.event_id in in_batch:
                    duplicates.append(e.event_id)
                    continue
                known = (
                    e.decision_id in known_decide
                    if e.decision_id >= DECIDE_ID_BASE
                    else e.decision_id < r.decisions_done
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
                        "created_at": utcnow(),
                    }
                )
            # Duplicates are found by the insert itself (the unique constraint), not by a lookup first.
            new = _insert_new(conn, rows)
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
                freed, reason = self._claim_hold(conn, cid, e.decision_id, cost)
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
            self._settle_decide_money(conn, cid, charge, release, "decide:events")
        accepted = [e.event_id for e in fresh if e.event_id not in late]
        rejected.update(late)
        if r.status != "running" and any(e.decision_id < DECIDE_ID_BASE for e in fresh):
            # No runner iteration will come to apply them: apply now and answer with the verdicts.
            for event_id, reason in self._apply_now(cid).items():
                if reason is not None and event_id in accepted:
                    accepted.remove(event_id)
                    rejected[event_id] = reason
        self.counters["events_accepted_total"] += len(accepted)
        self.counters["events_rejected_total"] += len(rejected)
        return EventsResult(accepted=accepted, duplicates=duplicates, rejected=rejected)

    def _apply_now(self, cid: int) -> dict[str, str | None]:
        """Apply the pending events of a campaign that is not running, under its lease; returns
        the verdict per event id (``None``: applied)."""
        with self._leased(cid, wait=self.settings.lease_seconds + 5) as holder:
            with self.engine.connect() as conn:
                r = _orm(conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
                pending = _pending(conn, cid)
                blob = _snapshot(conn, cid)
            camp = self._load_row(blob, r)
            verdicts = _apply_events(camp, pending)
            with self.engine.begin() as conn:
                self._commit_snapshot(conn, r, camp, holder, ref="events")
                _write_verdicts(conn, cid, verdicts)
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
                    "created_at": _aware(e.created_at),
                }
                for e in _orm(conn).scalars(q)
            ]

    # -- the live runner -----------------------------------------------------------------------
    def due_campaigns(self) -> list[int]:
        """Running campaigns no live worker holds, oldest lease first."""
        now = time.time()
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(CampaignRow.id)
                    .where(
                        CampaignRow.status == "running",
                        or_(
                            CampaignRow.lease_owner.is_(None),
                            CampaignRow.lease_expires < now,
                            CampaignRow.lease_owner == self.worker_id,
                        ),
                    )
                    .order_by(CampaignRow.updated_at)
                ).scalars()
            )

    def run_iteration(self, cid: int) -> bool:
        """One iteration (or the stop) of a running campaign, committed atomically.

        Returns:
            ``True`` when an iteration or the stop was committed, ``False`` when another worker
            holds the campaign or the commit lost a race (nothing is changed then).
        """
        me = self.worker_id
        if not self._claim(cid, me, statuses=("running",)):
            return False
        try:
            with self.engine.connect() as conn:
                r = _orm(conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
                pending = _pending(conn, cid)
                blob = _snapshot(conn, cid)
            try:
                camp = self._load_row(blob, r)
            except Exception as err:  # not a valid snapshot (e.g. an old pickle): pause, never loop
                self._pause_on_error(r, me, f"the stored snapshot cannot be read ({type(err).__name__})")
                return False
            if camp.status != "running":  # the row says running; trust the snapshot's own state
                return False
            try:
                self._attach_secret(camp, r)
            except InvalidError as err:
                self._pause_on_error(r, me, f"webhook channel: {err.message}")
                return False
            verdicts = _apply_events(camp, pending)
            camp.ledger.set_external(dollars(r.decide_spent_micros + r.decide_held_micros))
            with self.engine.connect() as conn:
                camp.set_external_contacts(self._external_contacts(conn, cid, camp, None))
            n_log, n_alerts, n_audit = len(camp.log), len(camp.alerts), len(camp.audit_log)
            try:
                rec = camp.tick()
            except Exception as err:  # a failing policy or channel must not loop the worker forever
                self._pause_on_error(r, me, f"{type(err).__name__}: {err}")
                return False
            _generic_channel_errors(camp, n_audit, n_alerts)
            committed = camp.channel_committed()  # real-time contacts included, for the check below
            camp.set_external_contacts(None)  # read afresh each time: not part of the snapshot
            log = camp.log
            new = slice(n_log, len(log))
            with self.engine.begin() as conn:
                self._commit_snapshot(conn, r, camp, me, ref="iteration")
                if len(log) > n_log:
                    names = np.asarray(camp.sim.arms.names, dtype=object)[log.arm[new]]
                    conn.execute(
                        insert(DecisionRow),
                        [
                            {
                                "campaign_id": cid,
                                "decision_id": d,
                                "source": "runner",
                                "iteration": i,
                                "customer": c,
                                "arm": a,
                                "pscore": p,
                                "reserved_micros": m,
                                "held_micros": 0,
                                "open": False,
                            }
                            for d, i, c, a, p, m in zip(
                                log.decision_id[new].tolist(),
                                log.iteration[new].tolist(),
                                log.customer[new].tolist(),
                                names.tolist(),
                                log.pscore[new].tolist(),
                                to_micros(log.reserved[new], round_up=True).tolist(),
                                strict=True,
                            )
                        ],
                    )
                if rec is not None:
                    conn.execute(
                        insert(IterationRow).values(
                            campaign_id=cid,
                            iteration=rec.iteration,
                            record_json=json.dumps(asdict(rec)),
                            created_at=utcnow(),
                        )
                    )
                _write_verdicts(conn, cid, verdicts)
                for a in camp.alerts[n_alerts:]:
                    conn.execute(
                        insert(AlertRow).values(
                            campaign_id=cid,
                            kind=a.kind,
                            iteration=a.iteration,
                            value=a.value,
                            message=a.message,
                            at=utcnow(),
                        )
                    )
                for rec_ in camp.audit_log[n_audit:]:
                    self._audit(conn, cid, rec_.action, rec_.reason, rec_.changes)
                self._check_realtime_meanwhile(conn, r, camp, n_log, committed)
                # Real-time holds expire with the attribution window, like the runner's own.
                self._release_decide_holds(
                    conn, cid, None if camp.status != "running" else first_open_iteration(camp.t, camp.window)
                )
        except ConflictError:
            return False
        finally:
            # Released after every iteration, so owners' changes and other workers interleave.
            self._release_lease(cid, me)
        self.counters["iterations_total"] += 1
        return True

    def _check_realtime_meanwhile(
        self, conn: Connection, r: CampaignRow, camp: Campaign, n_log: int, committed: NDArray[np.float64]
    ) -> None:
        """Refuse an iteration's commit when real-time decisions made while it was computed
        (after ``r`` was read) break its caps together with it: a customer it contacts too, or
        a channel budget the two would exceed (``committed``: by channel, as the iteration saw
        it). Called after the commit's UPDATE took the campaign row, so no more can come.

        Raises:
            ConflictError: the iteration must be computed again (nothing is kept).
        """
        meanwhile = conn.execute(
            select(
                DecisionRow.customer, DecisionRow.arm, DecisionRow.charged_micros + DecisionRow.held_micros
            ).where(
                DecisionRow.campaign_id == r.id,
                DecisionRow.source == "decide",
                DecisionRow.decision_id > DECIDE_ID_BASE + r.decisions_decided,
            )
        ).all()
        if not meanwhile:
            return
        arms = camp.sim.arms
        extra = np.zeros(len(arms.channel_names))
        for _, arm, m in meanwhile:  # the few decisions of the last moments
            extra[arms.channel[arms.index(arm)]] += dollars(int(m))
        contacted = set(camp.log.customer[n_log:].tolist())
        over = committed + extra > camp.channel_cap + 1e-9
        if over.any() or any(c in contacted for c, _, _ in meanwhile):
            self.counters["commit_conflicts_total"] += 1
            raise ConflictError("real-time decisions meanwhile touch this iteration's caps; computed again")

    def _pause_on_error(self, r: CampaignRow, holder: str, message: str) -> None:
        """Pause a campaign whose iteration raised (nothing of the failed iteration is kept: the
        snapshot stays at the last committed version); the error goes to the audit log."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(CampaignRow)
                .where(
                    CampaignRow.id == r.id,
                    CampaignRow.version == r.version,
                    CampaignRow.lease_owner == holder,
                )
                .values(status="paused", version=r.version + 1, updated_at=utcnow())
            )
            if res.rowcount == 1:
                try:
                    camp = self._load_row(_snapshot(conn, r.id), r)
                except Exception:  # an unreadable snapshot stays as it is; the row says paused
                    camp = None
                if camp is not None:
                    camp.status = "paused"
                    conn.execute(
                        update(CampaignState)
                        .where(CampaignState.campaign_id == r.id)
                        .values(snapshot=_dump(camp))
                    )
                self._audit(conn, r.id, "runner_error", message[:2000], {})
                conn.execute(
                    insert(AlertRow).values(
                        campaign_id=r.id, kind="runner_error", iteration=r.iterations_done, value=0.0,
                        message=f"the iteration failed; the campaign is paused: {message[:500]}",
                        at=utcnow(),
                    )
                )  # fmt: skip

    def alerts(self, owner_id: int, cid: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = _orm(conn).scalars(
                select(AlertRow).where(AlertRow.campaign_id == cid).order_by(AlertRow.id)
            )
            return [
                {
                    "kind": a.kind,
                    "iteration": a.iteration,
                    "value": a.value,
                    "message": a.message,
                    "at": _aware(a.at),
                }
                for a in rows
            ]

    def status_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                s: int(n)
                for s, n in conn.execute(
                    select(CampaignRow.status, func.count()).group_by(CampaignRow.status)
                )
            }


class _DecideBatcher:
    """Serve concurrent ``/decide`` calls together: whatever queued while the previous group was
    being decided goes into the next one (no waiting when calls arrive one at a time)."""

    def __init__(self, service: Service, max_batch: int = 256) -> None:
        self.service, self.max_batch = service, max_batch
        self.queue: queue.Queue[tuple[int, int, int, Future[DecideOut]]] = queue.Queue()
        threading.Thread(target=self._loop, name="decide-batcher", daemon=True).start()

    def submit(self, owner_id: int, cid: int, customer: int) -> DecideOut:
        fut: Future[DecideOut] = Future()
        self.queue.put((owner_id, cid, customer, fut))
        return fut.result(timeout=60)

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            groups: dict[tuple[int, int], list[tuple[int, Future[DecideOut]]]] = {}
            for owner_id, cid, customer, fut in batch:
                groups.setdefault((owner_id, cid), []).append((customer, fut))
            for (owner_id, cid), items in groups.items():
                try:
                    results = self.service._decide_group(owner_id, cid, [c for c, _ in items])
                except Exception as err:  # a database failure answers every call of the group
                    for _, fut in items:
                        fut.set_exception(err)
                    continue
                for (_, fut), res in zip(items, results, strict=True):
                    if isinstance(res, Exception):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)


class Runner:
    """The background worker: runs iterations of running campaigns until stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def run_pending(self) -> int:
        """One pass over the due campaigns (one iteration each); returns how many advanced."""
        done = 0
        for cid in self.service.due_campaigns():
            if self._stop.is_set():
                break
            done += self.service.run_iteration(cid)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_pending() == 0:
                    self._stop.wait(self.service.settings.poll_seconds)
            except Exception as err:
                self.errors.append(f"{type(err).__name__}: {err}")
                self._stop.wait(1.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="campaign-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
