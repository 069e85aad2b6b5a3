"""The campaign agent: the loop that runs unchanged against the simulator and real channels.

Public API:
    * :class:`CampaignSpec`, :class:`Goal`, :class:`FrequencyCap`: what the owner asks for
      (goal, budget, caps, holdout, allowed arms, attribution window), validated once.
    * :class:`Campaign`: ``run()``/``step()``/``hold()``, ``pause``/``resume``/``cancel``/``modify``
      (audited), ``dry_run()``, ``forecast()``, ``ingest_events()`` (idempotent, per-item
      rejections), ``projected()`` (observed plus still-expected conversions), ``report()``,
      ``allowed_for(customers)`` and ``fits_channels`` (every cap, for the real-time path too).
      Its jobs live in modules: lifecycle :mod:`agent.loop`, planning and caps :mod:`agent.caps`,
      events :mod:`agent.events`, holdout :mod:`agent.holdout`, projection and forecast
      :mod:`agent.forecast`, report :mod:`agent.reporting`, over :mod:`agent.state`.
    * :class:`BudgetLedger` (from :mod:`simulators.money`, where every money rule lives):
      reserve before sending, settle or release exactly once.
    * :mod:`agent.channels`: :class:`SimulatedChannel` (default), :class:`WebhookChannel` (signed,
      retried, idempotent), :class:`FileChannel` (JSONL/CSV), :class:`MirroredChannel`.
    * :class:`CampaignReport`, :class:`IterationRecord`, :class:`DecisionLog`; :mod:`agent.export`
      writes decisions and events to Parquet; :mod:`agent.plots` draws the report.

Example:
    >>> from agent import BudgetLedger
    >>> BudgetLedger(10.0).available
    10.0
"""

from agent.channels import (
    Channel,
    ChannelError,
    FileChannel,
    MirroredChannel,
    SendBatch,
    SimulatedChannel,
    WebhookChannel,
)
from agent.control import Alert, AuditRecord, CampaignUpdate, EventIn, IngestResult
from agent.loop import Campaign, CampaignError
from agent.report import CampaignReport, DecisionLog, IterationRecord
from agent.spec import CampaignSpec, FrequencyCap, Goal
from simulators.money import BudgetLedger, InsufficientBudgetError, LedgerError

__all__ = [
    "Alert",
    "AuditRecord",
    "BudgetLedger",
    "Campaign",
    "CampaignError",
    "CampaignReport",
    "CampaignSpec",
    "CampaignUpdate",
    "Channel",
    "ChannelError",
    "DecisionLog",
    "EventIn",
    "FileChannel",
    "FrequencyCap",
    "Goal",
    "IngestResult",
    "InsufficientBudgetError",
    "IterationRecord",
    "LedgerError",
    "MirroredChannel",
    "SendBatch",
    "SimulatedChannel",
    "WebhookChannel",
]
