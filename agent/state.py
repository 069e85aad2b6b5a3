"""What a campaign holds: the state that the campaign's parts (:mod:`agent.loop` and the mixins
of :mod:`agent.holdout`, :mod:`agent.events`, :mod:`agent.forecast`, :mod:`agent.caps` and
:mod:`agent.reporting`) read and write. Everything is set in :meth:`agent.Campaign.__init__`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.channels import Channel, SendBatch
from agent.control import Alert, AlertCallback, AuditRecord, Status
from agent.feedback import DelayTriangle
from agent.report import DecisionLog, IterationRecord
from agent.spec import CampaignSpec
from policies.base import Policy
from simulators.money import CampaignLedger
from simulators.types import CustomerSimulator, EventBatch, FloatArray


class CampaignError(ValueError):
    """A campaign that cannot run as specified (message says what to change)."""


class CampaignState:
    """The attributes of one campaign (see :class:`agent.Campaign` for what they mean)."""

    spec: CampaignSpec
    channel: Channel
    sim: CustomerSimulator
    policy: Policy
    seed: int | None
    sim_seed: int
    """The seed the simulator was reset with (drawn from ``seed``)."""
    scenario_name: str
    campaign_id: str
    rng: np.random.Generator
    window: int
    """The attribution window in iterations."""
    allowed: NDArray[np.bool_]
    """``(n_arms,)`` arms the spec allows (no contact always)."""
    channel_cap: FloatArray
    """``(n_channels,)`` dollars each channel may commit (``inf``: no cap)."""
    suppressed: NDArray[np.bool_]
    holdout: NDArray[np.bool_]
    """``(n_customers,)`` the holdout group (never contacted)."""
    customer_conversions: NDArray[np.int64]
    """``(n_customers,)`` every conversion (attributed or organic), for the holdout comparison."""
    customer_revenue: FloatArray
    customer_attributed: NDArray[np.int64]
    """``(n_customers,)`` attributed conversions (settled by a decision inside its window)."""
    customer_attributed_revenue: FloatArray
    ledger: CampaignLedger
    log: DecisionLog
    _events: list[EventBatch]
    _seen_event_ids: set[str]
    history: list[IterationRecord]
    customer_cost: FloatArray
    """``(n_customers,)`` dollars spent plus reserved per customer."""
    customer_contacts: NDArray[np.int64]
    last_contact: NDArray[np.int64]
    _n_channels: int
    spend_by_channel: FloatArray
    offer_cost_by_offer: FloatArray
    conversions_by_arm: NDArray[np.int64]
    """``(n_arms,)`` attributed conversions."""
    revenue_by_arm: FloatArray
    funnel: dict[str, int]
    conversions: int
    revenue: float
    cost_to_goal: float | None
    stop_reason: str | None
    status: Status
    audit_log: list[AuditRecord]
    alerts: list[Alert]
    _alert_callbacks: list[AlertCallback]
    _alerted: set[float | str]
    iterations: int
    """Iterations run (sent or held)."""
    t: int
    """The clock: iterations elapsed, holds and the drain included."""
    triangle: DelayTriangle
    _carry: list[EventBatch]
    """Events seen in holds and redeliveries, for the policy's next update."""
    _undelivered: list[SendBatch]
    times: list[float]
    """With a schedule: when each iteration ran (epoch seconds), by iteration."""
    next_due: float | None
    """With a schedule: when the next tick is due (epoch seconds)."""
    now: float | None
    """With a schedule: the clock's time of the current (or last) tick."""
