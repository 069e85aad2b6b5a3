"""A/B reports and round comparisons of an owner's campaigns (``/campaigns/{id}/reports/...``).

A campaign's decisions are read from two places: the runner's waves from its stored snapshot
(the agent's decision and event logs, in :mod:`agent.export`'s table form: arm, policy, the
ledger's charge, converted events with revenue) and the real-time ``/decide`` decisions from the
``decisions`` table with their applied ``converted`` events from the ``events`` table (cost: what
was charged). The statistics are :mod:`agent.comparison`'s pure functions.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from serving.errors import ConflictError, InvalidError
from serving.models import DecisionRow, EventRow
from serving.store import Store, load_snapshot, snapshot_blob

if TYPE_CHECKING:
    from agent.comparison import Outcomes

MICROS = 1_000_000
logger = logging.getLogger(__name__)


class ReportsMixin(Store):
    """Reports over a campaign's logged decisions and outcomes."""

    def _outcomes(self, owner_id: int, cid: int) -> tuple[Outcomes, float]:
        """The campaign's decisions and outcomes, and its scenario's margin.

        Raises:
            NotFoundError: no such campaign of this owner.
            ConflictError: its stored snapshot cannot be read.
        """
        import pyarrow as pa

        from agent.comparison import Outcomes, outcomes_from_tables
        from agent.export import decisions_table, events_table

        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            blob = snapshot_blob(conn, cid)
            decided = conn.execute(
                select(DecisionRow.decision_id, DecisionRow.arm, DecisionRow.charged_micros).where(
                    DecisionRow.campaign_id == cid, DecisionRow.source == "decide"
                )
            ).all()
            converted = conn.execute(
                select(EventRow.decision_id, EventRow.revenue).where(
                    EventRow.campaign_id == cid,
                    EventRow.kind == "converted",
                    EventRow.status == "applied",
                )
            ).all()
        try:
            camp = load_snapshot(blob)
        except Exception:  # garbage, an old pickle, a snapshot of another version: never a 500
            logger.exception("campaign %s: stored snapshot cannot be read for a report", cid)
            raise ConflictError(f"campaign {cid}: the stored snapshot cannot be read") from None
        runner = outcomes_from_tables(decisions_table(camp, str(cid)), events_table(camp, str(cid)))
        margin = float(camp.sim.scenario.margin) if hasattr(camp.sim, "scenario") else 0.3
        if not decided:
            return runner, margin
        ids = [int(r.decision_id) for r in decided]
        decisions = pa.table(
            {
                "decision_id": pa.array(ids, pa.int64()),
                "arm_name": pa.array([str(r.arm) for r in decided], pa.string()),
                "policy": pa.array([camp.policy.name] * len(ids), pa.string()),
                "charged": pa.array([int(r.charged_micros or 0) / MICROS for r in decided], pa.float64()),
            }
        )
        events = pa.table(
            {
                "decision_id": pa.array([int(r.decision_id) for r in converted], pa.int64()),
                "kind": pa.array(["converted"] * len(converted), pa.string()),
                "revenue": pa.array([float(r.revenue or 0.0) for r in converted], pa.float64()),
            }
        )
        decide = outcomes_from_tables(decisions, events)
        both = Outcomes(
            arm=np.concatenate([runner.arm, decide.arm]),
            policy=np.concatenate([runner.policy, decide.policy]),
            conversion=np.concatenate([runner.conversion, decide.conversion]),
            revenue=np.concatenate([runner.revenue, decide.revenue]),
            cost=np.concatenate([runner.cost, decide.cost]),
            source=f"campaign {cid}",
        )
        return both, margin

    def ab_report(
        self,
        owner_id: int,
        cid: int,
        by: str = "arm",
        control: str | None = None,
        alpha: float = 0.05,
        correction: str = "holm",
        margin: float | None = None,
    ) -> dict[str, Any]:
        """The A/B report of a campaign's groups (:func:`agent.comparison.ab_report`).

        Raises:
            NotFoundError: no such campaign of this owner.
            ConflictError: no decisions yet.
            InvalidError: an unknown ``control``.
        """
        rep = self._ab(owner_id, cid, by, control, alpha, correction, margin)
        return {"campaign_id": cid, **rep.to_dict()}

    def _ab(
        self,
        owner_id: int,
        cid: int,
        by: str,
        control: str | None,
        alpha: float,
        correction: str,
        margin: float | None,
    ) -> Any:
        from agent.comparison import ReportError, ab_report

        with self._heavy_work():
            table, default_margin = self._outcomes(owner_id, cid)
        if len(table) == 0:
            raise ConflictError(f"campaign {cid} has no decisions yet")
        table = replace(table, source=f"campaign {cid}")
        try:
            return ab_report(
                table,
                by,
                control,
                alpha=alpha,
                correction="bh" if correction == "bh" else "holm",
                margin=default_margin if margin is None else margin,
            )
        except ReportError as err:
            raise InvalidError(str(err), ["query", "control"]) from None

    def rounds_report(
        self,
        owner_id: int,
        cid: int,
        previous: int,
        by: str = "arm",
        alpha: float = 0.05,
        correction: str = "holm",
        margin: float | None = None,
    ) -> dict[str, Any]:
        """Campaign ``previous`` (before) against ``cid`` (after)
        (:func:`agent.comparison.rounds_report`).

        Raises:
            NotFoundError: either campaign is not this owner's.
            InvalidError: ``previous`` is the campaign itself.
            ConflictError: a campaign without decisions.
        """
        rep = self._rounds(owner_id, cid, previous, by, alpha, correction, margin)
        return {"campaign_id": cid, "previous": previous, **rep.to_dict()}

    def _rounds(
        self,
        owner_id: int,
        cid: int,
        previous: int,
        by: str,
        alpha: float,
        correction: str,
        margin: float | None,
    ) -> Any:
        from agent.comparison import ReportError, rounds_report

        if previous == cid:
            raise InvalidError("previous must be another campaign than this one", ["query", "previous"])
        with self._heavy_work():
            after, default_margin = self._outcomes(owner_id, cid)
            before, _ = self._outcomes(owner_id, previous)
        for which, t in ((previous, before), (cid, after)):
            if len(t) == 0:
                raise ConflictError(f"campaign {which} has no decisions yet")
        try:
            return rounds_report(
                before,
                after,
                by,
                alpha=alpha,
                correction="bh" if correction == "bh" else "holm",
                margin=default_margin if margin is None else margin,
                labels=(f"campaign {previous}", f"campaign {cid}"),
            )
        except ReportError as err:
            raise InvalidError(str(err), ["query"]) from None

    def ab_plot(self, owner_id: int, cid: int, by: str = "arm", control: str | None = None) -> Path:
        """The A/B report's plot as a PNG file (:func:`agent.plots.plot_ab`)."""
        from agent.plots import plot_ab

        key = hashlib.sha256(repr(control).encode()).hexdigest()[:12]
        path = self._plot_path(owner_id, cid, f"ab-{by}-{key}")
        if path.is_file():
            return path
        rep = self._ab(owner_id, cid, by, control, 0.05, "holm", None)
        with self._heavy_work():
            return plot_ab(rep, path)

    def rounds_plot(self, owner_id: int, cid: int, previous: int, by: str = "arm") -> Path:
        """The round comparison's plot as a PNG file (:func:`agent.plots.plot_rounds`)."""
        from agent.plots import plot_rounds

        path = self._plot_path(owner_id, cid, f"rounds-{by}", previous)
        if path.is_file():
            return path
        rep = self._rounds(owner_id, cid, previous, by, 0.05, "holm", None)
        with self._heavy_work():
            return plot_rounds(rep, path)

    def _plot_path(self, owner_id: int, cid: int, what: str, previous: int | None = None) -> Path:
        """Where a report plot of the campaigns' current versions is kept (rendered once per
        version, as ``/report.png``)."""
        with self.engine.connect() as conn:
            version = f"{cid}v{self._orm(conn, owner_id, cid).version}"
            if previous is not None:
                version += f"-{previous}v{self._orm(conn, owner_id, previous).version}"
        return self.settings.data_dir / "plots" / f"campaign-{version}-{what}.png"
