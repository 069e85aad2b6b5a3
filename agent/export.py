"""Export a campaign's decisions and events to Parquet, for off-policy evaluation later.

Example:
    >>> from agent import Campaign, CampaignSpec, Goal
    >>> from policies import make_policy
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=500)
    >>> camp = Campaign(CampaignSpec(goal=Goal(target=5), budget=5, customers_per_iteration=200,
    ...                 max_iterations=2), sim, make_policy("random", sim, seed=0), seed=0)
    >>> _ = camp.run()
    >>> import tempfile, pyarrow.parquet as pq
    >>> paths = export_logs(camp, tempfile.mkdtemp())
    >>> pq.read_table(paths["decisions"]).column_names[:4]
    ['campaign', 'decision_id', 'iteration', 'customer']
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulators.types import EventKind

if TYPE_CHECKING:
    from agent.loop import Campaign


def decisions_table(campaign: Campaign, campaign_id: str = "") -> pa.Table:
    """One row per decision: campaign, decision_id, iteration, customer, arm (index and name),
    pscore, policy name and version, reserved dollars and charged dollars."""
    log, arms = campaign.log, campaign.sim.arms
    n = len(log)
    names = np.asarray(arms.names, dtype=object)
    return pa.table(
        {
            "campaign": pa.array([campaign_id or campaign.scenario_name] * n, pa.string()),
            "decision_id": log.decision_id,
            "iteration": log.iteration,
            "customer": log.customer,
            "arm": log.arm,
            "arm_name": pa.array(names[log.arm].tolist(), pa.string()),
            "pscore": log.pscore,
            "policy": pa.array([campaign.policy.name] * n, pa.string()),
            "policy_version": pa.array([str(campaign.policy.version)] * n, pa.string()),
            "reserved": log.reserved,
            "charged": campaign.ledger.charged(log.decision_id) if n else np.zeros(0),
        }
    )


def events_table(campaign: Campaign, campaign_id: str = "") -> pa.Table:
    """One row per event observed: decision_id (-1 for organic conversions), customer, kind,
    iteration, revenue and offer cost."""
    ev = campaign.event_log
    kinds = np.array([k.name.lower() for k in EventKind], dtype=object)
    return pa.table(
        {
            "campaign": pa.array([campaign_id or campaign.scenario_name] * len(ev), pa.string()),
            "decision_id": ev.decision_id,
            "customer": ev.customer,
            "kind": pa.array(kinds[ev.kind].tolist(), pa.string()),
            "iteration": ev.iteration,
            "revenue": ev.revenue,
            "offer_cost": ev.offer_cost,
        }
    )


def export_logs(campaign: Campaign, folder: str | Path, campaign_id: str = "") -> dict[str, Path]:
    """Write ``decisions.parquet`` and ``events.parquet`` into ``folder``; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"decisions": out / "decisions.parquet", "events": out / "events.parquet"}
    pq.write_table(decisions_table(campaign, campaign_id), paths["decisions"])
    pq.write_table(events_table(campaign, campaign_id), paths["events"])
    return paths
