"""The API's request and response schemas (pydantic v2), apart from the database models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.catalogue import Catalogue as AgentCatalogue
from agent.control import EventIn as AgentEventIn
from agent.schedule import Schedule as AgentSchedule
from agent.spec import FrequencyCap as AgentFrequencyCap
from agent.spec import Goal as AgentGoal

INT64_MAX = 2**63 - 1
"""Largest integer a BIGINT column (SQLite and PostgreSQL) stores."""
INT32_MAX = 2**31 - 1
"""Largest integer an INTEGER column of PostgreSQL stores (campaign ids)."""
MAX_CUSTOMERS = 200_000
"""Largest audience a request may simulate (memory and time per campaign)."""
MAX_FORECAST_RUNS = 10
"""Most simulated campaigns one forecast request may run."""

Money = Annotated[float, Field(gt=0, le=1e9)]
ArmNames = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=1000)]
ChannelBudgets = Annotated[dict[Annotated[str, Field(max_length=100)], Money], Field(max_length=50)]
CustomerId = Annotated[int, Field(ge=0, le=INT64_MAX)]
Fraction = Annotated[float, Field(gt=0, le=1)]
POLICY_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
"""A saved policy's name: a plain folder name inside the server's policies folder."""
_PATH_LIKE = ("path", "file", "dir", "url", "uri")


def _clean_text(value: Any) -> Any:
    """Refuse strings a database cannot store faithfully (NUL bytes, lone surrogates), anywhere
    in a value (list items, dict keys and values)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _clean_text(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _clean_text(k)
            _clean_text(v)
    return value


class ApiModel(BaseModel):
    """Base of every request body: unknown fields, non-finite numbers (NaN, Infinity, 1e309) and
    text a database cannot store are refused with a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _clean_text(value)


class Goal(ApiModel, AgentGoal):
    """The campaign's goal (see :class:`agent.spec.Goal`), with finite bounds."""

    target: Annotated[float, Field(gt=0, le=1e12)]


class FrequencyCap(ApiModel, AgentFrequencyCap):
    """The frequency cap (see :class:`agent.spec.FrequencyCap`), with bounds."""

    max_contacts: Annotated[int, Field(ge=1, le=10_000)]


class EventIn(ApiModel, AgentEventIn):
    """A response event (see :class:`agent.control.EventIn`), with bounds: it names the decision
    (``decision_id``, as in the channel's batch) or, in a campaign on an audience, the owner's
    ``customer_id`` (the event then answers that customer's latest decision)."""

    decision_id: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    revenue: Annotated[float, Field(ge=0, le=1e9)] = 0.0
    offer_cost: Annotated[float, Field(ge=0, le=1e9)] = 0.0


def check_policy_name(name: str) -> str:
    """A policy name a request may give: a built-in (hyperparameters that name files refused),
    ``saved:NAME`` with a plain folder name, or ``models:/...`` of the registry.

    Raises:
        ValueError: anything else (a path, ``..``, ``model_path=``...).
    """
    if name.startswith("saved:"):
        if not re.fullmatch(POLICY_NAME, name.removeprefix("saved:")):
            raise ValueError("saved:NAME takes a plain name (letters, digits, _ . -), not a path")
    elif not name.startswith("models:/"):
        _, _, params = name.partition(":")
        if not name.startswith("fixed:"):
            keys = [item.partition("=")[0].strip().lower() for item in params.split(",")]
            if any(word in key for key in keys for word in _PATH_LIKE):
                raise ValueError("hyperparameters that name files or URLs are not accepted over the API")
    return name


class ChannelConfig(ApiModel):
    """Where decisions go: the simulator (default), a signed webhook, or batch files on the server."""

    type: Literal["simulated", "webhook", "file"] = "simulated"
    url: Annotated[str, Field(max_length=2000)] | None = None
    """``webhook``: the sender's endpoint; its scheme and host must be allowed by the server's
    configuration (by default https to a public address)."""
    secret_ref: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")] | None = None
    """``webhook``: the name of the HMAC-SHA256 signing secret in the server's configuration
    (``CAMPAIGN_OPT_WEBHOOK_SECRET_<REF>``); the secret itself never goes through the API."""
    format: Literal["jsonl", "csv"] = "jsonl"
    """``file``: written under the server's data folder, ``exports/campaign-<id>/``."""

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> ChannelConfig:
        if self.type == "webhook":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("a webhook channel needs url starting with http:// or https://")
            if not self.secret_ref:
                raise ValueError("a webhook channel needs secret_ref, the name of a configured secret")
        return self


class Catalog(ApiModel, AgentCatalogue):
    """The owner's channels, contents and offers (see :class:`agent.catalogue.Catalogue`)."""


class Schedule(ApiModel, AgentSchedule):
    """When waves run and how long the attribution window lasts (see :class:`agent.schedule.Schedule`)."""


class AudienceTarget(ApiModel):
    """The owner's audience a campaign targets, optionally narrowed by a filter."""

    id: Annotated[int, Field(ge=1, le=INT32_MAX)]
    filter: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    """A saved filter's name or an expression (``recency <= 6 and channel == "Web"``)."""
    segment_by: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """A column whose values break the report down by segment."""


class AlertWebhook(ApiModel):
    """Where the campaign's alerts are pushed, signed like the webhook channel's batches."""

    url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")]
    secret_ref: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]
    """The signing secret's name in the server's configuration (``CAMPAIGN_OPT_WEBHOOK_SECRET_<REF>``)."""


class CampaignCreate(ApiModel):
    """A new campaign: goal and budget, the audience (a scenario, or the owner's audience with a
    catalogue), the policy, caps, channel and schedule.

    Fields left out take the scenario's defaults (``campaign-opt scenarios`` lists them); a
    campaign on an audience takes the retail scenario's goal, budget and limits unless given.
    """

    name: Annotated[str, Field(min_length=1, max_length=200)]
    scenario: Annotated[str, Field(min_length=1, max_length=100)] = "retail"
    """A built-in scenario name (the audience and its simulated responses); with ``audience``,
    only the defaults of goal, budget and limits come from it."""
    audience: AudienceTarget | None = None
    """The owner's own customers (``POST /audiences``) instead of a simulated scenario: needs a
    catalogue (``catalog`` or ``catalog_id``) and a webhook or file channel."""
    catalog: Catalog | None = None
    catalog_id: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    """A catalogue saved with ``POST /catalogs``."""
    schedule: Schedule | None = None
    """Waves in wall time (start, every N hours or cron, end, attribution window in hours);
    ``None``: iterations run back to back."""
    alert_webhook: AlertWebhook | None = None
    policy: Annotated[str, Field(min_length=1, max_length=300)] = "funnel_ts"
    """A built-in policy (``GET /policies``; hyperparameters that name files are refused),
    ``saved:NAME`` (trained, in the server's policies folder), or ``models:/NAME@ALIAS`` /
    ``models:/NAME/VERSION`` from the MLflow registry."""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    n_customers: Annotated[int, Field(ge=100, le=MAX_CUSTOMERS)] | None = None
    goal: Goal | None = None
    budget: Money | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    customers_per_iteration: Annotated[int, Field(ge=1, le=MAX_CUSTOMERS)] | None = None
    max_cost_per_customer: Money | None = None
    allowed_arms: ArmNames | None = None
    frequency_cap: FrequencyCap | None = None
    channel_budgets: ChannelBudgets | None = None
    suppression: Annotated[list[CustomerId], Field(max_length=MAX_CUSTOMERS)] = []
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    max_offer_value: Annotated[float, Field(ge=0, le=1e9)] | None = None
    attribution_window: Annotated[int, Field(ge=0, le=1000)] | None = None
    stop_on_projected: bool = True
    alert_fractions: Annotated[list[Fraction], Field(max_length=20)] = [0.5, 0.8, 1.0]
    """Spent shares of the budget at which an alert is raised."""
    channel: ChannelConfig = ChannelConfig()

    _policy = field_validator("policy")(check_policy_name)

    @model_validator(mode="after")
    def _audience_needs_catalog_and_real_channel(self) -> CampaignCreate:
        if self.audience is None:
            if self.catalog is not None or self.catalog_id is not None:
                raise ValueError("a catalogue is for a campaign on an owner's audience: give audience too")
            return self
        if (self.catalog is None) == (self.catalog_id is None):
            raise ValueError("a campaign on an audience needs exactly one of catalog and catalog_id")
        if self.channel.type == "simulated":
            raise ValueError(
                "a campaign on an audience sends through a webhook or file channel, not simulated"
            )
        if self.n_customers is not None:
            raise ValueError("n_customers is for simulated scenarios; an audience has its own customers")
        return self


class CampaignUpdate(ApiModel):
    """A change between iterations; every field optional. ``reason`` goes to the audit log."""

    reason: Annotated[str, Field(min_length=1, max_length=1000)] = "changed through the API"
    budget: Money | None = None
    goal: Goal | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_cost_per_customer: Money | None = None
    frequency_cap: FrequencyCap | None = None
    channel_budgets: ChannelBudgets | None = None
    allowed_arms: ArmNames | None = None


class Transition(ApiModel):
    """Body of start/pause/resume/cancel (optional)."""

    reason: Annotated[str, Field(min_length=1, max_length=1000)] = "requested through the API"


class MoneyPublic(BaseModel):
    """Dollars of a campaign (the database ledger)."""

    budget: float
    spent: float
    """Runner spend plus real-time (/decide) spend."""
    reserved: float
    available: float


class GoalPublic(BaseModel):
    """A campaign's goal as stored; ``target`` is ``None`` if what is stored is not a finite
    number (possible only for campaigns created before the API refused them)."""

    metric: str
    target: float | None


class CampaignPublic(BaseModel):
    """A campaign as the API shows it."""

    id: int
    name: str
    status: str
    stop_reason: str | None
    scenario: str
    policy: str
    goal: GoalPublic
    money: MoneyPublic
    iterations: int
    goal_progress: float
    conversions: int
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]
    channel: str
    audience_id: int | None = None
    next_wave_at: datetime | None = None
    """With a schedule: when the next wave (or drain step) is due."""


class CatalogCreate(ApiModel):
    """A catalogue saved by name, for campaigns to reference with ``catalog_id``."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    catalog: Catalog


class CatalogPublic(BaseModel):
    """A saved catalogue with the arms it makes."""

    id: int
    name: str
    catalog: dict[str, Any]
    arms: list[str]
    created_at: datetime


class EventsIn(ApiModel):
    """A batch of response events (at most 10,000)."""

    events: Annotated[list[EventIn], Field(min_length=1, max_length=10_000)]


class EventsResult(BaseModel):
    """Per event id: accepted (stored; events of runner decisions are applied at the next
    iteration), duplicate (seen before, nothing changed), or rejected with the reason."""

    accepted: list[str]
    duplicates: list[str]
    rejected: dict[str, str]


class DecideIn(ApiModel):
    """The customer to decide for (an id of the campaign's audience)."""

    customer: CustomerId


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


class ErrorOut(BaseModel):
    """An error: 401 (no valid key), 404 (not this owner's), 409 (state), 429 (rate limit or
    quota; see ``Retry-After``), 503 (busy; see ``Retry-After``)."""

    detail: str


class FieldError(BaseModel):
    """One invalid field: where (``loc``, e.g. ``["body", "goal", "target"]``) and why."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """A 422: every invalid field of the request."""

    detail: list[FieldError]
