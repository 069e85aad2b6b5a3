"""The owner's arm catalogue (the plan library): channels with their send cost, contents, offers.

A campaign on an owner's audience chooses its arms from a catalogue instead of a scenario's:
every channel x content (where the content may go on that channel) x offer, plus no contact.
Validated once, like a scenario, with errors that name the field.

Example:
    >>> cat = Catalogue.model_validate({
    ...     "channels": [{"name": "email", "send_cost": 0.001}],
    ...     "contents": [{"name": "mens"}, {"name": "womens"}],
    ... })
    >>> cat.arm_table().names
    ('no_contact', 'email/mens/none', 'email/womens/none')
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.types import ArmTable

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
"""Letters, digits, ``_ . -`` (no ``/``: arm names join the three with it)."""
MAX_ARMS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogueChannel(_Strict):
    """A channel the owner sends on."""

    name: Name
    send_cost: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
    """Dollars paid per send, delivered or not."""


class CatalogueContent(_Strict):
    """A piece of creative."""

    name: Name
    channels: list[Name] | None = None
    """The channels it may go on; ``None``: every channel."""


class CatalogueOffer(_Strict):
    """An incentive, paid only on redemption."""

    name: Name
    discount: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    """Share of the order value given away on redemption."""
    cap: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0
    """Most one redemption costs (dollars): what the ledger holds until the window closes."""

    @model_validator(mode="after")
    def _cap_when_discount(self) -> CatalogueOffer:
        if self.discount > 0 and self.cap <= 0:
            raise ValueError(f"offer {self.name!r} has a discount: give its cap (> 0), the most it may cost")
        return self


class Catalogue(_Strict):
    """Channels, contents and offers; arms are their combinations (see :meth:`arm_table`).

    An offer named ``none`` (no incentive) is always there: added first when not listed.
    """

    channels: Annotated[list[CatalogueChannel], Field(min_length=1, max_length=20)]
    contents: Annotated[list[CatalogueContent], Field(min_length=1, max_length=200)]
    offers: Annotated[list[CatalogueOffer], Field(max_length=50)] = []
    margin: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.3
    """Share of revenue that is profit: net value in reports is ``revenue * margin - cost``."""

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        for what, items in (
            ("channels", self.channels),
            ("contents", self.contents),
            ("offers", self.offers),
        ):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what}: names must be unique, repeated: {dup}")
        known = {c.name for c in self.channels}
        for c in self.contents:
            unknown = sorted(set(c.channels or []) - known)
            if unknown:
                raise ValueError(
                    f"contents: {c.name!r} names unknown channel(s) {unknown}; channels: {sorted(known)}"
                )
        n = len(self.combos())
        if n > MAX_ARMS:
            raise ValueError(f"the catalogue makes {n} arms; at most {MAX_ARMS}")
        return self

    def all_offers(self) -> list[CatalogueOffer]:
        """The offers with ``none`` first when the owner did not list it."""
        if any(o.name == "none" for o in self.offers):
            return list(self.offers)
        return [CatalogueOffer(name="none"), *self.offers]

    def combos(self) -> list[tuple[str, str, str]]:
        """``(channel, content, offer)`` of every arm, in table order."""
        return [
            (ch.name, co.name, of.name)
            for ch in self.channels
            for co in self.contents
            if co.channels is None or ch.name in co.channels
            for of in self.all_offers()
        ]

    def arm_table(self) -> ArmTable:
        """The arm table (no contact first)."""
        return ArmTable.build(
            {c.name: c.send_cost for c in self.channels},
            [c.name for c in self.contents],
            {o.name: (o.discount, o.cap) for o in self.all_offers()},
            self.combos(),
        )
