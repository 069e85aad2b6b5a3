"""The fitted numbers of a scenario (:class:`FitParameter`): which ones a log's scenario has
(:func:`fit_parameters`), their bounds and priors, and how a set of values is written into a
scenario dict (:func:`apply_parameters`); :mod:`simulators.fit` has the method."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from simulators.scenario import UPLIFT_TYPES

ParamKind = Literal["log", "linear"]

TYPE_PRIORS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "sure_thing": ((0.25, 0.10, 0.50), (0.07, 0.02, 0.30), (1.0, 1.0, 1.0), (0.10, 0.02, 0.40)),
    "persuadable": ((0.07, 0.01, 0.15), (0.05, 0.005, 0.15), (1.6, 1.0, 4.0), (0.14, 0.05, 0.5)),
    "lost_cause": ((0.05, 0.002, 0.10), (0.03, 0.001, 0.05), (0.5, 0.05, 1.0), (0.02, 5e-4, 0.04)),
    "sleeping_dog": ((0.15, 0.03, 0.40), (0.05, 0.005, 0.15), (0.4, 0.05, 1.0), (0.03, 1e-3, 0.05)),
}
"""Per uplift type, (prior, lower, upper) of ``organic_visit``, ``organic_conversion``, ``click``
and ``click_conversion``. The bounds keep the types' meaning: sure things visit and buy on their
own; persuadables click at least as much as average and convert their clicks well; lost causes
click and convert little; sleeping dogs click little (and visit less once contacted,
``contact_visit`` 0.6, fixed). Sure things' click is the reference (1): contents carry the scale."""
TYPE_FIELDS: tuple[str, ...] = ("organic_visit", "organic_conversion", "click", "click_conversion")


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


def fit_parameters(
    skeleton: dict[str, Any], *, recency: bool = True, monetary: bool = True, spend: bool = True
) -> tuple[FitParameter, ...]:
    """The fitted numbers of a scenario dict, with its values as priors.

    In order: each uplift type's rates (:data:`TYPE_PRIORS`); each segment's uplift mix
    (weights over ``lost_cause``); the visit effect of every product-line combination but the
    first; the visit and click effects of every attribute value but the first; the recency and
    monetary effects; each content's appeal and product-line match, the conversion of every
    content but the first; the click rate of every channel but the first; each offer's lift;
    the mean order value.

    Args:
        skeleton: a scenario dict whose values are the priors (see :func:`simulators.fit.skeleton`).
        recency: whether the log has recency (else its effect is not fitted).
        monetary: whether the log has monetary values.
        spend: whether the log has spend (else the order value is not fitted).
    """
    ps: list[FitParameter] = []
    for t, bounds in TYPE_PRIORS.items():
        for name, (prior, lo, hi) in zip(TYPE_FIELDS, bounds, strict=True):
            if lo < hi:
                ps.append(FitParameter(("uplift_types", t, name), prior, 0.5, lo, hi))
    pop = skeleton["population"]
    for seg, cfg in pop["segments"].items():
        mix = cfg["uplift_mix"]
        lost = mix.get("lost_cause", 0.0)
        for t in UPLIFT_TYPES:
            if t != "lost_cause" and lost > 0:
                ps.append(
                    FitParameter(
                        ("population", "segments", seg, "uplift_mix", t), mix[t] / lost, 0.7, 1e-3, 1e3
                    )
                )
    for combo in list(pop["product_lines"]["combos"])[1:]:
        v = float(pop["product_lines"]["combos"][combo].get("visit", 1.0))
        ps.append(FitParameter(("population", "product_lines", "combos", combo, "visit"), v, 1, 0.1, 10))
    for attr, values in pop["attributes"].items():
        for val in list(values)[1:]:
            for eff in ("visit", "click"):
                prior = float(values[val].get(eff, 1.0))
                ps.append(FitParameter(("population", "attributes", attr, val, eff), prior, 1.0, 0.1, 10))
    if recency:
        ps.append(
            FitParameter(("population", "recency_effect"), pop["recency_effect"], 0.1, -0.5, 0.5, "linear")
        )
    if monetary:
        ps.append(
            FitParameter(("population", "monetary_effect"), pop["monetary_effect"], 0.3, -1.0, 1.0, "linear")
        )
    contents = skeleton["contents"]
    for content, cfg in contents.items():
        ps.append(FitParameter(("contents", content, "appeal"), cfg["appeal"], 2.0, 1e-3, 20))
        for line, lm in cfg["line_match"].items():
            ps.append(FitParameter(("contents", content, "line_match", line), lm, 2.0, 1e-3, 20))
    for content in list(contents)[1:]:
        conv = float(contents[content].get("conversion", 1.0))
        ps.append(FitParameter(("contents", content, "conversion"), conv, 1.0, 0.05, 20))
    for ch in list(skeleton["channels"])[1:]:
        rate = float(skeleton["channels"][ch]["click_rate"])
        ps.append(FitParameter(("channels", ch, "click_rate"), rate, 1.0, 1e-3, 1.0))
    for offer, cfg in skeleton["offers"].items():
        if "lift" in cfg:
            ps.append(FitParameter(("offers", offer, "lift"), float(cfg["lift"]), 1.0, 1e-3, 10.0))
    if spend:
        mean = float(skeleton["order_value"]["mean"])
        ps.append(
            FitParameter(("order_value", "mean"), mean, 1.0, min(10.0, mean / 3), max(1000.0, 3 * mean))
        )
    return tuple(ps)


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
