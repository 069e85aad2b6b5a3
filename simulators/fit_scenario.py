"""The scenario dict of a log before and after its fit: the distributions copied from the log
(:func:`skeleton`, :func:`population_distributions`), an owner's customers in place of the log's
(:func:`with_audience`) and the YAML text (:func:`render_scenario_yaml`); :mod:`simulators.fit`
has the method."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from simulators.fit_data import Features, LogData, LogMapping
from simulators.fit_params import TYPE_FIELDS, TYPE_PRIORS, _round_shares
from simulators.scenario import UPLIFT_TYPES
from simulators.types import FloatArray

N_MONETARY_QUANTILES = 41
"""Monetary values are copied as this many quantiles per segment (probabilities 0, 1/40, ..., 1)."""
DEFAULT_MIX: dict[str, float] = {
    "sure_thing": 0.2,
    "persuadable": 0.35,
    "lost_cause": 0.35,
    "sleeping_dog": 0.1,
}
"""Prior uplift mix of a segment (the data identify it only through the weak prior's pull)."""
CHANNEL_RATES: dict[str, float] = {
    "reach": 1.0,
    "deliver_rate": 0.98,
    "open_rate": 0.25,
    "click_rate": 0.30,
    "unsubscribe_rate": 0.002,
    "affinity_sigma": 0.5,
}
"""A fitted channel's funnel rates: only their product with the contents' appeal is identified
by a log of visits, so they are fixed (the first channel's) or a prior (the others' click rate)."""
SEND_COSTS: dict[str, float] = {
    "email": 0.001,
    "push": 0.0005,
    "app": 0.0005,
    "sms": 0.02,
    "mail": 0.8,
    "postal": 0.8,
    "direct_mail": 0.8,
    "call": 2.0,
    "phone": 2.0,
}
"""Default send cost in dollars by channel name (else $0.001); set real costs in the mapping's
``scenario: {channels: {NAME: {send_cost: ...}}}``."""


def _shares(counts: FloatArray, decimals: int = 4) -> list[float]:
    """Shares of counts, rounded, summing to exactly 1."""
    p = counts / counts.sum()
    d = _round_shares({str(i): float(x) for i, x in enumerate(p)}, decimals)
    return [d[str(i)] for i in range(len(p))]


def _combo_name(f: Features, mask: int) -> str:
    return "+".join(ln for i, ln in enumerate(f.line_names) if mask >> i & 1)


def population_distributions(f: Features) -> dict[str, Any]:
    """The feature distributions of a set of customers, as scenario fields.

    Returns:
        ``size``; per segment ``share``, ``recency`` (shares of months 1..max) and
        ``monetary_quantiles`` (:data:`N_MONETARY_QUANTILES` quantiles, the last one set so the
        top slice has the customers' mean: a long tail's maximum would inflate it); the shares
        of each attribute's values and of the product-line combinations.
    """
    segments: dict[str, Any] = {}
    counts = np.bincount(f.segment, minlength=len(f.segments)).astype(float)
    seg_shares = _shares(counts)
    for code, name in enumerate(f.segments):
        mask = f.segment == code
        if not mask.any():
            continue
        cfg: dict[str, Any] = {"share": seg_shares[code]}
        if f.recency is not None:
            k = max(f.max_recency, int(f.recency.max(initial=1)))
            cfg["recency"] = _shares(np.bincount(f.recency[mask], minlength=k + 1)[1:].astype(float))
        else:
            cfg["recency"] = [1.0]
        if f.monetary is not None:
            mon = f.monetary[mask]
            q = np.quantile(mon, np.linspace(0.0, 1.0, N_MONETARY_QUANTILES))
            top = mon[mon >= q[-2]]
            q[-1] = max(q[-2], 2.0 * float(top.mean()) - q[-2])
            cfg["monetary_quantiles"] = [max(round(float(x), 2), 0.01) for x in q]
        segments[name] = cfg
    attributes = {
        attr: dict(zip(values, _shares(np.bincount(codes, minlength=len(values)).astype(float)), strict=True))
        for attr, (codes, values) in f.attributes.items()
    }
    combo = f.combo()
    combos = f.combo_set or tuple(sorted(set(combo.tolist())))
    combo_counts = np.array([np.count_nonzero(combo == m) for m in combos], float)
    return {
        "size": len(f),
        "segments": segments,
        "attributes": attributes,
        "combos": dict(zip((_combo_name(f, m) for m in combos), _shares(combo_counts), strict=True)),
    }


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in (dicts recursively, anything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _round_sig(x: float, digits: int = 2) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def skeleton(log: LogData, mapping: LogMapping) -> dict[str, Any]:
    """A log's scenario as a dict: its feature distributions, the fixed choices, and priors in
    place of the fitted values, with the mapping's ``scenario`` fields merged in.

    The channels, contents and offers are those of the log's arms (channel rates
    :data:`CHANNEL_RATES`, send costs :data:`SEND_COSTS`; an offer other than ``none`` gets a
    fitted ``lift`` and no discount unless the mapping gives one). The order value is
    log-normal with the log-sd of the converters' spend. The default goal: a quarter of the
    customers a wave, 12 waves, a target of 7.5 waves of the best arm's conversions and a budget
    of 9.375 waves of its sends.
    """
    f = log.features
    dist = population_distributions(f)
    segments = {
        name: {
            "share": cfg["share"],
            "recency": cfg["recency"],
            "frequency_mean": 2.0,
            **({"monetary_quantiles": cfg["monetary_quantiles"]} if "monetary_quantiles" in cfg else {}),
            "uplift_mix": dict(DEFAULT_MIX),
        }
        for name, cfg in dist["segments"].items()
    }
    parts = [a.split("/") for a in log.arm_names]
    channels = list(dict.fromkeys(p[0] for p in parts))
    contents = list(dict.fromkeys(p[1] for p in parts))
    offers = list(dict.fromkeys(p[2] for p in parts))
    has_offers = any(o != "none" for o in offers)
    conv = log.conversion
    spend = log.spend
    paid = spend[conv & (spend > 0)] if spend is not None else np.zeros(0)
    order_mean = _round_sig(float(paid.mean()), 3) if paid.size else 100.0
    order_sigma = round(float(np.log(paid).std()), 2) if paid.size > 1 else 0.85
    rates = [
        float(conv[log.arm == a].mean()) if np.any(log.arm == a) else 0.0 for a in range(1, len(parts) + 1)
    ]
    best = int(np.argmax(rates))
    cpi = max(1, len(log) // 4)
    send = SEND_COSTS.get(parts[best][0], 0.001)
    d: dict[str, Any] = {
        "name": mapping.name,
        "description": f"Fitted to {log.source}: {len(log):,} customers, arms {list(log.arm_names)}.",
        "margin": 0.3,
        "population": {
            "size": len(log),
            "segments": segments,
            "attributes": {
                attr: {v: {"share": s, "visit": 1.0, "click": 1.0} for v, s in shares.items()}
                for attr, shares in dist["attributes"].items()
            },
            "product_lines": {
                "combos": {c: {"share": s, "visit": 1.0} for c, s in dist["combos"].items()},
                "observation_noise": 0.0,
            },
            "propensity_sigma": 0.5,
            "offer_sensitivity_sigma": 0.5,
            "recency_effect": -0.05 if f.recency is not None else 0.0,
            "monetary_effect": 0.1 if f.monetary is not None else 0.0,
            "preferred_channel_accuracy": 1.0,
        },
        "channels": {ch: {"send_cost": SEND_COSTS.get(ch, 0.001), **CHANNEL_RATES} for ch in channels},
        "contents": {
            k: {"appeal": 0.3, "line_match": {ln: 1.0 for ln in f.line_names}, "conversion": 1.0}
            for k in contents
        },
        "offers": {o: ({} if o == "none" else {"lift": 0.5}) for o in offers},
        "uplift_types": {
            t: {
                **{name: prior for name, (prior, _, _) in zip(TYPE_FIELDS, TYPE_PRIORS[t], strict=True)},
                "offer_response": 1.0 if has_offers else 0.0,
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
        "order_value": {"mean": order_mean, "sigma": order_sigma, "monetary_elasticity": 0.0},
        "dynamics": {
            "fatigue_decay": 0.5,
            "fatigue_open_penalty": 0.3,
            "fatigue_unsubscribe": 0.5,
            "conversion_delay": [1.0],
        },
        "arms": list(log.arm_names),
        "default_goal": {
            "metric": "conversions",
            "target": max(1.0, _round_sig(7.5 * cpi * rates[best])),
            "budget": max(1.0, _round_sig(9.375 * cpi * send)),
            "max_iterations": 12,
            "customers_per_iteration": cpi,
        },
    }
    out = _merge(d, mapping.scenario)
    for cfg in out["population"]["segments"].values():
        cfg["uplift_mix"] = _round_shares(cfg["uplift_mix"], 3)
    return out


def with_audience(scenario: dict[str, Any], audience: Features) -> tuple[dict[str, Any], list[str]]:
    """A fitted scenario whose customers follow an owner's customer file.

    The population's size, segment shares, recency and monetary distributions, attribute shares
    and product-line combination shares become the audience's (its marginal distributions, per
    segment for recency and monetary); every fitted response parameter is kept. A value the log
    never had gets no effect (1) and a segment the log never had the mix of the log's largest
    segment; both are listed in the notes. A feature the audience lacks keeps the log's
    distribution.

    Args:
        scenario: the fitted scenario dict.
        audience: the audience's features, mapped like the log's.

    Returns:
        The new scenario dict and notes on what was assumed.
    """
    out = copy.deepcopy(scenario)
    notes: list[str] = []
    pop = out["population"]
    dist = population_distributions(audience)
    pop["size"] = dist["size"]
    old = pop["segments"]
    largest = max(old, key=lambda s: old[s]["share"])
    segs: dict[str, Any] = {}
    seg_dist: dict[str, Any] = dist["segments"]
    if list(seg_dist) == ["all"] and "all" not in old:
        notes.append("the audience has no segment column: the log's segment shares kept")
        seg_dist = {name: {**seg_dist["all"], "share": cfg["share"]} for name, cfg in old.items()}
    for name, cfg in seg_dist.items():
        base = copy.deepcopy(old.get(name, old[largest]))
        if name not in old:
            notes.append(f"segment {name!r} is not in the log: given the uplift mix of {largest!r}")
        base["share"] = cfg["share"]
        if audience.recency is not None:
            base["recency"] = cfg["recency"]
        else:
            notes.append("the audience has no recency column: the log's recency kept")
        if "monetary_quantiles" in cfg:
            base["monetary_quantiles"] = cfg["monetary_quantiles"]
        segs[name] = base
    pop["segments"] = segs
    for attr, values in list(pop["attributes"].items()):
        if attr not in dist["attributes"]:
            notes.append(f"the audience has no {attr!r} column: the log's shares kept")
            continue
        new: dict[str, Any] = {}
        for v, share in dist["attributes"][attr].items():
            if v not in values:
                notes.append(f"{attr} value {v!r} is not in the log: no effect (1)")
            effects = values.get(v, {})
            new[v] = {"share": share, "visit": effects.get("visit", 1.0), "click": effects.get("click", 1.0)}
        pop["attributes"][attr] = new
    if audience.line_names:
        combos = pop["product_lines"]["combos"]
        new_c: dict[str, Any] = {}
        for c, share in dist["combos"].items():
            if c not in combos:
                notes.append(f"product-line combination {c!r} is not in the log: no effect (1)")
            new_c[c] = {"share": share, "visit": combos.get(c, {}).get("visit", 1.0)}
        pop["product_lines"]["combos"] = new_c
    for cfg in segs.values():
        cfg["uplift_mix"] = _round_shares(cfg["uplift_mix"], 3)
    return out, list(dict.fromkeys(notes))


def _key(k: str) -> str:
    """A mapping key as plain YAML, quoted when it would not read back as the same text."""
    import yaml

    text = str(k)
    try:
        plain = yaml.safe_load(f"{text}: 0")
    except yaml.YAMLError:
        plain = None
    return text if isinstance(plain, dict) and list(plain) == [text] else '"' + text.replace('"', '\\"') + '"'


def _flow(d: dict[str, Any]) -> str:
    """A one-line YAML flow mapping."""
    return "{" + ", ".join(f"{_key(k)}: {_scalar(v)}" for k, v in d.items()) + "}"


def _scalar(v: Any) -> str:
    if isinstance(v, dict):
        return _flow(v)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(round(v, 6))
    if isinstance(v, str):
        return _key(v)
    return str(v)


def render_scenario_yaml(
    scenario: dict[str, Any],
    *,
    header: list[str] | None = None,
    description: list[str] | None = None,
    segment_notes: dict[str, str] | None = None,
    frequency_note: str = "",
    monetary_note: list[str] | None = None,
    goal_note: list[str] | None = None,
) -> str:
    """A scenario dict as YAML text, one line per value with flow mappings, and comments.

    Args:
        scenario: a scenario dict of the shape :func:`skeleton` writes.
        header: comment lines at the top (without ``#``).
        description: the description's lines (default: the dict's, as one folded block).
        segment_notes: a comment after each segment's name.
        frequency_note: a comment after each ``frequency_mean``.
        monetary_note: comment lines before each ``monetary_quantiles``.
        goal_note: comment lines before ``default_goal``.
    """
    sc = scenario
    pop = sc["population"]
    lines = [f"# {h}".rstrip() for h in (header or [])]
    lines.append(f"name: {_key(sc['name'])}")
    desc = description if description is not None else [" ".join(str(sc.get("description", "")).split())]
    lines += ["description: >", *(f"  {d}" for d in desc)]
    lines += [f"margin: {sc['margin']}", "", "population:", f"  size: {pop['size']}", "  segments:"]
    notes = segment_notes or {}
    for seg, cfg in pop["segments"].items():
        note = f"  # {notes[seg]}" if seg in notes else ""
        lines += [
            f"    {_key(seg)}:{note}",
            f"      share: {cfg['share']}",
            f"      recency: {_scalar(cfg['recency'])}",
            f"      frequency_mean: {cfg['frequency_mean']}"
            + (f"  # {frequency_note}" if frequency_note else ""),
        ]
        for key in ("monetary_median", "monetary_sigma"):
            if key in cfg:
                lines.append(f"      {key}: {_scalar(cfg[key])}")
        if "monetary_quantiles" in cfg:
            lines += [f"      # {m}" for m in (monetary_note or [])]
            lines.append(f"      monetary_quantiles: {_scalar(cfg['monetary_quantiles'])}")
        lines.append(f"      uplift_mix: {_flow(cfg['uplift_mix'])}")
    lines.append("  attributes:" + ("" if pop["attributes"] else " {}"))
    for attr, values in pop["attributes"].items():
        lines.append(f"    {_key(attr)}:")
        for v, cfg in values.items():
            lines.append(f"      {_key(v)}: {_flow(cfg)}")
    pl = pop["product_lines"]
    lines += ["  product_lines:", "    combos:"]
    for combo, cfg in pl["combos"].items():
        lines.append(f"      {_key(combo)}: {_flow(cfg)}")
    lines.append(f"    observation_noise: {pl['observation_noise']}")
    for key in (
        "propensity_sigma",
        "offer_sensitivity_sigma",
        "recency_effect",
        "monetary_effect",
        "preferred_channel_accuracy",
    ):
        lines.append(f"  {key}: {_scalar(pop[key])}")
    for section in ("channels", "contents", "offers"):
        lines += ["", f"{section}:"]
        for k, cfg in sc[section].items():
            lines.append(f"  {_key(k)}: {_flow(cfg)}")
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
        *(f"# {g}" for g in (goal_note or [])),
        "default_goal:",
        *(f"  {k}: {_scalar(v)}" for k, v in sc["default_goal"].items()),
    ]
    return "\n".join(lines) + "\n"
