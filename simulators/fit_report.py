"""How a fitted simulator is measured against its log: :func:`fit_report` and
:func:`format_report`, a table of data beside simulator with a tolerance per row (the method is
in :mod:`simulators.fit`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.fit_data import LogData, data_cells
from simulators.scenario import Scenario
from simulators.simulator import Simulator
from simulators.types import BoolArray, EventBatch, EventKind, FloatArray

ARM_TOLERANCE = 0.05
"""Per-arm rows (group ``all``) must be within this relative error."""
GROUP_Z = 3.0
"""Group rows are within tolerance when within ``max(ARM_TOLERANCE, GROUP_Z * se)`` relative,
``se`` being the combined standard error of the data cell and the simulated estimate."""


@dataclass(frozen=True)
class CalibrationRow:
    """One comparison: a metric of one group under one arm, in the log and in the simulator.

    Attributes:
        group: customer group (``all``, a product-line combination or a segment).
        arm: the arm's report label (``no_email``, ``mens_email``, ...).
        metric: ``visit`` (rate), ``conversion`` (rate) or ``spend`` (dollars per customer).
        data: the log's value.
        simulator: the sampled simulator's value (averaged over seeds).
        expected: the simulator's exact expectation on the same populations.
        relative_error: ``simulator / data - 1``.
        tolerance: the relative error allowed for this row.
        within_tolerance: ``abs(relative_error) <= tolerance``.
        n_data: rows of the log in this group and arm.
        se_data: standard error of the log's value.
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

    @property
    def difference(self) -> float:
        """``simulator - data``."""
        return self.simulator - self.data


@dataclass(frozen=True)
class CalibrationReport:
    """Data beside simulator for every report group, arm and metric.

    Attributes:
        scenario: scenario name.
        seeds: simulator seeds averaged over.
        n_customers: simulated customers per seed (each receives every arm in its own replica).
        rows: the comparisons, grouped by group, then arm, then metric.
        source: how the table names the log (``the Hillstrom file``).
    """

    scenario: str
    seeds: tuple[int, ...]
    n_customers: int
    rows: tuple[CalibrationRow, ...]
    source: str = "the log"

    @property
    def all_within_tolerance(self) -> bool:
        """Whether every row is within its tolerance."""
        return all(r.within_tolerance for r in self.rows)

    @property
    def groups(self) -> list[str]:
        """The groups, in table order."""
        return list(dict.fromkeys(r.group for r in self.rows))

    @property
    def arms(self) -> list[str]:
        """The arms' labels, in table order."""
        return list(dict.fromkeys(r.arm for r in self.rows))

    @property
    def metrics(self) -> list[str]:
        """The metrics, in table order."""
        return list(dict.fromkeys(r.metric for r in self.rows))

    def row(self, group: str, arm: str, metric: str) -> CalibrationRow:
        """The row of one group, arm and metric.

        Raises:
            KeyError: no such row, listing the groups, arms and metrics.
        """
        for r in self.rows:
            if (r.group, r.arm, r.metric) == (group, arm, metric):
                return r
        raise KeyError(
            f"no row ({group!r}, {arm!r}, {metric!r}); groups {self.groups}, "
            f"arms {self.arms}, metrics {self.metrics}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: scenario, seeds, n_customers, tolerances and the rows as dicts (each
        with data, simulator, difference, relative error, tolerance, within_tolerance)."""
        return {
            "scenario": self.scenario,
            "source": self.source,
            "seeds": list(self.seeds),
            "n_customers": self.n_customers,
            "arm_tolerance": ARM_TOLERANCE,
            "group_z": GROUP_Z,
            "all_within_tolerance": self.all_within_tolerance,
            "rows_within_tolerance": sum(r.within_tolerance for r in self.rows),
            "rows": [
                {
                    "group": r.group,
                    "arm": r.arm,
                    "metric": r.metric,
                    "data": r.data,
                    "simulator": r.simulator,
                    "difference": r.difference,
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


def fit_report(
    log: LogData,
    scenario: Scenario,
    seeds: Sequence[int] = (0, 1, 2),
    n_customers: int | None = None,
) -> CalibrationReport:
    """Compare a scenario with a log, per arm and per customer group.

    For each seed, a population of ``n_customers`` is drawn and every arm is sent to all of it,
    each arm in its own replica of the world (same seed: the arms see the same customers, as in
    a randomized test with a perfect split). Conversions and spend are counted from the sampled
    events; a visit is drawn from the model's own law given the events (an organic visit leaves
    none). Sampled values are pooled over seeds; ``expected`` is the exact expectation on the
    same populations.

    Args:
        log: the log (its arms are the scenario's, in order).
        scenario: the simulated world to check.
        seeds: simulator seeds.
        n_customers: customers per seed; default the scenario's population size.

    Returns:
        The report; per-arm rows (group ``all``) have tolerance :data:`ARM_TOLERANCE`, group
        rows ``max(ARM_TOLERANCE, GROUP_Z * se / data)``.

    Raises:
        ValueError: no seeds, or a scenario whose arms or features are not the log's.
    """
    from simulators.fit_data import Features

    if not seeds:
        raise ValueError("give at least one seed")
    sim = Simulator(scenario, n_customers)
    if tuple(sim.arms.names[1:]) != log.arm_names:
        raise ValueError(f"scenario {scenario.name!r} has arms {sim.arms.names[1:]}, the log {log.arm_names}")
    n = sim.n_customers
    n_arms = len(log.arm_names) + 1
    metrics = log.metrics
    sums: dict[tuple[str, int, str], FloatArray] = {}
    for seed in seeds:
        groups: dict[str, BoolArray] | None = None
        for arm in range(n_arms):
            out = _sample_arm(sim, int(seed), arm)
            if groups is None:
                groups = Features.of_simulator(sim, log.features).groups()
            for gname, gmask in groups.items():
                for metric in metrics:
                    x = out[metric][gmask]
                    e = out[f"expected_{metric}"][gmask]
                    acc = sums.setdefault((gname, arm, metric), np.zeros(4))
                    acc += (x.sum(), (x * x).sum(), x.size, e.sum())
    rows: list[CalibrationRow] = []
    cells = {(c.group, c.arm, c.metric): c for c in data_cells(log)}
    for gname in log.features.groups():
        for arm in range(n_arms):
            for metric in metrics:
                cell = cells.get((gname, arm, metric))
                if cell is None:
                    continue
                s, s2, k, e = sums[(gname, arm, metric)]
                k = max(k, 1.0)
                mean = s / k
                se_sim = math.sqrt(max(s2 / k - mean * mean, 0.0) / max(k - 1.0, 1.0))
                rel = mean / cell.data - 1.0 if cell.data else (0.0 if mean == 0 else math.inf)
                if gname == "all":
                    tol = ARM_TOLERANCE
                else:
                    se = math.hypot(cell.se, se_sim)
                    tol = max(ARM_TOLERANCE, GROUP_Z * se / cell.data) if cell.data else math.inf
                rows.append(
                    CalibrationRow(
                        group=gname,
                        arm=log.arm_labels[arm],
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
        scenario=scenario.name,
        seeds=tuple(int(s) for s in seeds),
        n_customers=n,
        rows=tuple(rows),
        source=log.source,
    )


def _fmt(metric: str, x: float) -> str:
    return f"${x:.3f}" if metric == "spend" else f"{100 * x:.2f}%"


def format_report(report: CalibrationReport) -> str:
    """A plain-text table: one line per (group, arm), data / simulator / error per metric.

    Rows outside their tolerance are marked with ``*``; the last line counts them.
    """
    gw = max([16, *(len(g) + 1 for g in report.groups)])
    aw = max([13, *(len(a) + 1 for a in report.arms)])
    head = f"{'group':<{gw}} {'arm':<{aw}}"
    for metric in report.metrics:
        head += f" | {metric + ' data':>15} {'sim':>8} {'err':>6}"
    lines = [
        f"Calibration of scenario {report.scenario!r} against {report.source} "
        f"({report.n_customers:,} simulated customers x seeds {list(report.seeds)}; "
        "each arm sent to every customer)",
        head,
        "-" * len(head),
    ]
    for gname in report.groups:
        for arm_name in report.arms:
            try:
                cells = [report.row(gname, arm_name, m) for m in report.metrics]
            except KeyError:
                continue
            line = f"{gname:<{gw}} {arm_name:<{aw}}"
            for r in cells:
                mark = " " if r.within_tolerance else "*"
                line += (
                    f" | {_fmt(r.metric, r.data):>15} {_fmt(r.metric, r.simulator):>8} "
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


def format_tolerance(report: CalibrationReport) -> str:
    """The tolerance report: one line per row with data, simulated value, difference, the
    relative error and its tolerance, and whether it is within (``yes``/``no``)."""
    gw = max([6, *(len(g) + 1 for g in report.groups)])
    aw = max([4, *(len(a) + 1 for a in report.arms)])
    lines = [
        f"{'group':<{gw}} {'arm':<{aw}} {'metric':<11} {'data':>10} {'simulated':>10} {'difference':>11} "
        f"{'error':>7} {'tolerance':>9}  within"
    ]
    for r in report.rows:
        diff = f"{'-' if r.difference < 0 else '+'}{_fmt(r.metric, abs(r.difference))}"
        lines.append(
            f"{r.group:<{gw}} {r.arm:<{aw}} {r.metric:<11} {_fmt(r.metric, r.data):>10} "
            f"{_fmt(r.metric, r.simulator):>10} "
            f"{diff:>11} {100 * r.relative_error:>+6.1f}% {100 * r.tolerance:>8.1f}%  "
            f"{'yes' if r.within_tolerance else 'no'}"
        )
    good = sum(r.within_tolerance for r in report.rows)
    lines.append(f"{good} of {len(report.rows)} rows within tolerance.")
    return "\n".join(lines)
