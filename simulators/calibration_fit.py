"""The fit of the hillstrom scenario's response parameters to the Hillstrom file
(:func:`fit_hillstrom`: :func:`simulators.fit.fit_log` with :data:`FIT_PARAMETERS`; the method is
in :mod:`simulators.calibration`)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simulators.calibration_data import SCENARIO_NAME, HillstromData, load_hillstrom
from simulators.calibration_params import FIT_PARAMETERS, _current_value, apply_parameters
from simulators.calibration_yaml import hillstrom_skeleton
from simulators.fit import FitResult, TypeMarginalModel, fit_log

__all__ = ["FitResult", "TypeMarginalModel", "fit_hillstrom", "refit_start"]


def _base_dict() -> dict[str, Any]:
    text = (resources.files("simulators") / "scenarios" / f"{SCENARIO_NAME}.yaml").read_text(encoding="utf-8")
    d: dict[str, Any] = yaml.safe_load(text)
    return d


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
    data = load_hillstrom(data_path)
    base = start if start is not None else refit_start(data)
    return fit_log(
        data.log,
        FIT_PARAMETERS,
        base,
        n_customers=n_customers,
        seed=seed,
        max_nfev=max_nfev,
        progress=progress,
    )


def refit_start(data: HillstromData) -> dict[str, Any]:
    """Where a refit starts: the file's distributions (:func:`hillstrom_skeleton`) with the
    response parameters of the shipped ``hillstrom.yaml`` (the priors if there is none)."""
    skeleton = hillstrom_skeleton(data)
    try:
        shipped = _base_dict()
    except FileNotFoundError:
        return skeleton
    return apply_parameters(skeleton, {p.path: _current_value(shipped, p) for p in FIT_PARAMETERS})
