"""The API's request and response schemas (pydantic v2), apart from the database models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.control import EventIn
from agent.spec import FrequencyCap, Goal

Money = Annotated[float, Field(gt=0, le=1e9)]


class ChannelConfig(BaseModel):
    """Where decisions go: the simulator (default), a signed webhook, or batch files on the server."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["simulated", "webhook", "file"] = "simulated"
    url: str | None = None
    """``webhook``: the sender's endpoint (http:// or https://)."""
    secret: Annotated[str, Field(min_length=8, max_length=200)] | None = None
    """``webhook``: the HMAC-SHA256 key (never returned by the API)."""
    format: Literal["jsonl", "csv"] = "jsonl"
    """``file``: written under the server's data folder, ``exports/campaign-<id>/``."""

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> ChannelConfig:
        if self.type == "webhook":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("a webhook channel needs url starting with http:// or https://")
            if not self.secret:
                raise ValueError("a webhook channel needs a secret (8 to 200 characters)")
        return self


class CampaignCreate(BaseModel):
    """A new campaign: goal and budget, the audience (a scenario), the policy, caps and channel.

    Fields left out take the scenario's defaults (``campaign-opt scenarios`` lists them).
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    scenario: Annotated[str, Field(min_length=1, max_length=100)] = "retail"
    """A built-in scenario name (the audience and its simulated responses)."""
    policy: Annotated[str, Field(min_length=1, max_length=300)] = "budgeted_ts"
    """A built-in policy (``GET /policies``), ``saved:NAME`` (trained, in the data folder), or
    ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` from the MLflow registry."""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    n_customers: Annotated[int, Field(ge=100, le=2_000_000)] | None = None
    goal: Goal | None = None
    budget: Money | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    customers_per_iteration: Annotated[int, Field(ge=1, le=2_000_000)] | None = None
    max_cost_per_customer: Money | None = None
    allowed_arms: list[str] | None = None
    frequency_cap: FrequencyCap | None = None
    channel_budgets: dict[str, Money] | None = None
    suppression: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=2_000_000)] = []
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    max_offer_value: Annotated[float, Field(ge=0)] | None = None
    attribution_window: Annotated[int, Field(ge=0, le=1000)] | None = None
    stop_on_projected: bool = True
    alert_fractions: list[Annotated[float, Field(gt=0, le=1)]] | None = None
    channel: ChannelConfig = ChannelConfig()


class CampaignUpdate(BaseModel):
    """A change between iterations; every field optional. ``reason`` goes to the audit log."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=1000)] = "changed through the API"
    budget: Money | None = None
    goal: Goal | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_cost_per_customer: Money | None = None
    frequency_cap: FrequencyCap | None = None
    channel_budgets: dict[str, Money] | None = None
    allowed_arms: list[str] | None = None


class Transition(BaseModel):
    """Body of start/pause/resume/cancel (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=1000)] = "requested through the API"


class MoneyPublic(BaseModel):
    """Dollars of a campaign (the database ledger)."""

    budget: float
    spent: float
    """Runner spend plus real-time (/decide) spend."""
    reserved: float
    available: float


class CampaignPublic(BaseModel):
    """A campaign as the API shows it."""

    id: int
    name: str
    status: str
    stop_reason: str | None
    scenario: str
    policy: str
    goal: Goal
    money: MoneyPublic
    iterations: int
    goal_progress: float
    conversions: int
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]
    channel: str


class EventsIn(BaseModel):
    """A batch of response events (at most 10,000)."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=10_000)]


class EventsResult(BaseModel):
    """Per event id: accepted (stored; events of runner decisions are applied at the next
    iteration), duplicate (seen before, nothing changed), or rejected with the reason."""

    accepted: list[str]
    duplicates: list[str]
    rejected: dict[str, str]


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: Annotated[int, Field(ge=0)]


class DecideOut(BaseModel):
    """A real-time decision; ``decision_id`` is ``None`` for no contact (nothing reserved)."""

    decision_id: int | None
    customer: int
    arm: str
    channel: str | None
    content: str | None
    offer: str | None
    pscore: float
    reserved: float


class KeyOut(BaseModel):
    owner: str
    key: str
