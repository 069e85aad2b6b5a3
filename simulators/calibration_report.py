"""How the simulator is measured against the Hillstrom file: :func:`calibration_report` and
:func:`format_calibration` (the method is in :mod:`simulators.calibration`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulators.calibration_data import (
    ARM_NAMES,
    ARM_TOLERANCE,
    GROUP_Z,
    METRICS,
    REPORT_GROUPS,
    SCENARIO_NAME,
    CustomerFeatures,
    data_cells,
    load_hillstrom,
)
from simulators.scenario import Scenario, load_scenario
from simulators.simulator import Simulator
from simulators.types import BoolArray, EventBatch, EventKind, FloatArray


@dataclass(frozen=True)
class CalibrationRow:
    """One comparison: a metric of one group under one arm, in the file and in the simulator.

    Attributes:
        group: customer group (see :data:`REPORT_GROUPS`).
        arm: ``no_email``, ``mens_email`` or ``womens_email``.
        metric: ``visit`` (rate), ``conversion`` (rate) or ``spend`` (dollars per customer).
        data: the file's value.
        simulator: the sampled simulator's value (averaged over seeds).
        expected: the simulator's exact expectation on the same populations.
        relative_error: ``simulator / data - 1``.
        tolerance: the relative error allowed for this row.
        within_tolerance: ``abs(relative_error) <= tolerance``.
        n_data: rows of the file in this group and arm.
        se_data: standard error of the file's value.
        se_simulator: standard error of the simulator's sampled value.
    """

    group: str
    arm: str
    metric: str
    data: float
    simulator: float
    expected: float
    relative_error: float
    tolerance: float
    within_tolerance: bool
    n_data: int
    se_data: float
    se_simulator: float


@dataclass(frozen=True)
class CalibrationReport:
    """Data beside simulator for every report group, arm and metric.

    Attributes:
        scenario: scenario name.
        seeds: simulator seeds averaged over.
        n_customers: simulated customers per seed (each receives every arm in its own replica).
        rows: the comparisons, grouped by group, then arm, then metric.
    """

    scenario: str
    seeds: tuple[int, ...]
    n_customers: int
    rows: tuple[CalibrationRow, ...]

    @property
    def all_within_tolerance(self) -> bool:
        """Whether every row is within its tolerance."""
        return all(r.within_tolerance for r in self.rows)

    def row(self, group: str, arm: str, metric: str) -> CalibrationRow:
        """The row of one group, arm and metric.

        Raises:
            KeyError: no such row, listing the groups, arms and metrics.
        """
        for r in self.rows:
            if (r.group, r.arm, r.metric) == (group, arm, metric):
                return r
        raise KeyError(
            f"no row ({group!r}, {arm!r}, {metric!r}); groups {list(REPORT_GROUPS)}, "
            f"arms {list(ARM_NAMES)}, metrics {list(METRICS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: scenario, seeds, n_customers, tolerances and the rows as dicts."""
        return {
            "scenario": self.scenario,
            "seeds": list(self.seeds),
            "n_customers": self.n_customers,
            "arm_tolerance": ARM_TOLERANCE,
            "group_z": GROUP_Z,
            "all_within_tolerance": self.all_within_tolerance,
            "rows": [
                {
                    "group": r.group,
                    "arm": r.arm,
                    "metric": r.metric,
                    "data": r.data,
                    "simulator": r.simulator,
                    "expected": r.expected,
                    "relative_error": r.relative_error,
                    "tolerance": r.tolerance,
                    "within_tolerance": r.within_tolerance,
                    "n_data": r.n_data,
                    "se_data": r.se_data,
                    "se_simulator": r.se_simulator,
                }
                for r in self.rows
            ],
        }


def _sample_arm(sim: Simulator, seed: int, arm: int) -> dict[str, FloatArray]:
    """Send ``arm`` to every customer of a freshly reset world; per customer outcomes."""
    sim.reset(seed)
    n = sim.n_customers
    ids = np.arange(n, dtype=np.int64)
    arms = np.full(n, arm, dtype=np.int64)
    gt = sim.expected(ids, arms)
    events = EventBatch.concat([sim.send(ids, ids, arms), sim.advance()])

    def flag(kind: EventKind) -> BoolArray:
        out = np.zeros(n, dtype=bool)
        out[events.customer[events.kind == kind]] = True
        return out

    delivered, clicked, converted = (
        flag(EventKind.DELIVERED),
        flag(EventKind.CLICKED),
        flag(EventKind.CONVERTED),
    )
    spend = np.zeros(n)
    conv = events.kind == EventKind.CONVERTED
    np.add.at(spend, events.customer[conv], events.revenue[conv])
    # Organic visits leave no event: draw them from the model's law given what was observed.
    pop = sim.population
    v = np.where(delivered, np.minimum(pop.organic_visit * pop.contact_visit, 1.0), pop.organic_visit)
    oc = pop.organic_conversion
    p_visit_quiet = v * (1.0 - oc) / np.maximum(1.0 - v * oc, 1e-12)
    u = np.random.default_rng([seed, arm, 0x5EED]).random(n)
    visit = clicked | converted | (u < p_visit_quiet)
    return {
        "visit": visit.astype(np.float64),
        "conversion": converted.astype(np.float64),
        "spend": spend,
        "expected_visit": gt.p_visit,
        "expected_conversion": gt.p_convert,
        "expected_spend": gt.revenue,
    }


def calibration_report(
    data_path: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    n_customers: int | None = None,
    *,
    scenario: Scenario | None = None,
) -> CalibrationReport:
    """Compare the ``hillstrom`` scenario with the file, per arm and per customer group.

    For each seed, a population of ``n_customers`` is drawn and every arm is sent to all of
    it, each arm in its own replica of the world (see the module docstring). Sampled values
    are pooled over seeds; ``expected`` is the exact expectation on the same populations.

    Args:
        data_path: the Hillstrom CSV.
        seeds: simulator seeds.
        n_customers: customers per seed; default the scenario's population size (64,000).
        scenario: another scenario to check (default: the built-in ``hillstrom``).

    Returns:
        The report; per-arm rows (group ``all``) have tolerance :data:`ARM_TOLERANCE`, group
        rows ``max(ARM_TOLERANCE, GROUP_Z * se / data)``.

    Raises:
        FileNotFoundError: no data file.
        ValueError: no seeds.
    """
    if not seeds:
        raise ValueError("give at least one seed")
    data = load_hillstrom(data_path)
    sc = scenario if scenario is not None else load_scenario(SCENARIO_NAME)
    sim = Simulator(sc, n_customers)
    n = sim.n_customers
    # (group, arm, metric) -> list over seeds of (sum, sum of squares, count) and expected sum.
    sums: dict[tuple[str, int, str], FloatArray] = {}
    for seed in seeds:
        groups: dict[str, BoolArray] | None = None
        for arm in range(len(ARM_NAMES)):
            out = _sample_arm(sim, int(seed), arm)
            if groups is None:
                groups = CustomerFeatures.of_simulator(sim).groups()
            for gname, gmask in groups.items():
                for metric in METRICS:
                    x = out[metric][gmask]
                    e = out[f"expected_{metric}"][gmask]
                    acc = sums.setdefault((gname, arm, metric), np.zeros(4))
                    acc += (x.sum(), (x * x).sum(), x.size, e.sum())
    rows: list[CalibrationRow] = []
    cells = {(c.group, c.arm, c.metric): c for c in data_cells(data)}
    for gname in REPORT_GROUPS:
        for arm, arm_name in enumerate(ARM_NAMES):
            for metric in METRICS:
                cell = cells[(gname, arm, metric)]
                s, s2, k, e = sums[(gname, arm, metric)]
                mean = s / k
                se_sim = math.sqrt(max(s2 / k - mean * mean, 0.0) / max(k - 1.0, 1.0))
                rel = mean / cell.data - 1.0 if cell.data else math.inf
                if gname == "all":
                    tol = ARM_TOLERANCE
                else:
                    se = math.hypot(cell.se, se_sim)
                    tol = max(ARM_TOLERANCE, GROUP_Z * se / cell.data) if cell.data else math.inf
                rows.append(
                    CalibrationRow(
                        group=gname,
                        arm=arm_name,
                        metric=metric,
                        data=cell.data,
                        simulator=float(mean),
                        expected=float(e / k),
                        relative_error=float(rel),
                        tolerance=float(tol),
                        within_tolerance=bool(abs(rel) <= tol),
                        n_data=cell.n,
                        se_data=cell.se,
                        se_simulator=se_sim,
                    )
                )
    return CalibrationReport(
        scenario=sc.name, seeds=tuple(int(s) for s in seeds), n_customers=n, rows=tuple(rows)
    )


def _fmt(metric: str, x: float) -> str:
    return f"${x:.3f}" if metric == "spend" else f"{100 * x:.2f}%"


def format_calibration(report: CalibrationReport) -> str:
    """A plain-text table: one line per (group, arm), data / simulator / error per metric.

    Rows outside their tolerance are marked with ``*``.
    """
    head = f"{'group':<16} {'arm':<13}"
    for metric in METRICS:
        head += f" | {metric + ' data':>15} {'sim':>8} {'err':>6}"
    lines = [
        f"Calibration of scenario {report.scenario!r} against the Hillstrom file "
        f"({report.n_customers:,} simulated customers x seeds {list(report.seeds)}; "
        "each arm sent to every customer)",
        head,
        "-" * len(head),
    ]
    for gname in REPORT_GROUPS:
        for arm_name in ARM_NAMES:
            line = f"{gname:<16} {arm_name:<13}"
            for metric in METRICS:
                r = report.row(gname, arm_name, metric)
                mark = " " if r.within_tolerance else "*"
                line += (
                    f" | {_fmt(metric, r.data):>15} {_fmt(metric, r.simulator):>8} "
                    f"{100 * r.relative_error:>+5.1f}%{mark}"
                )
            lines.append(line.rstrip())
    bad = sum(not r.within_tolerance for r in report.rows)
    lines.append(
        f"Tolerance: {100 * ARM_TOLERANCE:.0f}% relative for group 'all' (per arm); for the other "
        f"groups the larger of {100 * ARM_TOLERANCE:.0f}% and {GROUP_Z:g} standard errors. "
        + ("All rows within tolerance." if bad == 0 else f"{bad} row(s) outside (*).")
    )
    return "\n".join(lines)
