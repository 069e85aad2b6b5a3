"""The fit of the hillstrom scenario's response parameters to the Hillstrom file
(:func:`fit_hillstrom`, weighted least squares over the data cells; the method is in
:mod:`simulators.calibration`)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators.calibration_data import (
    ARM_NAMES,
    ARM_WEIGHT,
    METRICS,
    SCENARIO_NAME,
    CustomerFeatures,
    HillstromData,
    _Cell,
    data_cells,
    load_hillstrom,
)
from simulators.calibration_params import (
    FIT_PARAMETERS,
    FitParameter,
    _current_value,
    _round_shares,
    apply_parameters,
)
from simulators.calibration_yaml import (
    hillstrom_skeleton,
)
from simulators.scenario import UPLIFT_TYPES, parse_scenario
from simulators.simulator import Simulator
from simulators.types import BoolArray, FloatArray, IntArray


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


def refit_start(data: HillstromData) -> dict[str, Any]:
    """Where a refit starts: the file's distributions (:func:`hillstrom_skeleton`) with the
    response parameters of the shipped ``hillstrom.yaml`` (the priors if there is none)."""
    skeleton = hillstrom_skeleton(data)
    try:
        shipped = _base_dict()
    except FileNotFoundError:
        return skeleton
    return apply_parameters(skeleton, {p.path: _current_value(shipped, p) for p in FIT_PARAMETERS})
