"""The fitted numbers of the hillstrom scenario (:data:`FIT_PARAMETERS`): where each one sits in
the scenario's dict, its bounds and prior, and how a set of values is written into a scenario
(:func:`apply_parameters`); :mod:`simulators.calibration` has the method."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from simulators.scenario import UPLIFT_TYPES

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


def _current_value(d: dict[str, Any], p: FitParameter) -> float:
    """The value of a fitted parameter in a scenario dict (a mix weight: share / lost_cause)."""
    if "uplift_mix" in p.path:
        mix = _get(d, p.path[:-1])
        ref = mix.get("lost_cause", 0.0)
        v = mix.get(p.path[-1], 0.0) / ref if ref > 0 else p.prior
    else:
        v = float(_get(d, p.path)) if _has(d, p.path) else p.prior
    return min(max(v, p.lower), p.upper)


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
