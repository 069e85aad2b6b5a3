"""Manual intervention and alerts: typed records and the modifiable part of a campaign spec.

A campaign owner may pause, resume, cancel or modify a campaign between iterations. Every such
action is an :class:`AuditRecord`; budget thresholds and the goal raise :class:`Alert` records,
delivered to callbacks registered with :meth:`agent.Campaign.on_alert`.

Example:
    >>> CampaignUpdate(budget=500.0).changes()
    {'budget': 500.0}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.spec import FrequencyCap, Goal

Status = Literal["ready", "running", "paused", "completed", "cancelled"]
"""``ready`` before the first iteration; ``completed`` once a stop rule fired and the campaign drained."""


class CampaignUpdate(BaseModel):
    """The fields an owner may change mid-flight; every field is optional (``None``: unchanged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: Annotated[float, Field(gt=0)] | None = None
    goal: Goal | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_cost_per_customer: Annotated[float, Field(gt=0)] | None = None
    frequency_cap: FrequencyCap | None = None
    channel_budgets: dict[str, Annotated[float, Field(gt=0)]] | None = None
    allowed_arms: list[str] | None = None

    def changes(self) -> dict[str, Any]:
        """The fields that were given, as plain data."""
        return self.model_dump(exclude_none=True)


def _now() -> str:
    """UTC time as ISO 8601 (JSON-ready)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditRecord:
    """One owner action: what, when, why, and what it changed."""

    action: Literal["start", "pause", "resume", "cancel", "modify", "channel_failed"]
    iteration: int
    """Iterations completed when the action was taken."""
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=_now)


@dataclass(frozen=True)
class Alert:
    """A budget fraction crossed (``kind="budget"``, ``value`` the fraction), the goal reached, or
    a batch the channel could not deliver (``kind="channel_failed"``: the campaign is paused)."""

    kind: Literal["budget", "goal_reached", "channel_failed"]
    iteration: int
    value: float
    message: str
    time: str = field(default_factory=_now)


AlertCallback = Callable[[Alert], None]


EventKindName = Literal["delivered", "opened", "clicked", "converted", "unsubscribed"]


class EventIn(BaseModel):
    """A response event from a real channel, for :meth:`agent.Campaign.ingest_events`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    """Unique per event: a repeated id is a duplicate and changes nothing."""
    decision_id: Annotated[int, Field(ge=0)] | None = None
    """The decision the event answers (as in the channel's batch)."""
    customer_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Instead of ``decision_id`` (an audience campaign): the owner's customer id; the event
    answers that customer's latest decision in the campaign."""
    kind: EventKindName
    revenue: Annotated[float, Field(ge=0)] = 0.0
    offer_cost: Annotated[float, Field(ge=0)] = 0.0
    """Discount paid on redemption (conversions only)."""

    @model_validator(mode="after")
    def _one_reference(self) -> EventIn:
        if (self.decision_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of decision_id and customer_id")
        return self


@dataclass(frozen=True)
class IngestResult:
    """Per event id: accepted, duplicate (seen before) or rejected (with the reason)."""

    accepted: list[str]
    duplicates: list[str]
    rejected: dict[str, str]
