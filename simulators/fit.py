"""A simulator fitted to data: any randomized log of channel, content and offer arms becomes a
scenario YAML (``campaign-opt scenario fit --log FILE``).

The log (:mod:`simulators.fit_data`) has one row per customer: features, the arm given (one arm
column or channel / content / offer columns, with a "no contact" value) and outcomes (visit or
click, conversion, spend). :class:`LogMapping` names the columns (defaults: the Hillstrom file).

What is copied from the log (no fitting, :func:`simulators.fit_scenario.skeleton`): the
population (segment shares; per segment the recency distribution over whole months and the
monetary values as 41 quantiles; the shares of each categorical attribute's values and of the
product-line combinations bought), the arms (their channels, contents and offers), the order
value's log-sd among converters.

What is fitted (:func:`simulators.fit_params.fit_parameters`): the four uplift types' organic
visit, organic conversion, click and click-conversion rates within bounds that keep each type's
meaning; each segment's uplift mix; the visit effect of the product-line combinations and the
visit and click effects of the attribute values (the first of each is the reference); the
recency and monetary effects on organic visits; each content's appeal, product-line match and
conversion multiplier (the first content is the conversion reference); the other channels'
click rates; the offers' lift; the mean order value. Channel rates are otherwise fixed (only
their product with the contents' appeal is identified).

Targets: the log's visit and conversion rate for every (cell, arm), where the cells are the
product-line combination x segment groups, the attribute values, the recency months and the
monetary bands (overlapping cells: a method of moments), plus the per-arm visit, conversion and
spend per customer of the whole log, weighted :data:`ARM_WEIGHT` times more.

How (:func:`fit_log`): weighted least squares with ``scipy.optimize.least_squares`` (trust region,
bounds, log scale for positive numbers). Each residual is ``(model - data) / se_data`` (binomial
standard error; spend: the sample standard error); a weak Gaussian prior on every parameter keeps
the parts the data do not identify (how the response splits over the four uplift types) near the
skeleton's values. The model values are the simulator's exact expectations
(:meth:`Simulator.expected`) on a drawn population, averaged over the uplift types with the mix
weights (one population per type, same seed, so the objective is smooth): the fit uses the
simulator's own code, not a copy of its formulas. The fitted numbers are rounded to three
significant digits. :func:`fit_log_file` can repeat the fit from its own optimum until the
weighted residual sum of squares stops moving (``rounds``; one round from the priors already
puts every row of the Hillstrom report within tolerance). On the Hillstrom file (64,000 rows,
32,000 simulated customers, 41 parameters, 60 iterations) a round takes about five CPU minutes.

How the result is checked (:func:`simulators.fit_report.fit_report`): each arm sent to every
customer of fresh simulated populations, sampled events, beside the log for every report group
(everyone, each product-line combination, each segment), arm and metric, with a tolerance per
row. The Hillstrom calibration (:mod:`simulators.calibration`) is this fit with the Hillstrom
mapping and priors.

With ``audience`` (:func:`simulators.fit_scenario.with_audience`), the fitted scenario's
customers follow an owner's customer file (its marginal feature distributions) instead of the
log's: a world to forecast and pretrain in for the owner's own customers.

Example:
    >>> from simulators.fit import fit_log_file
    >>> result = fit_log_file("../shared/data/hillstrom.csv")  # doctest: +SKIP
    >>> print(result.yaml)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators.fit_data import (
    METRICS,
    Cell,
    Features,
    LogData,
    LogError,
    LogMapping,
    data_cells,
    features_of,
    load_log,
    read_columns,
)
from simulators.fit_params import (
    FitParameter,
    _current_value,
    _round_shares,
    apply_parameters,
    fit_parameters,
)
from simulators.fit_report import (
    ARM_TOLERANCE,
    GROUP_Z,
    CalibrationReport,
    CalibrationRow,
    fit_report,
    format_report,
    format_tolerance,
)
from simulators.fit_scenario import render_scenario_yaml, skeleton, with_audience
from simulators.scenario import UPLIFT_TYPES, parse_scenario
from simulators.simulator import Simulator
from simulators.types import BoolArray, FloatArray, IntArray

__all__ = [
    "ARM_TOLERANCE",
    "ARM_WEIGHT",
    "GROUP_Z",
    "CalibrationReport",
    "CalibrationRow",
    "FitResult",
    "LogData",
    "LogError",
    "LogMapping",
    "ScenarioFit",
    "fit_log",
    "fit_log_file",
    "fit_report",
    "format_report",
    "format_tolerance",
    "load_log",
    "skeleton",
]

ARM_WEIGHT = 6.0
"""How much more the whole-log per-arm targets weigh in the fit than the cell targets."""


class TypeMarginalModel:
    """Exact per-cell expectations of a scenario, averaged over uplift types with the mixes.

    One population per uplift type (everyone of that type, same seed: identical features and
    hidden draws otherwise) gives ``E[metric | customer, arm, type]`` from
    :meth:`Simulator.expected`; the customer's expectation is their segment's mix-weighted sum.

    Args:
        cells: the targets.
        like: the log's features (the simulated population is grouped like them).
        n_customers: size of the population the expectations are averaged over.
        seed: its seed.
    """

    def __init__(self, cells: list[Cell], like: Features, n_customers: int, seed: int) -> None:
        self.cells = cells
        self.like = like
        self.n = n_customers
        self.seed = seed
        self._masks: dict[str, BoolArray] | None = None
        self._segment: IntArray | None = None

    def evaluate(self, scenario_dict: dict[str, Any]) -> FloatArray:
        """``(len(cells),)`` the model's value of every cell (NaN for a cell with no simulated
        customer)."""
        seg_names = list(scenario_dict["population"]["segments"])
        mixes = np.array(
            [
                [scenario_dict["population"]["segments"][s]["uplift_mix"].get(t, 0.0) for t in UPLIFT_TYPES]
                for s in seg_names
            ]
        )
        n, n_arms = self.n, len(scenario_dict["arms"]) + 1
        tot = {m: np.zeros((n, n_arms)) for m in METRICS}
        cust = np.arange(n, dtype=np.int64)[:, None]
        arms = np.arange(n_arms, dtype=np.int64)[None, :]
        for t_idx, t in enumerate(UPLIFT_TYPES):
            d = copy.deepcopy(scenario_dict)
            for s in seg_names:
                d["population"]["segments"][s]["uplift_mix"] = {t: 1.0}
            sim = Simulator(parse_scenario(d, f"{d['name']} fit ({t})"), n)
            sim.reset(self.seed)
            if self._masks is None:
                self._masks = Features.of_simulator(sim, self.like).groups(fit=True)
                self._segment = sim.population.segment
            assert self._segment is not None
            w = mixes[self._segment, t_idx][:, None]
            gt = sim.expected(cust, arms)
            tot["visit"] += w * gt.p_visit
            tot["conversion"] += w * gt.p_convert
            tot["spend"] += w * gt.revenue
        assert self._masks is not None
        out = np.full(len(self.cells), np.nan)
        for i, c in enumerate(self.cells):
            mask = self._masks.get(c.group)
            if mask is not None and mask.any():
                out[i] = tot[c.metric][mask, c.arm].mean()
        return out


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_log`.

    Attributes:
        values: fitted value of every parameter path (mix weights unnormalized).
        scenario: the start scenario dict with the rounded fitted values written in.
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


def fit_log(
    log: LogData,
    params: Sequence[FitParameter],
    start: dict[str, Any],
    *,
    n_customers: int = 32_000,
    seed: int = 20_080_101,
    max_nfev: int = 60,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit ``params`` to a log by prior-regularized weighted least squares.

    Args:
        log: the log.
        params: the fitted numbers with their priors and bounds (:func:`fit_parameters`).
        start: scenario dict to start from (its other values are kept).
        n_customers: size of the population the expectations are averaged over.
        seed: seed of that population.
        max_nfev: cap on optimizer iterations (each costs one evaluation per parameter).
        progress: called with a line of text after each evaluation batch, if given.

    Returns:
        The fitted values and the scenario dict with them, rounded to 3 significant digits.
    """
    from scipy.optimize import least_squares

    cells = data_cells(log, fit=True)
    target = np.array([c.data for c in cells])
    se = np.array([c.se for c in cells])
    weight = np.array([(ARM_WEIGHT if c.group == "all" else 1.0) / c.se for c in cells])
    model = TypeMarginalModel(cells, log.features, n_customers, seed)
    params = tuple(params)

    def to_x(p: FitParameter, v: float) -> float:
        return math.log(v) if p.kind == "log" else v

    def from_x(p: FitParameter, x: float) -> float:
        return math.exp(x) if p.kind == "log" else x

    x0 = np.array([to_x(p, _current_value(start, p)) for p in params])
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
        pred = model.evaluate(apply_parameters(start, values_of(x)))
        r_data = np.nan_to_num((pred - target) * weight)
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
    scen = apply_parameters(start, rounded)
    for cfg in scen["population"]["segments"].values():
        cfg["uplift_mix"] = _round_shares(cfg["uplift_mix"], 3)
    r = np.nan_to_num((model.evaluate(scen) - target) / se)
    return FitResult(
        values=values,
        scenario=scen,
        chi2=float(r @ r),
        n_cells=len(cells),
        n_evaluations=calls[0],
        message=str(sol.message),
    )


def log_parameters(log: LogData, base: dict[str, Any]) -> tuple[FitParameter, ...]:
    """The fitted numbers of a log's scenario, with ``base``'s values as priors."""
    f = log.features
    return fit_parameters(
        base,
        recency=f.recency is not None and f.max_recency > 1,
        monetary=f.monetary is not None,
        spend=log.spend is not None,
    )


@dataclass(frozen=True)
class ScenarioFit:
    """Outcome of :func:`fit_log_file`.

    Attributes:
        scenario: the fitted scenario dict (with the audience's customers when one was given).
        yaml: its YAML text (validated by :func:`simulators.scenario.parse_scenario`).
        fit: the last round of the fit.
        chi2_rounds: the weighted residual sum of squares after each round.
        report: the fitted scenario (the log's customers) beside the log.
        notes: what was left out or assumed (missing columns, audience values unseen in the log).
    """

    scenario: dict[str, Any]
    yaml: str
    fit: FitResult
    chi2_rounds: tuple[float, ...]
    report: CalibrationReport
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: scenario name, fit statistics, notes and the tolerance report."""
        return {
            "scenario": self.scenario["name"],
            "chi2": self.fit.chi2,
            "chi2_rounds": list(self.chi2_rounds),
            "n_cells": self.fit.n_cells,
            "n_evaluations": self.fit.n_evaluations,
            "notes": list(self.notes),
            "report": self.report.to_dict(),
        }


def fit_log_file(
    log_path: str | Path,
    mapping: LogMapping | None = None,
    *,
    audience: str | Path | None = None,
    start: dict[str, Any] | None = None,
    rounds: int = 1,
    max_nfev: int = 60,
    n_customers: int = 32_000,
    seeds: Sequence[int] = (0, 1, 2),
    report_customers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScenarioFit:
    """Fit a scenario to a log file and check it: the whole of ``campaign-opt scenario fit``.

    Args:
        log_path: the log (CSV or Parquet).
        mapping: its columns (default: :class:`LogMapping`'s, the Hillstrom file's names).
        audience: an owner's customer file (CSV or Parquet, the log's feature columns): the
            fitted scenario's customers follow its distributions.
        start: a scenario dict to start from (default: the skeleton's priors).
        rounds: fits, each from the last one's optimum, until the weighted residual sum of
            squares moves by less than 1% (at most this many).
        max_nfev: optimizer iterations per round.
        n_customers: population the fit's expectations are averaged over.
        seeds: simulator seeds of the report.
        report_customers: simulated customers per seed in the report (default: the log's rows).
        progress: called with lines of progress text.

    Returns:
        The fitted scenario, its YAML, the fit and the tolerance report.

    Raises:
        FileNotFoundError: no log or audience file.
        LogError: a column or value the mapping cannot use.
    """
    mapping = mapping if mapping is not None else LogMapping()
    log = load_log(log_path, mapping)
    base = skeleton(log, mapping)
    params = log_parameters(log, base)
    current = start if start is not None else base
    chi2s: list[float] = []
    result: FitResult | None = None
    for i in range(max(rounds, 1)):
        result = fit_log(log, params, current, n_customers=n_customers, max_nfev=max_nfev, progress=progress)
        chi2s.append(result.chi2)
        if progress is not None:
            progress(f"round {i + 1}: chi2 {result.chi2:.1f} on {result.n_cells} cells")
        current = result.scenario
        if len(chi2s) > 1 and abs(chi2s[-2] - chi2s[-1]) <= 0.01 * chi2s[-2]:
            break
    assert result is not None
    fitted = result.scenario
    report = fit_report(
        log,
        parse_scenario(fitted, "fitted"),
        seeds=seeds,
        n_customers=report_customers if report_customers is not None else len(log),
    )
    notes = list(log.notes)
    final = fitted
    if audience is not None:
        aud_cols = read_columns(audience)
        aud = features_of(aud_cols, mapping, str(audience), notes, strict=False)
        aud = Features(
            segment=aud.segment,
            segments=aud.segments,
            recency=aud.recency,
            monetary=aud.monetary,
            lines=aud.lines,
            line_names=aud.line_names,
            attributes=aud.attributes,
            bands=aud.bands,
            combo_set=aud.combo_set,
            max_recency=max(aud.max_recency, log.features.max_recency) if aud.recency is not None else 0,
        )
        final, more = with_audience(fitted, aud)
        notes += more
    text = render_scenario_yaml(
        final,
        header=[
            f"Scenario {final['name']!r} fitted to {log.source} by simulators/fit.py",
            "(campaign-opt scenario fit): feature distributions copied from the "
            + ("audience file" if audience is not None else "log")
            + ", response",
            "parameters fitted to its per-arm and per-group visit, conversion and spend",
            f"(chi2 {result.chi2:.1f} on {result.n_cells} cells).",
        ],
    )
    parse_scenario(yaml.safe_load(text), "fitted scenario")
    return ScenarioFit(
        scenario=final,
        yaml=text,
        fit=result,
        chi2_rounds=tuple(chi2s),
        report=report,
        notes=tuple(dict.fromkeys(notes)),
    )
