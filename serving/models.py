"""SQLAlchemy 2 database models (the API's pydantic schemas live apart, in ``serving.schemas``).

Money is stored in integer micro-dollars, so the conditional reservation UPDATEs compare exact
integers. The ``campaigns`` row is the single source of truth for spend: the live runner's
committed spend and open reservations (``spent_micros``, ``reserved_micros``) and the money of
real-time ``/decide`` decisions (``decide_spent_micros``, ``decide_held_micros``) never sum to
more than ``budget_micros``; every UPDATE that moves money checks it in its WHERE clause.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Owner(Base):
    """A campaign owner."""

    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key, stored only as the SHA-256 hex digest of the token."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set by ``campaign-opt keys revoke``: the key no longer authenticates, on any server."""


class CampaignRow(Base):
    """A campaign: its request, lifecycle, the money ledger totals and the agent's snapshot."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    request_json: Mapped[str] = mapped_column(Text)
    """The validated ``CampaignCreate`` (secrets left out)."""
    spec_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="ready")
    stop_reason: Mapped[str | None] = mapped_column(String(100), nullable=True)
    budget_micros: Mapped[int] = mapped_column(BigInteger)
    spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    decide_spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    decide_held_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    iterations_done: Mapped[int] = mapped_column(Integer, default=0)
    decisions_done: Mapped[int] = mapped_column(BigInteger, default=0)
    """Runner decisions committed (the next one's id)."""
    decisions_decided: Mapped[int] = mapped_column(BigInteger, default=0)
    """Real-time (/decide) decisions made: the next one's id is ``DECIDE_ID_BASE`` plus it."""
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every snapshot write: a stale writer's conditional UPDATE matches no row."""
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires: Mapped[float] = mapped_column(Float, default=0.0)
    goal_progress: Mapped[float] = mapped_column(Float, default=0.0)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    next_due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """With a schedule: when the runner may run the next iteration (epoch seconds on the
    server's clock); ``None``: as soon as it can."""
    audience_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The owner's audience the campaign targets (``None``: a simulated scenario)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignState(Base):
    """The agent's snapshot and last report of a campaign, written with each version of its row.

    Apart from ``campaigns`` so that the small money row stays small: SQLite rewrites a whole
    record on UPDATE, and ``/decide`` updates the money row on every call.
    """

    __tablename__ = "campaign_state"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    snapshot: Mapped[bytes] = mapped_column(LargeBinary)
    report_json: Mapped[str] = mapped_column(Text)


class IterationRow(Base):
    """One committed iteration of the live runner."""

    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("campaign_id", "iteration"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    record_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionRow(Base):
    """One decision: of the runner (``source='runner'``, id = the agent's decision id) or of
    ``/decide`` (``source='decide'``, id from :data:`serving.settlement.DECIDE_ID_BASE` up)."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "decision_id"),
        Index("ix_decisions_customer_ref", "campaign_id", "customer_ref"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    decision_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(10))
    iteration: Mapped[int] = mapped_column(Integer)
    customer: Mapped[int] = mapped_column(BigInteger)
    arm: Mapped[str] = mapped_column(String(200))
    pscore: Mapped[float] = mapped_column(Float)
    customer_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The owner's customer id (an audience campaign): events may name it instead of the decision."""
    reserved_micros: Mapped[int] = mapped_column(BigInteger)
    """Worst case held when the decision was made (send cost plus the offer's cap)."""
    held_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    """``/decide`` only: what is still held (0 once settled or released)."""
    charged_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """``/decide`` only: what was charged (the send, plus the offer once it converts)."""
    open: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerRow(Base):
    """A money movement: ``reserve``, ``charge`` or ``release`` (micro-dollars), per runner
    iteration (``ref='iteration:N'``) or per ``/decide`` decision (``ref='decision:ID'``)."""

    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRow(Base):
    """A response event posted by the owner's sender; ``status`` pending, applied or rejected."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("campaign_id", "event_id"),
        Index("ix_events_pending", "campaign_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    event_id: Mapped[str] = mapped_column(String(200))
    decision_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
    offer_cost: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """When the event arrived, on the server's clock (epoch seconds): a scheduled campaign judges
    a conversion against its send's time plus the attribution window with it."""
    customer_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """An event given by the owner's customer id whose decision the campaign had not committed
    yet when it arrived (``decision_id`` -1): the campaign finds the decision when it applies it."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditRow(Base):
    """An owner action or a system event on a campaign, with its reason."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    action: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    changes_json: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertRow(Base):
    """An alert raised by the campaign (budget fraction, goal reached, channel failure)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    iteration: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the campaign's alert webhook acknowledged it (``None``: not delivered, or none set)."""
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DeliveredBatch(Base):
    """A batch of the runner's decisions its real channel took (the outbox's receipt): a batch
    still listed as undelivered in a snapshot but recorded here is not sent again."""

    __tablename__ = "delivered_batches"
    __table_args__ = (UniqueConstraint("campaign_id", "batch_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    batch_key: Mapped[str] = mapped_column(String(100))
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogRow(Base):
    """An owner's arm catalogue (:class:`agent.catalogue.Catalogue`), saved by name."""

    __tablename__ = "catalogs"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    body_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AudienceRow(Base):
    """An owner's audience: its own customers, imported (see :mod:`serving.audiences`)."""

    __tablename__ = "audiences"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    schema_json: Mapped[str] = mapped_column(Text)
    """The audience's schema: id column, feature columns and types, consent and reachability."""
    report_json: Mapped[str] = mapped_column(Text, default="{}")
    """The per-column report of the last import (types, missing values, ranges)."""
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    """The import order the next new member gets."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AudienceMember(Base):
    """One customer of an audience: the owner's id and the row's values as compact JSON."""

    __tablename__ = "audience_members"
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    """Import order (the loader's stable order)."""
    values_json: Mapped[str] = mapped_column(Text)


class AudienceOptOut(Base):
    """A customer who opted out of a channel of an audience (kept across re-imports)."""

    __tablename__ = "audience_opt_outs"
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AudienceFilter(Base):
    """A saved filter (a segment) of an audience: a name and an expression over its columns."""

    __tablename__ = "audience_filters"
    __table_args__ = (UniqueConstraint("audience_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    expression: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
