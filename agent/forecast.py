"""Looking ahead: the in-flight projection of delayed conversions, and the pre-launch forecast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.events import EventsMixin
from agent.report import CampaignReport


@dataclass(frozen=True)
class Forecast:
    """Pre-launch forecast from simulated campaigns (see :meth:`agent.Campaign.forecast`)."""

    runs: int
    p_goal_within_budget: float
    cost_to_goal_median: float | None
    """Median over the runs that reached the goal (``None`` if none did)."""
    cost_to_goal_q25: float | None
    cost_to_goal_q75: float | None
    spend_median: float

    @classmethod
    def of(cls, reports: Sequence[CampaignReport]) -> Forecast:
        """The forecast read off whole simulated campaigns (at least one)."""
        costs = [r.cost_to_goal for r in reports if r.cost_to_goal is not None]
        q = np.percentile(costs, [25, 50, 75]).tolist() if costs else [None, None, None]
        return cls(
            runs=len(reports),
            p_goal_within_budget=sum(r.goal_reached for r in reports) / len(reports),
            cost_to_goal_median=q[1],
            cost_to_goal_q25=q[0],
            cost_to_goal_q75=q[2],
            spend_median=float(np.median([r.spend for r in reports])),
        )


class ProjectionMixin(EventsMixin):
    """Observed plus still-expected conversions, and what the stop rule and the last wave make of
    them (see the README's "Delayed conversions")."""

    def projected(self) -> dict[str, float]:
        """Observed conversions and revenue plus what recent sends are still expected to bring.

        The pending part is the chain-ladder projection of :class:`agent.feedback.DelayTriangle`
        over the cohorts whose attribution window is still open.
        """
        conv, rev = self.triangle.pending(self.t)
        return {
            "conversions_pending": conv,
            "revenue_pending": rev,
            "conversions_projected": self.conversions + conv,
            "revenue_projected": self.revenue + rev,
        }

    def _counted(self) -> float:
        """The goal metric as the stop rule and the policy see it: observed plus pending when
        ``spec.stop_on_projected`` (for ``conversions`` and ``revenue``), else observed."""
        metric = self.spec.goal.metric
        if not self.spec.stop_on_projected or metric == "incremental_conversions":
            return self.achieved
        return self.projected()["conversions_projected" if metric == "conversions" else "revenue_projected"]

    def _contacts_needed(self, margin: float = 1.25) -> int:
        """Contacts enough to reach the rest of the goal at the yield observed so far (projected
        conversions or revenue per send, over every cohort), times ``margin``; unbounded when
        there is no yield to go by or the projection is off."""
        metric = self.spec.goal.metric
        sends = int(self.triangle.sends.sum())
        if not self.spec.stop_on_projected or metric == "incremental_conversions" or sends == 0:
            return np.iinfo(np.int64).max
        counted = self._counted()
        per_send = counted / sends
        if per_send <= 0:
            return np.iinfo(np.int64).max
        remaining = max(self.spec.goal.target - counted, 0.0)
        return int(np.ceil(margin * remaining / per_send))

    def _goal_in_flight(self) -> bool:
        """The goal is not reached yet, but the projection says recent sends will reach it."""
        return not self.goal_reached and self._counted() >= self.spec.goal.target
