"""Typed records of a campaign: decisions, per-iteration history and the final report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulators.types import FloatArray, IntArray


@dataclass
class DecisionLog:
    """Every decision sent, one row each (struct of arrays, grown by :meth:`append`).

    Attributes:
        decision_id: ``(n,)`` ledger reservation id of the decision.
        iteration: ``(n,)`` iteration it was sent in.
        customer: ``(n,)`` customer index.
        arm: ``(n,)`` arm sent.
        pscore: ``(n,)`` the policy's probability of that arm.
        reserved: ``(n,)`` worst-case dollars reserved for it.
    """

    decision_id: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    iteration: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    customer: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    arm: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    pscore: FloatArray = field(default_factory=lambda: np.zeros(0))
    reserved: FloatArray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.decision_id.shape[0])

    def append(self, **cols: NDArray[Any]) -> None:
        """Append rows; every column must be given."""
        for name in ("decision_id", "iteration", "customer", "arm", "pscore", "reserved"):
            setattr(self, name, np.concatenate([getattr(self, name), cols[name]]))


@dataclass(frozen=True)
class IterationRecord:
    """What happened in one iteration (counts are events observed in that iteration)."""

    iteration: int
    candidates: int
    sends: int
    sends_by_channel: dict[str, int]
    delivered: int
    opened: int
    clicked: int
    conversions: int
    revenue: float
    unsubscribed: int
    spend: float
    """Dollars charged in this iteration (send costs plus redeemed offers)."""
    spend_total: float
    reserved: float
    conversions_total: int
    revenue_total: float
    goal_progress: float
    """Achieved / target, capped at 1."""
    conversions_projected: float = 0.0
    """Observed conversions plus those still expected from sends whose window is open."""
    revenue_projected: float = 0.0


@dataclass(frozen=True)
class CampaignReport:
    """The outcome of a campaign run. ``to_dict()`` is the JSON the CLI prints.

    ROI is ``(revenue * margin - spend) / spend``: profit per dollar spent on the campaign.
    """

    scenario: str
    policy: str
    seed: int | None
    goal_metric: str
    goal_target: float
    goal_reached: bool
    stop_reason: str
    budget: float
    spend: float
    reserved: float
    cost_to_goal: float | None
    """Spend at the end of the iteration in which the goal was reached."""
    iterations: int
    sends: int
    sends_by_channel: dict[str, int]
    spend_by_channel: dict[str, float]
    offer_cost_by_offer: dict[str, float]
    delivered: int
    opened: int
    clicked: int
    conversions: int
    revenue: float
    unsubscribed: int
    delivery_rate: float
    open_rate: float
    click_rate: float
    conversion_rate: float
    cost_per_conversion: float | None
    roi: float | None
    goal_progress: float
    conversions_pending: float
    """Conversions still expected from sends whose attribution window is open (0 once drained)."""
    revenue_pending: float
    conversions_projected: float
    """Observed plus pending: what the stop rule counts (``spec.stop_on_projected``)."""
    revenue_projected: float
    channel: str
    max_contacts_per_customer: int
    max_cost_per_customer: float
    history: list[IterationRecord]
    status: str = "completed"
    """ready, running, paused, completed or cancelled."""
    alerts: list[Any] = field(default_factory=list)
    """:class:`agent.control.Alert` records."""
    audit_log: list[Any] = field(default_factory=list)
    """:class:`agent.control.AuditRecord` records: pause, resume, cancel and modify, with reasons."""
    results_by_arm: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per arm sent: sends, attributed conversions and revenue, spend."""
    results_by_segment: dict[str, dict[str, float]] = field(default_factory=dict)
    """An owner's audience with ``segment_by``: per segment, customers, sends, attributed
    conversions and revenue, spend (charged)."""
    incremental: dict[str, float] | None = None
    """With a holdout: incremental conversions and revenue with 95% intervals (see
    :meth:`agent.Campaign.incremental`)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (history as a list of dicts)."""
        return asdict(self)
