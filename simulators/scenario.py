"""Scenario files: the simulated world as data, validated with pydantic.

A scenario is a YAML file whose top-level keys are the fields of :class:`Scenario`. Every model
forbids unknown keys, so a typo such as ``send_cots`` is reported with its location and the
allowed names instead of being ignored. Built-in scenarios live beside this module
(``simulators/scenarios/*.yaml``); :func:`load_scenario` takes a built-in name or any YAML path.

Example:
    >>> from simulators.scenario import load_scenario
    >>> s = load_scenario("retail")
    >>> s.population.size >= 50_000
    True
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

UPLIFT_TYPES: tuple[str, ...] = ("sure_thing", "persuadable", "lost_cause", "sleeping_dog")
"""The four uplift types, in the order used for the hidden ``uplift_type`` codes."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]


class ScenarioError(ValueError):
    """A scenario name, path or file that cannot be used; the message says why and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_shares(shares: dict[str, float], what: str) -> None:
    total = sum(shares.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{what} shares must sum to 1, got {total:.6f}")


class Effects(_Strict):
    """Multipliers a customer attribute applies to the response funnel (1 = no effect)."""

    visit: Positive = 1.0
    """Multiplier on the organic (uncontacted) visit probability."""
    click: Positive = 1.0
    """Multiplier on the click-given-open probability of any contact."""


class AttributeValue(Effects):
    """One value of a categorical attribute: its share of the population and its effects."""

    share: Probability


class ChannelConfig(_Strict):
    """A contact channel: its price and its funnel rates for an average customer."""

    send_cost: NonNegative
    """Dollars paid per send, whether or not the message is delivered."""
    reach: Probability
    """Share of customers with an address on this channel (email, phone, app, postal)."""
    deliver_rate: Probability
    open_rate: Probability
    """P(open | delivered) for an average, unfatigued customer."""
    click_rate: Probability
    """P(click | opened): a click is a visit to the shop caused by the contact."""
    unsubscribe_rate: Probability
    """P(unsubscribe | delivered) for an average, unfatigued customer."""
    affinity_sigma: NonNegative = 0.5
    """Spread (log scale) of hidden per-customer affinity for this channel."""


class ContentConfig(_Strict):
    """A piece of creative: how it appeals to everyone and to buyers of given product lines."""

    appeal: Positive = 1.0
    """Click multiplier for every customer."""
    line_match: dict[str, NonNegative] = Field(default_factory=dict)
    """Extra click multiplier for customers interested in each product line (added to appeal)."""
    conversion: Positive = 1.0
    """Multiplier on P(convert | click) for clicks on this content (how ready to buy they are)."""


class OfferConfig(_Strict):
    """An incentive. Its cost is paid only when redeemed (a conversion after the offer was seen)."""

    discount: Probability = 0.0
    """Fraction of the order value given away on redemption."""
    max_value: NonNegative = 0.0
    """Cap in dollars on the discount of one order; also the worst case the ledger reserves."""
    lift: NonNegative = 0.0
    """Relative increase of conversion-after-click for a fully offer-sensitive customer."""

    @model_validator(mode="after")
    def _cap_when_discount(self) -> OfferConfig:
        if self.discount > 0 and self.max_value <= 0:
            raise ValueError("an offer with a discount needs max_value > 0 (the worst-case cost)")
        return self


class UpliftTypeConfig(_Strict):
    """Response parameters of one uplift type (hidden from policies)."""

    organic_visit: Probability
    """P(visit) per iteration without contact, before attribute and individual effects."""
    organic_conversion: Probability
    """P(convert | organic visit)."""
    click: Positive = 1.0
    """Multiplier on P(click | open)."""
    click_conversion: Probability
    """P(convert | click) without an offer."""
    offer_response: NonNegative = 1.0
    """Multiplier on offers' lift (sensitivity of this type to discounts)."""
    contact_visit: NonNegative = 1.0
    """Multiplier on the organic visit probability once contacted (< 1: contact pushes away)."""
    unsubscribe: NonNegative = 1.0
    """Multiplier on the channel's unsubscribe rate."""


class SegmentConfig(_Strict):
    """A lifecycle stage: its share and the distributions of its customers' features and types."""

    share: Probability
    recency: list[Probability] = Field(min_length=1)
    """P(recency = m months) for m = 1..len(recency); must sum to 1."""
    frequency_mean: NonNegative = 2.0
    """Mean number of orders last year, beyond the first (Poisson)."""
    monetary_median: Positive = 100.0
    """Median dollars spent last year (log-normal)."""
    monetary_sigma: NonNegative = 0.8
    monetary_quantiles: list[Positive] | None = Field(default=None, min_length=2)
    """Optional empirical distribution of dollars spent last year: its quantiles at equally
    spaced probabilities 0, 1/(k-1), ..., 1 (non-decreasing). Monetary values are drawn by linear
    interpolation of these at a uniform draw, replacing the log-normal ``monetary_median`` /
    ``monetary_sigma`` (for data with floors, caps or several modes, e.g. ``hillstrom``)."""
    uplift_mix: dict[str, Probability]
    """Shares of the four uplift types within this stage."""

    @field_validator("recency")
    @classmethod
    def _recency_sums(cls, v: list[float]) -> list[float]:
        _check_shares({str(i): p for i, p in enumerate(v)}, "recency")
        return v

    @field_validator("monetary_quantiles")
    @classmethod
    def _quantiles_sorted(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and v != sorted(v):
            raise ValueError("monetary_quantiles must be non-decreasing")
        return v

    @field_validator("uplift_mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(UPLIFT_TYPES))
        if unknown:
            raise ValueError(f"unknown uplift type(s) {unknown}; allowed: {list(UPLIFT_TYPES)}")
        _check_shares(v, "uplift_mix")
        return v


class ProductLinesConfig(_Strict):
    """Product lines a customer is interested in, as combinations ("mens+womens")."""

    combos: dict[str, AttributeValue]
    observation_noise: Probability = 0.0
    """Probability that each observed bought-line flag is flipped (hides true interest)."""

    @model_validator(mode="after")
    def _shares(self) -> ProductLinesConfig:
        _check_shares({k: v.share for k, v in self.combos.items()}, "product_lines.combos")
        return self

    @property
    def lines(self) -> list[str]:
        """The distinct product lines named in the combos, in order of first mention."""
        out: list[str] = []
        for combo in self.combos:
            for line in combo.split("+"):
                if line and line not in out:
                    out.append(line)
        return out


class PopulationConfig(_Strict):
    """How customers are generated."""

    size: Annotated[int, Field(ge=1, le=10_000_000)]
    segments: dict[str, SegmentConfig] = Field(min_length=1)
    attributes: dict[str, dict[str, AttributeValue]] = Field(default_factory=dict)
    """Observable categorical attributes (region, purchase channel...): value -> share, effects."""
    product_lines: ProductLinesConfig
    propensity_sigma: NonNegative = 0.5
    """Spread (log scale) of hidden individual visit propensity."""
    offer_sensitivity_sigma: NonNegative = 0.5
    """Spread (log scale) of hidden individual offer sensitivity (mean 1)."""
    recency_effect: float = 0.0
    """Log visit multiplier per month of recency beyond the first (negative: lapsed visit less)."""
    monetary_effect: float = 0.0
    """Elasticity of visit probability with respect to monetary value / its median."""
    preferred_channel_accuracy: Probability = 0.7
    """P(the observed preferred channel is the customer's truly best reachable channel)."""

    @model_validator(mode="after")
    def _shares(self) -> PopulationConfig:
        _check_shares({k: v.share for k, v in self.segments.items()}, "population.segments")
        for name, values in self.attributes.items():
            _check_shares({k: v.share for k, v in values.items()}, f"attributes.{name}")
        return self


class OrderValueConfig(_Strict):
    """Order revenue: log-normal around each customer's typical basket."""

    mean: Positive
    sigma: NonNegative = 0.5
    monetary_elasticity: float = 0.0
    """Customer's mean order = mean * (monetary / population median) ** elasticity."""


class DynamicsConfig(_Strict):
    """What carries over from one iteration to the next."""

    fatigue_decay: Probability = 0.6
    """Fatigue is multiplied by this at the end of every iteration."""
    fatigue_open_penalty: NonNegative = 0.3
    """P(open) is multiplied by exp(-penalty * fatigue)."""
    fatigue_unsubscribe: NonNegative = 0.5
    """P(unsubscribe) is multiplied by (1 + this * fatigue)."""
    conversion_delay: list[Probability] = Field(default_factory=lambda: [1.0], min_length=1)
    """P(a conversion caused by a contact arrives d iterations later), d = 0..len-1."""

    @field_validator("conversion_delay")
    @classmethod
    def _delay_sums(cls, v: list[float]) -> list[float]:
        _check_shares({str(i): p for i, p in enumerate(v)}, "conversion_delay")
        return v


class GoalConfig(_Strict):
    """A scenario's default campaign: what to reach and how much money may be spent."""

    metric: Literal["conversions", "revenue"] = "conversions"
    target: Positive
    budget: Positive
    max_iterations: Annotated[int, Field(ge=1)] = 30
    customers_per_iteration: Annotated[int, Field(ge=1)] = 10_000


class Scenario(_Strict):
    """A whole simulated world. See ``simulators/scenarios/retail.yaml`` for an annotated example."""

    name: str
    description: str = ""
    margin: Probability = 0.3
    """Share of revenue that is profit; net value = revenue * margin - costs."""
    population: PopulationConfig
    channels: dict[str, ChannelConfig] = Field(min_length=1)
    contents: dict[str, ContentConfig] = Field(min_length=1)
    offers: dict[str, OfferConfig] = Field(min_length=1)
    uplift_types: dict[str, UpliftTypeConfig]
    order_value: OrderValueConfig
    dynamics: DynamicsConfig = DynamicsConfig()
    arms: list[str] | None = None
    """Explicit arm list as "channel/content/offer" names; default: every combination."""
    default_goal: GoalConfig

    @model_validator(mode="after")
    def _consistency(self) -> Scenario:
        missing = sorted(set(UPLIFT_TYPES) - set(self.uplift_types))
        extra = sorted(set(self.uplift_types) - set(UPLIFT_TYPES))
        if missing or extra:
            raise ValueError(
                f"uplift_types must define exactly {list(UPLIFT_TYPES)}; missing {missing}, unknown {extra}"
            )
        lines = set(self.population.product_lines.lines)
        for cname, content in self.contents.items():
            bad = sorted(set(content.line_match) - lines)
            if bad:
                raise ValueError(
                    f"contents.{cname}.line_match names unknown product line(s) {bad}; "
                    f"allowed: {sorted(lines)}"
                )
        if self.arms is not None:
            for arm in self.arms:
                parts = arm.split("/")
                if len(parts) != 3:
                    raise ValueError(f"arm {arm!r} must be written 'channel/content/offer'")
                tables = (set(self.channels), set(self.contents), set(self.offers))
                for part, table, kind in zip(parts, tables, ("channel", "content", "offer"), strict=True):
                    if part not in table:
                        raise ValueError(f"arm {arm!r}: unknown {kind} {part!r}; allowed: {sorted(table)}")
            if len(set(self.arms)) != len(self.arms):
                raise ValueError("arms must not repeat")
        return self


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package, sorted."""
    folder = resources.files("simulators") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid scenario {source}:"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see simulators/scenarios/retail.yaml)"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_scenario(data: object, source: str = "<data>") -> Scenario:
    """Validate already-parsed YAML data as a scenario.

    Raises:
        ScenarioError: naming each bad field and what is allowed.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"invalid scenario {source}: the top level must be a mapping of fields")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(_format_validation_error(err, source)) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name, or any scenario YAML file by path.

    Args:
        name_or_path: ``"retail"``, ``"winback"``, ``"hillstrom"``... or a path to a ``.yaml`` file.

    Raises:
        ScenarioError: unknown name, unreadable file, bad YAML, or invalid fields.
    """
    text: str
    source: str
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {str(path)!r} does not exist")
        text, source = path.read_text(encoding="utf-8"), str(path)
    else:
        name = str(name_or_path)
        known = builtin_scenarios()
        if name not in known:
            raise ScenarioError(
                f"unknown scenario {name!r}; built-in scenarios: {known}, or give a path to a .yaml file"
            )
        text = (resources.files("simulators") / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8")
        source = f"{name!r}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScenarioError(f"scenario {source} is not valid YAML: {err}") from None
    return parse_scenario(data, source)
