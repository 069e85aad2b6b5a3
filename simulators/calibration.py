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

The code, by job: :mod:`simulators.calibration_data` (the file, its features and its mapping as a
log), :mod:`simulators.calibration_report` (the report), :mod:`simulators.calibration_params` (the
fitted numbers), :mod:`simulators.calibration_yaml` (the scenario file) and
:mod:`simulators.calibration_fit` (the fit); every public name is importable from here. All of
them are the Hillstrom case of the general fit of any randomized log, :mod:`simulators.fit`
(``campaign-opt scenario fit``): the Hillstrom mapping (:data:`HILLSTROM_MAPPING`) and priors,
one fitting path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from simulators.calibration_data import (
    ARM_NAMES,
    ARM_TOLERANCE,
    DATA_ARMS,
    GROUP_Z,
    HILLSTROM_MAPPING,
    HISTORY_EDGES,
    METRICS,
    PURCHASE_CHANNELS,
    REPORT_GROUPS,
    SCENARIO_NAME,
    ZIP_CODES,
    CustomerFeatures,
    HillstromData,
    data_cells,
    load_hillstrom,
)
from simulators.calibration_fit import (
    FitResult,
    fit_hillstrom,
    refit_start,
)
from simulators.calibration_params import (
    FIT_PARAMETERS,
    FitParameter,
    ParamKind,
    apply_parameters,
)
from simulators.calibration_report import (
    CalibrationReport,
    CalibrationRow,
    calibration_report,
    format_calibration,
)
from simulators.calibration_yaml import (
    N_MONETARY_QUANTILES,
    ORDER_VALUE_SIGMA,
    hillstrom_skeleton,
    render_hillstrom_yaml,
)
from simulators.fit import ARM_WEIGHT
from simulators.scenario import load_scenario, parse_scenario

__all__ = [
    "ARM_NAMES",
    "ARM_TOLERANCE",
    "ARM_WEIGHT",
    "DATA_ARMS",
    "FIT_PARAMETERS",
    "GROUP_Z",
    "HILLSTROM_MAPPING",
    "HISTORY_EDGES",
    "METRICS",
    "N_MONETARY_QUANTILES",
    "ORDER_VALUE_SIGMA",
    "PURCHASE_CHANNELS",
    "REPORT_GROUPS",
    "SCENARIO_NAME",
    "ZIP_CODES",
    "CalibrationReport",
    "CalibrationRow",
    "CustomerFeatures",
    "FitParameter",
    "FitResult",
    "HillstromData",
    "ParamKind",
    "apply_parameters",
    "calibration_report",
    "data_cells",
    "fit_hillstrom",
    "format_calibration",
    "hillstrom_skeleton",
    "load_hillstrom",
    "refit_start",
    "render_hillstrom_yaml",
]


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
