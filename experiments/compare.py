"""Compare an experiment's trials: one row per scenario and policy, median and IQR over seeds.

Rows are built from :class:`~experiments.records.TrialResult` objects right after a run, or from
the trial runs an MLflow store holds (``campaign-opt experiment compare NAME``); both give the
same table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from experiments.records import TrialResult


@dataclass(frozen=True)
class CompareRow:
    """One (scenario, policy) over its trials (seeds).

    Cost to goal and the ratio to the oracle are over the trials that reached their goal; the
    ratio compares each trial with the oracle on the same campaign seed.
    """

    scenario: str
    policy: str
    runs: int
    goal_reached_rate: float
    cost_to_goal_median: float | None
    cost_to_goal_q25: float | None
    cost_to_goal_q75: float | None
    ratio_to_oracle_median: float | None
    ratio_to_oracle_q25: float | None
    ratio_to_oracle_q75: float | None
    roi_median: float | None
    conversions_median: float | None
    spend_median: float | None


def _quartiles(values: Sequence[float | None]) -> tuple[float | None, float | None, float | None]:
    vals = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not vals.size:
        return None, None, None
    q25, med, q75 = np.percentile(vals, [25, 50, 75])
    return float(q25), float(med), float(q75)


def compare_records(records: Sequence[Mapping[str, Any]]) -> list[CompareRow]:
    """Rows from records ``{scenario, policy, metrics}`` (in first-seen order)."""
    groups: dict[tuple[str, str], list[Mapping[str, float | None]]] = {}
    for r in records:
        groups.setdefault((str(r["scenario"]), str(r["policy"])), []).append(r["metrics"])
    rows = []
    for (scenario, policy), ms in groups.items():
        c25, cmed, c75 = _quartiles([m.get("cost_to_goal") for m in ms])
        r25, rmed, r75 = _quartiles([m.get("ratio_to_oracle") for m in ms])
        reached = [m.get("goal_reached") for m in ms]
        rows.append(
            CompareRow(
                scenario=scenario,
                policy=policy,
                runs=len(ms),
                goal_reached_rate=float(np.mean([v or 0.0 for v in reached])),
                cost_to_goal_median=cmed,
                cost_to_goal_q25=c25,
                cost_to_goal_q75=c75,
                ratio_to_oracle_median=rmed,
                ratio_to_oracle_q25=r25,
                ratio_to_oracle_q75=r75,
                roi_median=_quartiles([m.get("roi") for m in ms])[1],
                conversions_median=_quartiles([m.get("conversions") for m in ms])[1],
                spend_median=_quartiles([m.get("spend") for m in ms])[1],
            )
        )
    return rows


def compare_results(results: Sequence[TrialResult]) -> list[CompareRow]:
    """Rows from trial results."""
    return compare_records(
        [{"scenario": r.spec.scenario_label, "policy": r.spec.label, "metrics": r.metrics} for r in results]
    )


def _money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def _range(lo: float | None, hi: float | None, fmt: str) -> str:
    return "-" if lo is None or hi is None else f"{lo:{fmt}}–{hi:{fmt}}"


def to_markdown(rows: Sequence[CompareRow]) -> str:
    """The table as GitHub markdown."""
    lines = [
        "| scenario | policy | runs | goal reached | cost to goal (median) | IQR | ratio to oracle (median) "
        "| IQR | ROI (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "-" if r.ratio_to_oracle_median is None else f"{r.ratio_to_oracle_median:.2f}x"
        roi = "-" if r.roi_median is None else f"{r.roi_median:.2f}"
        lines.append(
            f"| {r.scenario} | {r.policy} | {r.runs} | {r.goal_reached_rate:.0%} "
            f"| {_money(r.cost_to_goal_median)} "
            f"| {_range(r.cost_to_goal_q25, r.cost_to_goal_q75, ',.2f')} | {ratio} "
            f"| {_range(r.ratio_to_oracle_q25, r.ratio_to_oracle_q75, '.2f')} | {roi} |"
        )
    return "\n".join(lines)
