"""The fitted numbers of the hillstrom scenario (:data:`FIT_PARAMETERS`, what
:func:`simulators.fit_params.fit_parameters` gives for the Hillstrom file, written out): where
each one sits in the scenario's dict, its bounds and prior. :class:`FitParameter` and
:func:`apply_parameters` live in :mod:`simulators.fit_params`; :mod:`simulators.calibration`
has the method."""

from __future__ import annotations

from simulators.fit_params import (
    TYPE_FIELDS,
    TYPE_PRIORS,
    FitParameter,
    ParamKind,
    _current_value,
    _get,
    _has,
    _round_shares,
    _set,
    apply_parameters,
)

__all__ = [
    "FIT_PARAMETERS",
    "FitParameter",
    "ParamKind",
    "_current_value",
    "_get",
    "_has",
    "_round_shares",
    "_set",
    "apply_parameters",
]


def _fit_parameters() -> tuple[FitParameter, ...]:
    ps: list[FitParameter] = []
    for t, bounds in TYPE_PRIORS.items():
        for name, (prior, lo, hi) in zip(TYPE_FIELDS, bounds, strict=True):
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
"""The fitted numbers, their priors and bounds (see :mod:`simulators.calibration`); the same as
``fit_parameters(hillstrom_skeleton(data))`` (tested)."""
