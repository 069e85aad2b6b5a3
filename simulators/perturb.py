"""Perturbed scenarios: a world that differs from the simulator in ways a policy does not know.

:func:`perturb` moves every response parameter of a scenario by multiplicative log-normal noise
(``x * exp(strength * z)``, ``z`` standard normal): channel open, click and unsubscribe rates,
content appeal, line match and conversion multipliers, offer lift, the uplift types' parameters
(organic visit and conversion, click, click conversion, offer response, contact visit,
unsubscribe), each segment's uplift mix and the conversion delays (mixes re-normalized).
Probabilities are kept at most 1. Costs (send costs, discounts and caps), the population model,
the arms and the default goal are left as they are, so the same campaign runs in the new world.
Used for domain randomization in training and for the sim-to-real track of the benchmark.

Example:
    >>> import numpy as np
    >>> from simulators import load_scenario
    >>> world = perturb(load_scenario("retail"), 0.3, np.random.default_rng(0))
    >>> world.default_goal == load_scenario("retail").default_goal
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators.scenario import Scenario, parse_scenario

CHANNEL_RATES = ("open_rate", "click_rate", "unsubscribe_rate")
"""Channel parameters moved (probabilities)."""
CONTENT_FIELDS = ("appeal", "conversion")
"""Content multipliers moved (positive)."""
TYPE_PROBABILITIES = ("organic_visit", "organic_conversion", "click_conversion")
"""Uplift-type parameters that are probabilities."""
TYPE_MULTIPLIERS = ("click", "offer_response", "contact_visit", "unsubscribe")
"""Uplift-type parameters that are multipliers (non-negative)."""


def perturb(scenario: Scenario, strength: float, rng: np.random.Generator) -> Scenario:
    """A copy of ``scenario`` with its response parameters moved at random.

    Args:
        scenario: the world to move.
        strength: standard deviation of the log of each multiplicative factor (0: unchanged).
        rng: the random stream (the same stream gives the same world).

    Returns:
        The validated perturbed scenario; its description says how it was made.

    Raises:
        ValueError: ``strength`` is negative or not finite.
    """
    if not (np.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0, got {strength}")
    if strength == 0:
        return scenario

    def factor() -> float:
        return float(np.exp(strength * rng.standard_normal()))

    def prob(x: float) -> float:
        return min(x * factor(), 1.0)

    def mix(shares: dict[str, float]) -> dict[str, float]:
        moved = {k: v * factor() for k, v in shares.items()}
        total = sum(moved.values())
        return {k: v / total for k, v in moved.items()}

    data: dict[str, Any] = scenario.model_dump(mode="python")
    for ch in data["channels"].values():
        for key in CHANNEL_RATES:
            ch[key] = prob(ch[key])
    for content in data["contents"].values():
        for key in CONTENT_FIELDS:
            content[key] *= factor()
        content["line_match"] = {k: v * factor() for k, v in content["line_match"].items()}
    for offer in data["offers"].values():
        offer["lift"] *= factor()
    for kind in data["uplift_types"].values():
        for key in TYPE_PROBABILITIES:
            kind[key] = prob(kind[key])
        for key in TYPE_MULTIPLIERS:
            kind[key] *= factor()
    for segment in data["population"]["segments"].values():
        segment["uplift_mix"] = mix(segment["uplift_mix"])
    delays = data["dynamics"]["conversion_delay"]
    data["dynamics"]["conversion_delay"] = list(mix({str(d): p for d, p in enumerate(delays)}).values())
    note = f"Perturbed (log-normal factors, strength {strength:g}) from {scenario.name}."
    data["description"] = f"{scenario.description} {note}".strip()
    return parse_scenario(data, f"perturbed {scenario.name}")


def write_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write ``scenario`` as a YAML file that :func:`simulators.load_scenario` reads back."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    out.write_text(text, encoding="utf-8")
    return out
