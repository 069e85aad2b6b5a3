"""The hillstrom scenario file: the distributions copied from the Hillstrom file
(:func:`hillstrom_skeleton`) and the YAML text the fit writes (:func:`render_hillstrom_yaml`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.calibration_data import (
    PURCHASE_CHANNELS,
    SCENARIO_NAME,
    ZIP_CODES,
    HillstromData,
)
from simulators.calibration_params import (
    FIT_PARAMETERS,
    _round_shares,
    apply_parameters,
)
from simulators.scenario import UPLIFT_TYPES
from simulators.types import FloatArray

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
