"""The campaign's report as of now."""

from __future__ import annotations

import numpy as np

from agent.forecast import ProjectionMixin
from agent.report import CampaignReport
from simulators.types import FloatArray


class ReportMixin(ProjectionMixin):
    """Builds :class:`agent.report.CampaignReport` from the campaign's state."""

    def report(self) -> CampaignReport:
        """The report as of now."""
        arms = self.sim.arms
        sends = len(self.log)
        spend = self.ledger.spent
        f = self.funnel
        margin = float(getattr(self.sim, "margin", 1.0))

        def rate(a: float, b: float) -> float:
            return float(a / b) if b else 0.0

        by_channel = (
            np.bincount(arms.channel[self.log.arm], minlength=self._n_channels)
            if sends
            else np.zeros(self._n_channels, np.int64)
        )
        channel_spend: FloatArray = self.spend_by_channel
        return CampaignReport(
            scenario=self.scenario_name,
            policy=self.policy.name,
            seed=self.seed,
            goal_metric=self.spec.goal.metric,
            goal_target=self.spec.goal.target,
            goal_reached=self.goal_reached,
            stop_reason=self.stop_reason or self.status,
            budget=self.ledger.budget,
            spend=spend,
            reserved=self.ledger.reserved,
            cost_to_goal=self.cost_to_goal,
            iterations=self.iterations,
            sends=sends,
            sends_by_channel={n: int(k) for n, k in zip(arms.channel_names, by_channel, strict=True)},
            spend_by_channel={
                n: round(float(v), 6) for n, v in zip(arms.channel_names, channel_spend, strict=True)
            },
            offer_cost_by_offer={
                n: round(float(v), 6) for n, v in zip(arms.offer_names, self.offer_cost_by_offer, strict=True)
            },
            delivered=f["delivered"],
            opened=f["opened"],
            clicked=f["clicked"],
            conversions=self.conversions,
            revenue=self.revenue,
            unsubscribed=f["unsubscribed"],
            delivery_rate=rate(f["delivered"], sends),
            open_rate=rate(f["opened"], f["delivered"]),
            click_rate=rate(f["clicked"], f["opened"]),
            conversion_rate=rate(self.conversions, sends),
            cost_per_conversion=spend / self.conversions if self.conversions else None,
            roi=(self.revenue * margin - spend) / spend if spend > 0 else None,
            goal_progress=min(self.achieved / self.spec.goal.target, 1.0),
            **self.projected(),
            channel=self.channel.name,
            max_contacts_per_customer=int(self.customer_contacts.max(initial=0)),
            max_cost_per_customer=float(self._customer_spend().max(initial=0.0)),
            history=list(self.history),
            incremental=self.incremental(),
            results_by_arm=self._results_by_arm(),
            results_by_segment=self._results_by_segment(),
            status=self.status,
            alerts=list(self.alerts),
            audit_log=list(self.audit_log),
        )

    def _results_by_arm(self) -> dict[str, dict[str, float]]:
        """Sends, attributed conversions and revenue, and spend (charged) per arm that was sent."""
        arms = self.sim.arms
        if len(self.log) == 0:
            return {}
        sends = np.bincount(self.log.arm, minlength=len(arms))
        spend = np.bincount(
            self.log.arm, weights=self.ledger.charged(self.log.decision_id), minlength=len(arms)
        )
        return {
            arms.names[i]: {
                "sends": int(sends[i]),
                "conversions": int(self.conversions_by_arm[i]),
                "revenue": round(float(self.revenue_by_arm[i]), 2),
                "spend": round(float(spend[i]), 6),
            }
            for i in np.flatnonzero(sends)
        }

    def _results_by_segment(self) -> dict[str, dict[str, float]]:
        """Per segment of an owner's audience (``segment_by``): customers, sends, attributed
        conversions and revenue, spend."""
        labels = getattr(self.sim, "segments", None)
        if labels is None:
            return {}
        names, seg = np.unique(labels, return_inverse=True)
        k = names.size
        sends = np.bincount(seg[self.log.customer], minlength=k)
        spend = (
            np.bincount(seg, weights=self._customer_spend(), minlength=k) if len(self.log) else np.zeros(k)
        )
        customers = np.bincount(seg, minlength=k)
        conv = np.bincount(seg, weights=self.customer_attributed, minlength=k)
        revenue = np.bincount(seg, weights=self.customer_attributed_revenue, minlength=k)
        return {
            str(n): {
                "customers": int(customers[i]),
                "sends": int(sends[i]),
                "conversions": int(conv[i]),
                "revenue": round(float(revenue[i]), 2),
                "spend": round(float(spend[i]), 6),
            }
            for i, n in enumerate(names.tolist())
        }

    def _customer_spend(self) -> FloatArray:
        if len(self.log) == 0:
            return np.zeros(0, dtype=np.float64)
        spent = self.ledger.charged(self.log.decision_id)
        out = np.bincount(self.log.customer, weights=spent, minlength=self.sim.n_customers)
        return out.astype(np.float64)
