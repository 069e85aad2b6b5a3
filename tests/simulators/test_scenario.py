"""Tests of scenario files: validation messages, loading by name or path, the built-ins."""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from simulators import (
    NO_CONTACT,
    GroundTruth,
    Scenario,
    ScenarioError,
    Simulator,
    build_arms,
    builtin_scenarios,
    load_scenario,
)
from simulators import scenario as mod
from simulators.scenario import UPLIFT_TYPES, parse_scenario
from simulators.types import BoolArray, IntArray
from tests.conftest import deep_merge

Data = dict[str, Any]
Chooser = Callable[[GroundTruth, BoolArray, np.random.Generator], IntArray]
"""A campaign policy for the win-back test: ground truth, arm mask, rng -> arm per customer."""


@pytest.fixture(scope="module")
def retail_data(retail: Scenario) -> Data:
    """The retail scenario as plain YAML-like data; shared, so change it only through ``_with``."""
    return retail.model_dump()


def _with(data: Data, overrides: dict[str, Any]) -> Data:
    """A deep copy of ``data`` with ``overrides`` merged in."""
    return deep_merge(copy.deepcopy(data), overrides)


def _error(data: object) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "<test>")
    return str(info.value)


# -- built-ins and loading ---------------------------------------------------------------------


def test_builtin_list_has_the_shipped_scenarios() -> None:
    names = builtin_scenarios()
    assert {"retail", "winback"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_loads_and_runs(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    assert len(sc.description) > 20
    arms = build_arms(sc)
    assert arms.names[NO_CONTACT] == "no_contact"
    assert len(arms) == 1 + (
        len(sc.arms) if sc.arms is not None else len(sc.channels) * len(sc.contents) * len(sc.offers)
    )
    sim = Simulator(sc, n_customers=200)
    sim.reset(seed=0)
    customers = np.arange(200)
    sim.send(customers, customers, np.ones(200, dtype=np.int64))
    sim.advance()
    goal = sc.default_goal
    assert goal.budget > 0 and goal.target > 0 and goal.max_iterations >= 1


def test_yaml_path_loads_like_the_builtin(tmp_path: Path, retail: Scenario, retail_data: Data) -> None:
    path = tmp_path / "my_world.yaml"
    path.write_text(yaml.safe_dump(retail_data), encoding="utf-8")
    assert load_scenario(path) == retail
    assert load_scenario(str(path)) == retail


def test_missing_yaml_path(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nowhere.yaml")


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("retial")
    msg = str(info.value)
    assert "'retial'" in msg
    for name in builtin_scenarios():
        assert name in msg


@pytest.mark.parametrize(
    "text",
    ["name: [unclosed\n", "name: x\n  bad indent: : :\n", "a: b\n\t- tab\n", "{{{"],
)
def test_invalid_yaml_syntax(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(path)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match="mapping"):
        load_scenario(path)


def test_file_errors_name_the_file(tmp_path: Path, retail_data: Data) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(_with(retail_data, {"margn": 0.3})), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"typo\.yaml"):
        load_scenario(path)


# -- unknown keys --------------------------------------------------------------------------------

_LOCATIONS: dict[str, type[Any]] = {
    "": mod.Scenario,
    "channels.email": mod.ChannelConfig,
    "population": mod.PopulationConfig,
    "population.segments.new": mod.SegmentConfig,
    "offers.pct10": mod.OfferConfig,
    "dynamics": mod.DynamicsConfig,
}
"""Dotted locations in the retail data and the model that validates each."""


@settings(max_examples=30, deadline=None)
@given(
    key=st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=14),
    where=st.sampled_from(list(_LOCATIONS)),
)
def test_unknown_key_is_named_and_called_unknown(key: str, where: str, retail_data: Data) -> None:
    assume(key not in _LOCATIONS[where].model_fields)
    overrides: Data = {key: 1}
    for part in reversed(where.split(".") if where else []):
        overrides = {part: overrides}
    msg = _error(_with(retail_data, overrides))
    loc = f"{where}.{key}" if where else key
    assert f"{loc}: unknown field" in msg


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"margn": 0.3}, "margn"),
        ({"channels": {"email": {"send_cots": 0.1}}}, "channels.email.send_cots"),
        ({"dynamics": {"fatigue_decy": 0.5}}, "dynamics.fatigue_decy"),
        ({"uplift_types": {"persuadable": {"organic": 0.1}}}, "uplift_types.persuadable.organic"),
        ({"default_goal": {"budgett": 10}}, "default_goal.budgett"),
    ],
)
def test_typos_are_reported_with_their_location(overrides: Data, loc: str, retail_data: Data) -> None:
    msg = _error(_with(retail_data, overrides))
    assert f"{loc}: unknown field" in msg
    assert "check the spelling" in msg


# -- shares --------------------------------------------------------------------------------------

_off_by = st.one_of(st.floats(0.3, 0.99), st.floats(1.01, 1.8))
"""Factors that break a sum of shares; at most 1.8 keeps every retail share a probability."""


def _scaled(shares: dict[str, Any], factor: float, key: str | None = "share") -> dict[str, Any]:
    if key is None:
        return {k: v * factor for k, v in shares.items()}
    return {k: {**v, key: v[key] * factor} for k, v in shares.items()}


_SHARE_CASES: list[tuple[str, Callable[[Data, float], Data]]] = [
    (
        "population.segments shares must sum to 1",
        lambda d, f: {"population": {"segments": _scaled(d["population"]["segments"], f)}},
    ),
    (
        "attributes.region shares must sum to 1",
        lambda d, f: {
            "population": {"attributes": {"region": _scaled(d["population"]["attributes"]["region"], f)}}
        },
    ),
    (
        "product_lines.combos shares must sum to 1",
        lambda d, f: {
            "population": {
                "product_lines": {"combos": _scaled(d["population"]["product_lines"]["combos"], f)}
            }
        },
    ),
    (
        "uplift_mix shares must sum to 1",
        lambda d, f: {
            "population": {
                "segments": {
                    "new": {"uplift_mix": _scaled(d["population"]["segments"]["new"]["uplift_mix"], f, None)}
                }
            }
        },
    ),
    (
        "recency shares must sum to 1",
        lambda d, f: {
            "population": {
                "segments": {
                    "active": {"recency": [p * f for p in d["population"]["segments"]["active"]["recency"]]}
                }
            }
        },
    ),
    (
        "conversion_delay shares must sum to 1",
        lambda d, f: {"dynamics": {"conversion_delay": [p * f for p in d["dynamics"]["conversion_delay"]]}},
    ),
]


@settings(max_examples=30, deadline=None)
@given(case=st.sampled_from(_SHARE_CASES), factor=_off_by)
def test_shares_must_sum_to_one(
    case: tuple[str, Callable[[Data, float], Data]], factor: float, retail_data: Data
) -> None:
    expected, make = case
    data = _with(retail_data, make(retail_data, factor))
    assert expected in _error(data)


def test_shares_within_rounding_are_accepted(retail_data: Data) -> None:
    segments = retail_data["population"]["segments"]
    first = next(iter(segments))
    share = segments[first]["share"] + 5e-7
    data = _with(retail_data, {"population": {"segments": {first: {"share": share}}}})
    assert parse_scenario(data).population.segments[first].share == share


# -- cross-references ----------------------------------------------------------------------------


def test_unknown_product_line_in_line_match(retail_data: Data) -> None:
    msg = _error(_with(retail_data, {"contents": {"bestsellers": {"line_match": {"kids": 0.5}}}}))
    assert "contents.bestsellers.line_match" in msg and "'kids'" in msg
    for line in ("home", "mens", "womens"):
        assert line in msg


@pytest.mark.parametrize(
    ("arms", "match"),
    [
        (["email/bestsellers"], "must be written 'channel/content/offer'"),
        (["email/bestsellers/none/extra"], "must be written"),
        (["fax/bestsellers/none"], "unknown channel 'fax'"),
        (["email/catalogue/none"], "unknown content 'catalogue'"),
        (["email/bestsellers/pct50"], "unknown offer 'pct50'"),
        (["email/bestsellers/none", "email/bestsellers/none"], "must not repeat"),
    ],
)
def test_bad_arm_names(arms: list[str], match: str, retail_data: Data) -> None:
    msg = _error(_with(retail_data, {"arms": arms}))
    assert match in msg
    if "unknown" in match:
        assert "allowed:" in msg


def test_explicit_arms_keep_their_order(retail_data: Data) -> None:
    arms = ["mail/bestsellers/pct25", "email/new_arrivals/none", "sms/home_collection/pct10"]
    table = build_arms(parse_scenario(_with(retail_data, {"arms": arms})))
    assert table.names == ("no_contact", *arms)
    assert [table.channel_names[c] for c in table.channel[1:]] == ["mail", "email", "sms"]


def test_uplift_types_must_be_complete(retail_data: Data) -> None:
    data = _with(retail_data, {})
    data["uplift_types"] = {k: v for k, v in data["uplift_types"].items() if k != "sleeping_dog"}
    msg = _error(data)
    assert "uplift_types" in msg and "sleeping_dog" in msg


def test_unknown_uplift_type_in_mix(retail_data: Data) -> None:
    mix = {"sure_thing": 0.5, "persuadable": 0.3, "lost_cause": 0.1, "sleepy_dog": 0.1}
    msg = _error(_with(retail_data, {"population": {"segments": {"new": {"uplift_mix": mix}}}}))
    assert "sleepy_dog" in msg
    for t in UPLIFT_TYPES:
        assert t in msg


def test_discount_needs_a_cap(retail_data: Data) -> None:
    msg = _error(_with(retail_data, {"offers": {"pct10": {"max_value": 0}}}))
    assert "offers.pct10" in msg and "max_value" in msg


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"margin": 1.5}, "margin"),
        ({"channels": {"sms": {"reach": -0.1}}}, "channels.sms.reach"),
        ({"population": {"size": 0}}, "population.size"),
        ({"default_goal": {"budget": 0}}, "default_goal.budget"),
        ({"dynamics": {"conversion_delay": []}}, "dynamics.conversion_delay"),
    ],
)
def test_out_of_range_values_name_the_field(overrides: Data, loc: str, retail_data: Data) -> None:
    assert f"{loc}:" in _error(_with(retail_data, overrides))


# -- the win-back scenario -----------------------------------------------------------------------


def _campaign(sim: Simulator, choose: Chooser, waves: int) -> tuple[float, float, int]:
    """Run ``waves`` iterations; return expected incremental net value, cost and opt-outs.

    Incremental net value is ``revenue * margin - cost`` of the chosen arms minus that of no
    contact, from the ground truth of each wave's state (fatigue and opt-outs included).
    """
    customers = np.arange(sim.n_customers)
    all_arms = np.arange(len(sim.arms))[None, :]
    rng = np.random.default_rng(1)
    net = cost = 0.0
    for t in range(waves):
        gt = sim.expected(customers[:, None], all_arms)
        mask = sim.arm_mask(customers)
        arms = choose(gt, mask, rng)
        arms = np.where(mask[customers, arms], arms, NO_CONTACT)
        value = gt.net_value(sim.margin)
        net += float((value[customers, arms] - value[:, NO_CONTACT]).sum())
        cost += float(gt.cost[customers, arms].sum())
        sim.send(t * sim.n_customers + customers, customers, arms)
        sim.advance()
    return net, cost, int(sim.unsubscribed.any(axis=1).sum())


def test_winback_over_contacting_loses_money_and_targeting_pays() -> None:
    """Blanket contact every wave loses money and customers; contacting only where it pays earns."""
    sc = load_scenario("winback")
    n, waves = 6000, sc.default_goal.max_iterations

    def fresh() -> Simulator:
        sim = Simulator(sc, n_customers=n)
        sim.reset(seed=0)
        return sim

    arm_table = fresh().arms

    def same(name: str) -> Chooser:
        return lambda gt, mask, rng: np.full(n, arm_table.index(name), dtype=np.int64)

    def random_arm(gt: GroundTruth, mask: BoolArray, rng: np.random.Generator) -> IntArray:
        scores = np.where(mask, rng.random(mask.shape), -1.0)
        scores[:, NO_CONTACT] = -1.0
        arms: IntArray = np.argmax(scores, axis=1).astype(np.int64)
        return arms

    def targeted(gt: GroundTruth, mask: BoolArray, rng: np.random.Generator) -> IntArray:
        value = gt.net_value(sc.margin)
        gain = np.where(mask, value - value[:, :1], -np.inf)
        arms: IntArray = np.argmax(gain, axis=1).astype(np.int64)  # no contact unless it pays
        return arms

    for name in ("email/we_miss_you/none", "sms/new_roasts/moderate", "mail/we_miss_you/deep"):
        net, _, lost = _campaign(fresh(), same(name), waves)
        assert net < 0, name
        assert lost > 0.05 * n, name
    net, cost, lost = _campaign(fresh(), random_arm, waves)
    assert net < -cost / 2 and lost > 0.25 * n
    net, cost, lost_targeted = _campaign(fresh(), targeted, waves)
    assert net > 0 and cost > 0
    assert lost_targeted < lost
