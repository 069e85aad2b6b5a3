"""How the simulator is measured against the Hillstrom file: :func:`calibration_report` and
:func:`format_calibration` (:func:`simulators.fit_report.fit_report` on the file; the method is
in :mod:`simulators.calibration`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulators.calibration_data import SCENARIO_NAME, load_hillstrom
from simulators.fit_report import CalibrationReport, CalibrationRow, fit_report, format_report
from simulators.scenario import Scenario, load_scenario

__all__ = ["CalibrationReport", "CalibrationRow", "calibration_report", "format_calibration"]


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
    return fit_report(data.log, sc, seeds=seeds, n_customers=n_customers)


def format_calibration(report: CalibrationReport) -> str:
    """A plain-text table: one line per (group, arm), data / simulator / error per metric.

    Rows outside their tolerance are marked with ``*``.
    """
    return format_report(report)
