"""Calibration of the ``hillstrom`` scenario to Kevin Hillstrom's e-mail experiment.

The file (``../shared/data/hillstrom.csv``, 64,000 customers, see its README) is a randomized
test: one third got the men's e-mail, one third the women's e-mail, one third nothing, and
visits, conversions and spend were recorded for two weeks. The ``hillstrom`` scenario
(``simulators/scenarios/hillstrom.yaml``) is the simulator's version of that world: one
iteration is the two-week window, arm 0 is no e-mail, arm 1 the men's e-mail, arm 2 the women's
e-mail. The YAML is self-contained; the CSV is read only here, to fit and to check it.

What is copied from the file (no fitting):
    * the population: the share of newbies (segment ``new``) and returning customers, each
      segment's recency distribution over months 1..12 and its dollars-spent-last-year
      (``monetary``, the file's ``history``) as 41 empirical quantiles, the last one set so the
      top 2.5% has the file's mean (the file has a floor at $29.99, returning customers are
      capped at $500 and newbies' spend has two modes: no log-normal fits it); the
      shares of ``zip_code``, ``purchase_channel`` and of the bought product lines (``mens``,
      ``womens``, ``mens+womens``, observed without noise);
    * the order value: log-normal with the log-sd of the file's spend among converters (0.85)
      and no dependence on ``monetary`` (their correlation in the file is -0.06); its mean is
      fitted with the rest.

What is fitted (:data:`FIT_PARAMETERS`, 41 numbers): the four uplift types' organic visit,
organic conversion, click and click-conversion rates, within bounds that keep each type's
meaning (sure things visit and buy on their own, persuadables click at least as much as the
reference and convert their clicks, lost causes hardly convert a click, sleeping dogs click
little and visit less once contacted); the uplift mix of each segment; the
visit and click effects of the product-line combos, zip codes and purchase channels; the
recency and monetary effects on organic visits; the two contents' ``appeal``, ``line_match``
and ``conversion`` (the men's e-mail is the conversion reference, 1); the mean order value.
The e-mail channel's own rates are fixed (delivery 0.98, open 0.25, click-through 0.30): only
their product with the contents' match is identified.

Targets: the file's visit and conversion rate for every (cell, arm), where the cells are the
six product-line x segment groups, the three zip codes, the three purchase channels, the twelve
recency months and the seven history bands (overlapping cells: a method of moments), plus the
per-arm visit, conversion and spend per customer of the whole file, weighted
:data:`ARM_WEIGHT` times more.

How (:func:`fit_hillstrom`): weighted least squares with ``scipy.optimize.least_squares``
(trust region, bounds, log scale for positive numbers). Each residual is
``(model - data) / se_data``, where ``se_data`` is the binomial standard error of the cell
(spend: the sample standard error); a weak Gaussian prior on every parameter (in log scale)
keeps the unidentified parts of the model (how the response splits over the four uplift types)
near a sensible, documented default. The model values are the simulator's exact expectations
(:meth:`Simulator.expected`) on a drawn 32,000-customer population, averaged over the uplift
types with the mix weights (one population per type, same seed, so the objective is smooth):
the fit uses the simulator's own code, not a copy of its formulas. The fitted numbers, rounded to
three significant digits, are hard-coded in the YAML, which :func:`render_hillstrom_yaml` writes.
Rerun with ``python -m simulators.calibration fit --data PATH --write
simulators/scenarios/hillstrom.yaml`` (about three minutes; it recopies the file's distributions
and starts from the shipped response parameters, or from the priors with ``--from-priors``),
then check with ``python -m simulators.calibration report --data PATH``. The shipped numbers
came from a fit from the priors followed by refits until the weighted residual sum of squares
stopped moving (about 320 on 195 cells).

What the model cannot express, and so does not match: an interaction between segment and
content (returning customers' clicks on the women's e-mail barely convert in the file, newbies'
do); spend per order that differs by group (men-only buyers spend more per order); correlations
between features (newbies buy both lines and shop multichannel more often; the simulator draws
these attributes independently, with the file's overall shares).

How the simulator is measured (:func:`calibration_report`): for each seed a fresh population
of ``n_customers`` (default 64,000) is drawn, and each arm is sent to every customer in its own
replica of that world (same seed: the three arms see the same customers, as in a randomized
test with a perfect split). Conversions and spend are counted from the sampled events of
:meth:`Simulator.send` and :meth:`Simulator.advance` (order values drawn). The simulator emits
no event for an organic visit, so a customer's visit is drawn from the model's own conditional
law: clicked or converted customers visited; the others visited with probability
``P(organic visit | no organic conversion)`` for their (un)delivered state. Each row also gives
the exact expectation (:meth:`Simulator.expected`) on the same populations.

Example:
    >>> from simulators.calibration import calibration_report, format_calibration
    >>> report = calibration_report("../shared/data/hillstrom.csv")  # doctest: +SKIP
    >>> print(format_calibration(report))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from simulators.scenario import UPLIFT_TYPES, Scenario, load_scenario, parse_scenario
from simulators.simulator import Simulator
from simulators.types import BoolArray, EventBatch, EventKind, FloatArray, IntArray

SCENARIO_NAME = "hillstrom"
DATA_ARMS: tuple[str, ...] = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
"""The file's ``segment`` values, indexed by the scenario's arm (0 = no contact)."""
ARM_NAMES: tuple[str, ...] = ("no_email", "mens_email", "womens_email")
"""Short names of the three arms in reports."""
METRICS: tuple[str, ...] = ("visit", "conversion", "spend")
REPORT_GROUPS: tuple[str, ...] = (
    "all",
    "mens_only",
    "womens_only",
    "mens_and_womens",
    "new",
    "returning",
)
"""Customer groups of the report: everyone, by product lines bought, by newbie flag."""
ZIP_CODES: tuple[str, ...] = ("urban", "suburban", "rural")
PURCHASE_CHANNELS: tuple[str, ...] = ("phone", "web", "multichannel")
HISTORY_EDGES: tuple[float, ...] = (100.0, 200.0, 350.0, 500.0, 750.0, 1000.0)
"""Upper edges of the file's first six ``history_segment`` bands (the seventh is $1,000+)."""
ARM_TOLERANCE = 0.05
"""Per-arm rows (group ``all``) must be within this relative error."""
GROUP_Z = 3.0
"""Group rows are within tolerance when within ``max(ARM_TOLERANCE, GROUP_Z * se)`` relative,
``se`` being the combined standard error of the data cell and the simulated estimate."""
ARM_WEIGHT = 6.0
"""How much more the whole-file per-arm targets weigh in the fit than the cell targets."""

_ZIP_CODES_IN_FILE = {"Urban": 0, "Surburban": 1, "Suburban": 1, "Rural": 2}
_CHANNELS_IN_FILE = {"Phone": 0, "Web": 1, "Multichannel": 2}


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HillstromData:
    """The Hillstrom file as arrays, one row per customer.

    Attributes:
        recency: ``(n,)`` months since the last purchase, 1..12.
        history: ``(n,)`` dollars spent in the last year.
        mens, womens: ``(n,)`` bought from the men's / women's line.
        zip_code: ``(n,)`` codes into :data:`ZIP_CODES`.
        newbie: ``(n,)`` new customer in the last year.
        channel: ``(n,)`` purchase channel, codes into :data:`PURCHASE_CHANNELS`.
        arm: ``(n,)`` the scenario's arm index of the e-mail received (see :data:`DATA_ARMS`).
        visit, conversion: ``(n,)`` outcomes within two weeks.
        spend: ``(n,)`` dollars spent within two weeks.
    """

    recency: IntArray
    history: FloatArray
    mens: BoolArray
    womens: BoolArray
    zip_code: IntArray
    newbie: BoolArray
    channel: IntArray
    arm: IntArray
    visit: BoolArray
    conversion: BoolArray
    spend: FloatArray

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    def features(self) -> CustomerFeatures:
        """The customers' features in the form shared with simulated populations."""
        return CustomerFeatures(
            recency=self.recency,
            monetary=self.history,
            mens=self.mens,
            womens=self.womens,
            zip_code=self.zip_code,
            channel=self.channel,
            new=self.newbie,
        )


def load_hillstrom(path: str | Path) -> HillstromData:
    """Read the Hillstrom CSV (stdlib ``csv``; no pandas).

    Args:
        path: the file, e.g. ``../shared/data/hillstrom.csv``.

    Returns:
        The columns as typed arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing column or an unknown category, naming the row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Hillstrom data file {str(path)!r} does not exist")
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "recency",
            "history",
            "mens",
            "womens",
            "zip_code",
            "newbie",
            "channel",
            "arm",
            "visit",
            "conversion",
            "spend",
        )
    }
    arm_of = {name: i for i, name in enumerate(DATA_ARMS)}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for line, row in enumerate(reader, start=2):
            try:
                cols["recency"].append(int(row["recency"]))
                cols["history"].append(float(row["history"]))
                cols["mens"].append(row["mens"] == "1")
                cols["womens"].append(row["womens"] == "1")
                cols["zip_code"].append(_ZIP_CODES_IN_FILE[row["zip_code"]])
                cols["newbie"].append(row["newbie"] == "1")
                cols["channel"].append(_CHANNELS_IN_FILE[row["channel"]])
                cols["arm"].append(arm_of[row["segment"]])
                cols["visit"].append(row["visit"] == "1")
                cols["conversion"].append(row["conversion"] == "1")
                cols["spend"].append(float(row["spend"]))
            except (KeyError, ValueError) as err:
                raise ValueError(f"{path}: line {line}: cannot read {err}") from None
    return HillstromData(
        recency=np.array(cols["recency"], np.int64),
        history=np.array(cols["history"], np.float64),
        mens=np.array(cols["mens"], bool),
        womens=np.array(cols["womens"], bool),
        zip_code=np.array(cols["zip_code"], np.int64),
        newbie=np.array(cols["newbie"], bool),
        channel=np.array(cols["channel"], np.int64),
        arm=np.array(cols["arm"], np.int64),
        visit=np.array(cols["visit"], bool),
        conversion=np.array(cols["conversion"], bool),
        spend=np.array(cols["spend"], np.float64),
    )


# -- features and groups, shared by the file and simulated populations ---------------------


@dataclass(frozen=True)
class CustomerFeatures:
    """The Hillstrom features of a set of customers (real or simulated), one row each."""

    recency: IntArray
    monetary: FloatArray
    mens: BoolArray
    womens: BoolArray
    zip_code: IntArray
    channel: IntArray
    new: BoolArray

    @staticmethod
    def of_simulator(sim: Simulator) -> CustomerFeatures:
        """The features of a simulator's current population of the ``hillstrom`` scenario.

        Raises:
            ValueError: the scenario lacks a ``new`` segment, a ``mens``/``womens`` line, or
                the ``zip_code``/``purchase_channel`` attributes.
        """
        sc = sim.scenario
        pop = sim.population
        try:
            new_code = list(sc.population.segments).index("new")
            lines = sc.population.product_lines.lines
            mens, womens = lines.index("mens"), lines.index("womens")
            zip_map = np.array([ZIP_CODES.index(v) for v in sc.population.attributes["zip_code"]])
            ch_map = np.array(
                [PURCHASE_CHANNELS.index(v) for v in sc.population.attributes["purchase_channel"]]
            )
        except (ValueError, KeyError) as err:
            raise ValueError(f"scenario {sc.name!r} is not Hillstrom-shaped: {err}") from None
        return CustomerFeatures(
            recency=pop.recency,
            monetary=pop.monetary,
            mens=pop.lines_observed[:, mens],
            womens=pop.lines_observed[:, womens],
            zip_code=zip_map[pop.attributes["zip_code"]],
            channel=ch_map[pop.attributes["purchase_channel"]],
            new=pop.segment == new_code,
        )

    def history_band(self) -> IntArray:
        """``(n,)`` the file's ``history_segment`` band, 0..6."""
        return np.searchsorted(np.array(HISTORY_EDGES), self.monetary, side="right").astype(np.int64)

    def groups(self, *, fit: bool = False) -> dict[str, BoolArray]:
        """Masks of the report groups, or (``fit=True``) of the fitting cells.

        The fitting cells are the product-line x segment groups, zip codes, purchase channels,
        recency months and history bands; the report groups are :data:`REPORT_GROUPS`.
        """
        mens_only = self.mens & ~self.womens
        womens_only = self.womens & ~self.mens
        both = self.mens & self.womens
        lines = {"mens_only": mens_only, "womens_only": womens_only, "mens_and_womens": both}
        if not fit:
            return {
                "all": np.ones(self.new.shape, bool),
                **lines,
                "new": self.new,
                "returning": ~self.new,
            }
        out: dict[str, BoolArray] = {"all": np.ones(self.new.shape, bool)}
        for lname, lmask in lines.items():
            out[f"{lname}&new"] = lmask & self.new
            out[f"{lname}&returning"] = lmask & ~self.new
        for code, zname in enumerate(ZIP_CODES):
            out[f"zip={zname}"] = self.zip_code == code
        for code, cname in enumerate(PURCHASE_CHANNELS):
            out[f"channel={cname}"] = self.channel == code
        for month in range(1, 13):
            out[f"recency={month}"] = self.recency == month
        band = self.history_band()
        for b in range(len(HISTORY_EDGES) + 1):
            out[f"history_band={b + 1}"] = band == b
        return out


def _rate_se(k: float, n: int) -> float:
    """Binomial standard error of a rate, with a Laplace-smoothed rate (never zero)."""
    p = (k + 1.0) / (n + 2.0)
    return math.sqrt(p * (1.0 - p) / max(n, 1))


@dataclass(frozen=True)
class _Cell:
    group: str
    arm: int
    metric: str
    data: float
    se: float
    n: int


def data_cells(data: HillstromData, *, fit: bool = False) -> list[_Cell]:
    """The file's value and standard error for every (group, arm, metric).

    Args:
        data: the loaded file.
        fit: the fitting cells (visit and conversion; spend for ``all`` only) instead of the
            report groups (all three metrics).
    """
    out: list[_Cell] = []
    for gname, gmask in data.features().groups(fit=fit).items():
        for arm in range(len(DATA_ARMS)):
            m = gmask & (data.arm == arm)
            n = int(np.count_nonzero(m))
            if n == 0:
                continue
            for metric in METRICS:
                if fit and metric == "spend" and gname != "all":
                    continue
                if metric == "spend":
                    s = data.spend[m]
                    se = float(s.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
                    out.append(_Cell(gname, arm, metric, float(s.mean()), se, n))
                else:
                    k = float(np.count_nonzero(getattr(data, metric)[m]))
                    out.append(_Cell(gname, arm, metric, k / n, _rate_se(k, n), n))
    return out


# -- the report -------------------------------------------------------------------------------


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


# -- fitting ----------------------------------------------------------------------------------

ParamKind = Literal["log", "linear"]


@dataclass(frozen=True)
class FitParameter:
    """One fitted number of the scenario.

    Attributes:
        path: where it lives in the scenario YAML (``("contents", "mens", "appeal")``); mix
            weights use ``("population", "segments", <segment>, "uplift_mix", <type>)`` and are
            normalized within their segment (``lost_cause`` is the reference, weight 1).
        prior: the default value the weak prior pulls towards.
        prior_sd: prior standard deviation, on the log scale for ``log`` parameters.
        lower, upper: bounds.
        kind: ``log`` (positive, fitted on the log scale) or ``linear``.
    """

    path: tuple[str, ...]
    prior: float
    prior_sd: float
    lower: float
    upper: float
    kind: ParamKind = "log"

    @property
    def name(self) -> str:
        """Dotted path."""
        return ".".join(self.path)


def _fit_parameters() -> tuple[FitParameter, ...]:
    ps: list[FitParameter] = []
    # Per type: (prior, lower, upper) of organic_visit, organic_conversion, click and
    # click_conversion. The bounds keep the types' meaning: sure things visit and buy on their
    # own; persuadables click at least as much as average and convert their clicks well; lost
    # causes click and convert little; sleeping dogs click little (and visit less once contacted,
    # ``contact_visit`` 0.6, fixed).
    types: dict[str, tuple[tuple[float, float, float], ...]] = {
        "sure_thing": ((0.25, 0.10, 0.50), (0.07, 0.02, 0.30), (1.0, 1.0, 1.0), (0.10, 0.02, 0.40)),
        "persuadable": ((0.07, 0.01, 0.15), (0.05, 0.005, 0.15), (1.6, 1.0, 4.0), (0.14, 0.05, 0.5)),
        "lost_cause": ((0.05, 0.002, 0.10), (0.03, 0.001, 0.05), (0.5, 0.05, 1.0), (0.02, 5e-4, 0.04)),
        "sleeping_dog": ((0.15, 0.03, 0.40), (0.05, 0.005, 0.15), (0.4, 0.05, 1.0), (0.03, 1e-3, 0.05)),
    }
    for t, bounds in types.items():
        for name, (prior, lo, hi) in zip(
            ("organic_visit", "organic_conversion", "click", "click_conversion"), bounds, strict=True
        ):
            if lo < hi:  # sure_thing's click is the reference (1): the contents carry the scale
                ps.append(FitParameter(("uplift_types", t, name), prior, 0.5, lo, hi))
    mixes = {
        "new": {"sure_thing": 0.10, "persuadable": 0.40, "sleeping_dog": 0.10},
        "returning": {"sure_thing": 0.25, "persuadable": 0.30, "sleeping_dog": 0.10},
    }
    lost = {"new": 0.40, "returning": 0.35}
    for seg, mix in mixes.items():
        for t, share in mix.items():
            path = ("population", "segments", seg, "uplift_mix", t)
            ps.append(FitParameter(path, share / lost[seg], 0.7, 1e-3, 1e3))
    ps.append(FitParameter(("population", "product_lines", "combos", "womens", "visit"), 1, 1, 0.1, 10))
    ps.append(
        FitParameter(("population", "product_lines", "combos", "mens+womens", "visit"), 1.5, 1, 0.1, 10)
    )
    for attr, values in (("zip_code", ("suburban", "rural")), ("purchase_channel", ("web", "multichannel"))):
        for v in values:
            for eff in ("visit", "click"):
                ps.append(FitParameter(("population", "attributes", attr, v, eff), 1.0, 1.0, 0.1, 10))
    ps.append(FitParameter(("population", "recency_effect"), -0.05, 0.1, -0.5, 0.5, "linear"))
    ps.append(FitParameter(("population", "monetary_effect"), 0.1, 0.3, -1.0, 1.0, "linear"))
    for content, (appeal, lm_mens, lm_womens) in (("mens", (0.3, 1.0, 1.0)), ("womens", (0.3, 0.3, 1.0))):
        ps.append(FitParameter(("contents", content, "appeal"), appeal, 2.0, 1e-3, 20))
        ps.append(FitParameter(("contents", content, "line_match", "mens"), lm_mens, 2.0, 1e-3, 20))
        ps.append(FitParameter(("contents", content, "line_match", "womens"), lm_womens, 2.0, 1e-3, 20))
    ps.append(FitParameter(("contents", "womens", "conversion"), 1.0, 1.0, 0.05, 20))
    ps.append(FitParameter(("order_value", "mean"), 116.0, 1.0, 10.0, 1000.0))
    return tuple(ps)


FIT_PARAMETERS: tuple[FitParameter, ...] = _fit_parameters()
"""The fitted numbers, their priors and bounds (see the module docstring)."""


def _set(d: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for key in path[:-1]:
        d = d.setdefault(key, {})
    d[path[-1]] = value


def _get(d: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        d = d[key]
    return d


def _mix_weights(values: dict[tuple[str, ...], float], segment: str) -> dict[str, float]:
    """Normalized uplift mix of a segment from its weights (``lost_cause`` weight 1)."""
    w = {t: values.get(("population", "segments", segment, "uplift_mix", t), 1.0) for t in UPLIFT_TYPES}
    total = sum(w.values())
    return {t: x / total for t, x in w.items()}


def apply_parameters(base: dict[str, Any], values: dict[tuple[str, ...], float]) -> dict[str, Any]:
    """A copy of a scenario dict with fitted values written in (mix weights normalized).

    Args:
        base: parsed scenario YAML.
        values: parameter path -> value (see :class:`FitParameter`).
    """
    out: dict[str, Any] = copy.deepcopy(base)
    segments = set()
    for path, v in values.items():
        if "uplift_mix" in path:
            segments.add(path[2])
            continue
        _set(out, path, float(v))
    for seg in segments:
        out["population"]["segments"][seg]["uplift_mix"] = _mix_weights(values, seg)
    return out


def _base_dict() -> dict[str, Any]:
    text = (resources.files("simulators") / "scenarios" / f"{SCENARIO_NAME}.yaml").read_text(encoding="utf-8")
    d: dict[str, Any] = yaml.safe_load(text)
    return d


class _TypeMarginalModel:
    """Exact per-cell expectations of a scenario, averaged over uplift types with the mixes.

    One population per uplift type (everyone of that type, same seed: identical features and
    hidden draws otherwise) gives ``E[metric | customer, arm, type]`` from
    :meth:`Simulator.expected`; the customer's expectation is their segment's mix-weighted sum.
    """

    def __init__(self, cells: list[_Cell], n_customers: int, seed: int) -> None:
        self.cells = cells
        self.n = n_customers
        self.seed = seed
        self._masks: dict[str, BoolArray] | None = None
        self._segment: IntArray | None = None

    def evaluate(self, scenario_dict: dict[str, Any]) -> FloatArray:
        """The model's value of every cell, in the order of ``cells``."""
        seg_names = list(scenario_dict["population"]["segments"])
        mixes = np.array(
            [
                [scenario_dict["population"]["segments"][s]["uplift_mix"].get(t, 0.0) for t in UPLIFT_TYPES]
                for s in seg_names
            ]
        )
        n, n_arms = self.n, len(ARM_NAMES)
        tot = {m: np.zeros((n, n_arms)) for m in METRICS}
        cust = np.arange(n, dtype=np.int64)[:, None]
        arms = np.arange(n_arms, dtype=np.int64)[None, :]
        for t_idx, t in enumerate(UPLIFT_TYPES):
            d = copy.deepcopy(scenario_dict)
            for s in seg_names:
                d["population"]["segments"][s]["uplift_mix"] = {t: 1.0}
            sim = Simulator(parse_scenario(d, f"hillstrom fit ({t})"), n)
            sim.reset(self.seed)
            if self._masks is None:
                self._masks = CustomerFeatures.of_simulator(sim).groups(fit=True)
                self._segment = sim.population.segment
            assert self._segment is not None
            w = mixes[self._segment, t_idx][:, None]
            gt = sim.expected(cust, arms)
            tot["visit"] += w * gt.p_visit
            tot["conversion"] += w * gt.p_convert
            tot["spend"] += w * gt.revenue
        assert self._masks is not None
        means = {(g, m): tot[m][mask].mean(axis=0) for g, mask in self._masks.items() for m in METRICS}
        return np.array([means[(c.group, c.metric)][c.arm] for c in self.cells])


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_hillstrom`.

    Attributes:
        values: fitted value of every :data:`FIT_PARAMETERS` path (mix weights unnormalized).
        scenario: the base scenario dict with the rounded fitted values written in.
        chi2: sum of squared data residuals at the optimum (prior terms excluded).
        n_cells: number of data targets.
        n_evaluations: model evaluations used.
        message: the optimizer's message.
    """

    values: dict[tuple[str, ...], float]
    scenario: dict[str, Any]
    chi2: float
    n_cells: int
    n_evaluations: int
    message: str


def _round_sig(x: float, digits: int = 3) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def fit_hillstrom(
    data_path: str | Path,
    *,
    n_customers: int = 32_000,
    seed: int = 20_080_101,
    max_nfev: int = 60,
    start: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit :data:`FIT_PARAMETERS` to the file by prior-regularized weighted least squares.

    Args:
        data_path: the Hillstrom CSV.
        n_customers: size of the population the expectations are averaged over.
        seed: seed of that population.
        max_nfev: cap on optimizer iterations (each costs one evaluation per parameter).
        start: scenario dict to start from (default: the shipped ``hillstrom.yaml``).
        progress: called with a line of text after each evaluation batch, if given.

    Returns:
        The fitted values and the scenario dict with them, rounded to 3 significant digits.
    """
    from scipy.optimize import least_squares

    data = load_hillstrom(data_path)
    cells = data_cells(data, fit=True)
    target = np.array([c.data for c in cells])
    weight = np.array([(ARM_WEIGHT if c.group == "all" else 1.0) / c.se for c in cells])
    base = start if start is not None else refit_start(data)
    params = FIT_PARAMETERS
    model = _TypeMarginalModel(cells, n_customers, seed)

    def to_x(p: FitParameter, v: float) -> float:
        return math.log(v) if p.kind == "log" else v

    def from_x(p: FitParameter, x: float) -> float:
        return math.exp(x) if p.kind == "log" else x

    x0 = np.array([to_x(p, _current_value(base, p)) for p in params])
    prior = np.array([to_x(p, p.prior) for p in params])
    prior_sd = np.array([p.prior_sd for p in params])
    lo = np.array([to_x(p, p.lower) for p in params])
    hi = np.array([to_x(p, p.upper) for p in params])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    calls = [0]

    def values_of(x: FloatArray) -> dict[tuple[str, ...], float]:
        return {p.path: from_x(p, float(v)) for p, v in zip(params, x, strict=True)}

    def residuals(x: FloatArray) -> FloatArray:
        calls[0] += 1
        pred = model.evaluate(apply_parameters(base, values_of(x)))
        r_data = (pred - target) * weight
        if progress is not None and calls[0] % len(params) == 1:
            progress(f"evaluation {calls[0]}: weighted chi2 {float(r_data @ r_data):.1f}")
        return np.concatenate([r_data, (x - prior) / prior_sd])

    sol = least_squares(
        residuals, x0, bounds=(lo, hi), method="trf", x_scale="jac", diff_step=1e-3, max_nfev=max_nfev
    )
    values = values_of(sol.x)
    rounded: dict[tuple[str, ...], float] = {}
    for p in params:
        v = values[p.path]
        rounded[p.path] = round(v, 3) if p.kind == "linear" else _round_sig(v)
    scen = apply_parameters(base, rounded)
    for seg in ("new", "returning"):
        mix = scen["population"]["segments"][seg]["uplift_mix"]
        scen["population"]["segments"][seg]["uplift_mix"] = _round_shares(mix, 3)
    r = (model.evaluate(scen) - target) / np.array([c.se for c in cells])
    return FitResult(
        values=values,
        scenario=scen,
        chi2=float(r @ r),
        n_cells=len(cells),
        n_evaluations=calls[0],
        message=str(sol.message),
    )


def _current_value(d: dict[str, Any], p: FitParameter) -> float:
    """The value of a fitted parameter in a scenario dict (a mix weight: share / lost_cause)."""
    if "uplift_mix" in p.path:
        mix = _get(d, p.path[:-1])
        ref = mix.get("lost_cause", 0.0)
        v = mix.get(p.path[-1], 0.0) / ref if ref > 0 else p.prior
    else:
        v = float(_get(d, p.path)) if _has(d, p.path) else p.prior
    return min(max(v, p.lower), p.upper)


def refit_start(data: HillstromData) -> dict[str, Any]:
    """Where a refit starts: the file's distributions (:func:`hillstrom_skeleton`) with the
    response parameters of the shipped ``hillstrom.yaml`` (the priors if there is none)."""
    skeleton = hillstrom_skeleton(data)
    try:
        shipped = _base_dict()
    except FileNotFoundError:
        return skeleton
    return apply_parameters(skeleton, {p.path: _current_value(shipped, p) for p in FIT_PARAMETERS})


def _has(d: dict[str, Any], path: Sequence[str]) -> bool:
    try:
        _get(d, path)
    except (KeyError, TypeError):
        return False
    return True


def _round_shares(shares: dict[str, float], decimals: int) -> dict[str, float]:
    """Round shares so they still sum to exactly 1 (the largest absorbs the rounding)."""
    out = {k: round(v, decimals) for k, v in shares.items()}
    big = max(out, key=lambda k: out[k])
    out[big] = round(out[big] + 1.0 - sum(out.values()), decimals)
    return out


# -- the scenario file --------------------------------------------------------------------------

ORDER_VALUE_SIGMA = 0.85
"""Log-sd of the file's spend among converters (its mean / median ratio gives the same)."""
N_MONETARY_QUANTILES = 41


def _shares(counts: FloatArray, decimals: int = 4) -> list[float]:
    """Shares of counts, rounded, summing to exactly 1."""
    p = counts / counts.sum()
    d = _round_shares({str(i): float(x) for i, x in enumerate(p)}, decimals)
    return [d[str(i)] for i in range(len(p))]


def hillstrom_skeleton(data: HillstromData) -> dict[str, Any]:
    """The ``hillstrom`` scenario as a dict: the file's feature distributions, the fixed
    choices, and the priors of :data:`FIT_PARAMETERS` in place of fitted values."""
    f = data.features()
    segments: dict[str, Any] = {}
    for name, mask in (("new", f.new), ("returning", ~f.new)):
        q = np.quantile(f.monetary[mask], np.linspace(0.0, 1.0, N_MONETARY_QUANTILES))
        # Between quantiles the draw is uniform: set the last point so that the top slice has
        # the file's mean (the maximum itself would inflate the mean of a long tail).
        top = f.monetary[mask][f.monetary[mask] >= q[-2]]
        q[-1] = max(q[-2], 2.0 * float(top.mean()) - q[-2])
        segments[name] = {
            "share": 0.0,
            "recency": _shares(np.bincount(f.recency[mask], minlength=13)[1:].astype(float)),
            "frequency_mean": 0.3 if name == "new" else 1.5,
            "monetary_quantiles": [round(float(x), 2) for x in q],
            "uplift_mix": {},
        }
    seg_shares = _shares(np.array([np.count_nonzero(f.new), np.count_nonzero(~f.new)], float))
    segments["new"]["share"], segments["returning"]["share"] = seg_shares
    zip_shares = _shares(np.bincount(f.zip_code, minlength=3).astype(float))
    ch_shares = _shares(np.bincount(f.channel, minlength=3).astype(float))
    combo_counts = np.array(
        [
            np.count_nonzero(f.mens & ~f.womens),
            np.count_nonzero(f.womens & ~f.mens),
            np.count_nonzero(f.mens & f.womens),
        ],
        float,
    )
    combo_shares = _shares(combo_counts)
    d: dict[str, Any] = {
        "name": SCENARIO_NAME,
        "margin": 0.3,
        "population": {
            "size": len(data),
            "segments": segments,
            "attributes": {
                "zip_code": {
                    z: {"share": s, "visit": 1.0, "click": 1.0}
                    for z, s in zip(ZIP_CODES, zip_shares, strict=True)
                },
                "purchase_channel": {
                    c: {"share": s, "visit": 1.0, "click": 1.0}
                    for c, s in zip(PURCHASE_CHANNELS, ch_shares, strict=True)
                },
            },
            "product_lines": {
                "combos": {
                    c: {"share": s, "visit": 1.0}
                    for c, s in zip(("mens", "womens", "mens+womens"), combo_shares, strict=True)
                },
                "observation_noise": 0.0,
            },
            "propensity_sigma": 0.5,
            "offer_sensitivity_sigma": 0.5,
            "recency_effect": 0.0,
            "monetary_effect": 0.0,
            "preferred_channel_accuracy": 1.0,
        },
        "channels": {
            "email": {
                "send_cost": 0.001,
                "reach": 1.0,
                "deliver_rate": 0.98,
                "open_rate": 0.25,
                "click_rate": 0.30,
                "unsubscribe_rate": 0.002,
                "affinity_sigma": 0.5,
            }
        },
        "contents": {
            k: {"appeal": 1.0, "line_match": {"mens": 0.0, "womens": 0.0}, "conversion": 1.0}
            for k in ("mens", "womens")
        },
        "offers": {"none": {}},
        "uplift_types": {
            t: {
                "organic_visit": 0.0,
                "organic_conversion": 0.0,
                "click": 1.0,
                "click_conversion": 0.0,
                "offer_response": 0.0,
                "contact_visit": cv,
                "unsubscribe": u,
            }
            for t, u, cv in (
                ("sure_thing", 0.5, 1.0),
                ("persuadable", 1.0, 1.0),
                ("lost_cause", 1.5, 1.0),
                ("sleeping_dog", 4.0, 0.6),
            )
        },
        "order_value": {"mean": 0.0, "sigma": ORDER_VALUE_SIGMA, "monetary_elasticity": 0.0},
        "dynamics": {
            "fatigue_decay": 0.5,
            "fatigue_open_penalty": 0.3,
            "fatigue_unsubscribe": 0.5,
            "conversion_delay": [1.0],
        },
        "arms": ["email/mens/none", "email/womens/none"],
        "default_goal": {
            "metric": "conversions",
            "target": 1500,
            "budget": 150,
            "max_iterations": 12,
            "customers_per_iteration": 16_000,
        },
    }
    values = {p.path: p.prior for p in FIT_PARAMETERS}
    out = apply_parameters(d, values)
    for seg in ("new", "returning"):
        mix = out["population"]["segments"][seg]["uplift_mix"]
        out["population"]["segments"][seg]["uplift_mix"] = _round_shares(mix, 3)
    return out


def _flow(d: dict[str, Any]) -> str:
    """A one-line YAML flow mapping."""
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in d.items()) + "}"


def _scalar(v: Any) -> str:
    if isinstance(v, dict):
        return _flow(v)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


def render_hillstrom_yaml(scenario: dict[str, Any]) -> str:
    """The ``hillstrom.yaml`` text (with comments) for a scenario dict of Hillstrom shape."""
    sc = scenario
    pop = sc["population"]
    lines = [
        "# Kevin Hillstrom's e-mail experiment (MineThatData, 2008) as a simulated world.",
        "# Generated by simulators/calibration.py (render_hillstrom_yaml) from",
        "# ../shared/data/hillstrom.csv: feature distributions copied from the file, response",
        "# parameters fitted to its per-arm and per-group visit, conversion and spend (see the",
        "# module docstring there for the method). Rerun:",
        "#   python -m simulators.calibration fit --data ../shared/data/hillstrom.csv \\",
        "#       --write simulators/scenarios/hillstrom.yaml",
        "# One iteration is the file's two-week window. Arms: 0 = no e-mail, 1 = men's e-mail,",
        "# 2 = women's e-mail.",
        f"name: {sc['name']}",
        "description: >",
        "  64,000 customers of a US retailer who bought in the last year (Hillstrom's e-mail",
        "  challenge), e-mailed the men's or the women's collection or nothing. Calibrated to the",
        "  file: per-arm visit, conversion and spend, and the responses of men-only, women-only",
        "  and both-line buyers and of newbies vs returning customers.",
        f"margin: {sc['margin']}",
        "",
        "population:",
        f"  size: {pop['size']}",
        "  segments:",
    ]
    for seg, cfg in pop["segments"].items():
        label = "first purchase within the last twelve months" if seg == "new" else "older"
        lines += [
            f"    {seg}:  # customers: {label}",
            f"      share: {cfg['share']}",
            f"      recency: {_scalar(cfg['recency'])}",
            f"      frequency_mean: {cfg['frequency_mean']}  # not in the file",
            "      # the file's history: quantiles at probabilities 0, 0.025, ..., 0.975 and a last",
            "      # point giving the top 2.5% the file's mean",
            f"      monetary_quantiles: {_scalar(cfg['monetary_quantiles'])}",
            f"      uplift_mix: {_flow(cfg['uplift_mix'])}",
        ]
    lines.append("  attributes:")
    for attr, values in pop["attributes"].items():
        lines.append(f"    {attr}:")
        for v, cfg in values.items():
            lines.append(f"      {v}: {_flow(cfg)}")
    pl = pop["product_lines"]
    lines += ["  product_lines:", "    combos:"]
    for combo, cfg in pl["combos"].items():
        lines.append(f"      {combo}: {_flow(cfg)}")
    lines.append(f"    observation_noise: {pl['observation_noise']}")
    for key in (
        "propensity_sigma",
        "offer_sensitivity_sigma",
        "recency_effect",
        "monetary_effect",
        "preferred_channel_accuracy",
    ):
        lines.append(f"  {key}: {_scalar(pop[key])}")
    lines += ["", "channels:"]
    for ch, cfg in sc["channels"].items():
        lines.append(f"  {ch}: {_flow(cfg)}")
    lines += ["", "contents:"]
    for k, cfg in sc["contents"].items():
        lines.append(f"  {k}: {_flow(cfg)}")
    lines += ["", "offers:"]
    for o, cfg in sc["offers"].items():
        lines.append(f"  {o}: {_flow(cfg)}")
    lines += ["", "uplift_types:"]
    for t in UPLIFT_TYPES:
        lines.append(f"  {t}: {_flow(sc['uplift_types'][t])}")
    lines += [
        "",
        f"order_value: {_flow(sc['order_value'])}",
        "",
        "dynamics:",
        *(f"  {k}: {_scalar(v)}" for k, v in sc["dynamics"].items()),
        "",
        f"arms: {_scalar(sc['arms'])}",
        "",
        "# E-mail everyone (16,000 a wave) gets about 200 conversions a wave: the target needs",
        "# most of the budget's 150,000 sends; a good policy gets there with fewer.",
        "default_goal:",
        *(f"  {k}: {_scalar(v)}" for k, v in sc["default_goal"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.calibration {report,fit} --data PATH [...]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.calibration", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="compare the hillstrom scenario with the file")
    rep.add_argument("--data", required=True, type=Path)
    rep.add_argument("--scenario", type=Path, default=None, help="a scenario YAML to check")
    rep.add_argument("--json", action="store_true")
    fit = sub.add_parser("fit", help="refit the response parameters and write the YAML")
    fit.add_argument("--data", required=True, type=Path)
    fit.add_argument("--write", type=Path, default=None, help="write the scenario YAML here")
    fit.add_argument("--from-priors", action="store_true", help="start from the priors")
    fit.add_argument("--max-nfev", type=int, default=60)
    args = parser.parse_args(argv)
    if args.command == "report":
        sc = load_scenario(args.scenario) if args.scenario is not None else None
        report = calibration_report(args.data, scenario=sc)
        if args.json:
            import json

            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(format_calibration(report))
        return 0 if report.all_within_tolerance else 1
    data = load_hillstrom(args.data)
    start = hillstrom_skeleton(data) if args.from_priors else refit_start(data)
    result = fit_hillstrom(
        args.data,
        start=start,
        max_nfev=args.max_nfev,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(
        f"fit: chi2 {result.chi2:.1f} on {result.n_cells} cells, "
        f"{result.n_evaluations} evaluations; {result.message}",
        file=sys.stderr,
    )
    text = render_hillstrom_yaml(result.scenario)
    parse_scenario(yaml.safe_load(text), "fitted hillstrom")
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
