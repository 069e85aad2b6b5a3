"""The Hillstrom file as a log of :mod:`simulators.fit` (:data:`HILLSTROM_MAPPING`), its constants,
:func:`load_hillstrom` and :class:`CustomerFeatures` (:mod:`simulators.calibration`: the method;
the cells the fit and the report compare are :func:`simulators.fit_data.data_cells`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.fit_data import Cell, LogData, LogMapping, data_cells, load_log
from simulators.fit_report import ARM_TOLERANCE, GROUP_Z
from simulators.simulator import Simulator
from simulators.types import BoolArray, FloatArray, IntArray

SCENARIO_NAME = "hillstrom"
DATA_ARMS: tuple[str, ...] = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
"""The file's ``segment`` values, indexed by the scenario's arm (0 = no contact)."""
ARM_NAMES: tuple[str, ...] = ("no_email", "mens_email", "womens_email")
"""Short names of the three arms in reports."""
METRICS: tuple[str, ...] = ("visit", "conversion", "spend")
REPORT_GROUPS: tuple[str, ...] = (
    "all",
    "mens_only",
    "womens_only",
    "mens_and_womens",
    "new",
    "returning",
)
"""Customer groups of the report: everyone, by product lines bought, by newbie flag."""
ZIP_CODES: tuple[str, ...] = ("urban", "suburban", "rural")
PURCHASE_CHANNELS: tuple[str, ...] = ("phone", "web", "multichannel")
HISTORY_EDGES: tuple[float, ...] = (100.0, 200.0, 350.0, 500.0, 750.0, 1000.0)
"""Upper edges of the file's first six ``history_segment`` bands (the seventh is $1,000+)."""

HILLSTROM_MAPPING = LogMapping(
    name=SCENARIO_NAME,
    source="the Hillstrom file",
    monetary_bands=list(HISTORY_EDGES),
    scenario={
        "population": {
            "segments": {
                "new": {
                    "frequency_mean": 0.3,
                    "uplift_mix": {
                        "sure_thing": 0.1,
                        "persuadable": 0.4,
                        "lost_cause": 0.4,
                        "sleeping_dog": 0.1,
                    },
                },
                "returning": {
                    "frequency_mean": 1.5,
                    "uplift_mix": {
                        "sure_thing": 0.25,
                        "persuadable": 0.3,
                        "lost_cause": 0.35,
                        "sleeping_dog": 0.1,
                    },
                },
            },
            "product_lines": {"combos": {"mens+womens": {"visit": 1.5}}},
        },
        "contents": {"womens": {"line_match": {"mens": 0.3}}},
        "order_value": {"mean": 116.0, "sigma": 0.85},
        "default_goal": {
            "metric": "conversions",
            "target": 1500,
            "budget": 150,
            "max_iterations": 12,
            "customers_per_iteration": 16_000,
        },
    },
)
"""The Hillstrom file as a log for :mod:`simulators.fit`: its columns (the mapping's defaults),
the history bands of its ``history_segment`` column, and the priors and fixed choices of the
``hillstrom`` scenario (frequency per segment, uplift mixes, the women's e-mail's weaker match
to men's-line buyers, the order value, the default goal)."""


@dataclass(frozen=True)
class HillstromData:
    """The Hillstrom file as arrays, one row per customer.

    Attributes:
        recency: ``(n,)`` months since the last purchase, 1..12.
        history: ``(n,)`` dollars spent in the last year.
        mens, womens: ``(n,)`` bought from the men's / women's line.
        zip_code: ``(n,)`` codes into :data:`ZIP_CODES`.
        newbie: ``(n,)`` new customer in the last year.
        channel: ``(n,)`` purchase channel, codes into :data:`PURCHASE_CHANNELS`.
        arm: ``(n,)`` the scenario's arm index of the e-mail received (see :data:`DATA_ARMS`).
        visit, conversion: ``(n,)`` outcomes within two weeks.
        spend: ``(n,)`` dollars spent within two weeks.
        log: the same file as a general log (:class:`simulators.fit_data.LogData`), which the
            fit and the report use.
    """

    recency: IntArray
    history: FloatArray
    mens: BoolArray
    womens: BoolArray
    zip_code: IntArray
    newbie: BoolArray
    channel: IntArray
    arm: IntArray
    visit: BoolArray
    conversion: BoolArray
    spend: FloatArray
    log: LogData = field(repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    def features(self) -> CustomerFeatures:
        """The customers' features in the form shared with simulated populations."""
        return CustomerFeatures(
            recency=self.recency,
            monetary=self.history,
            mens=self.mens,
            womens=self.womens,
            zip_code=self.zip_code,
            channel=self.channel,
            new=self.newbie,
        )


def load_hillstrom(path: str | Path) -> HillstromData:
    """Read the Hillstrom CSV (:func:`simulators.fit_data.load_log` with
    :data:`HILLSTROM_MAPPING`).

    Args:
        path: the file, e.g. ``../shared/data/hillstrom.csv``.

    Returns:
        The columns as typed arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing column or an unknown category.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Hillstrom data file {str(path)!r} does not exist")
    log = load_log(path, HILLSTROM_MAPPING)
    f = log.features
    expected = {
        "segments": (f.segments, ("new", "returning")),
        "lines": (f.line_names, ("mens", "womens")),
        "zip_code": (f.attributes.get("zip_code", (None, ()))[1], ZIP_CODES),
        "purchase_channel": (f.attributes.get("purchase_channel", (None, ()))[1], PURCHASE_CHANNELS),
        "arms": (log.arm_labels, ARM_NAMES),
    }
    for what, (got, want) in expected.items():
        if tuple(got) != tuple(want):
            raise ValueError(f"{path}: {what} {list(got)}, the Hillstrom file has {list(want)}")
    if f.recency is None or f.monetary is None or log.visit is None or log.spend is None:
        raise ValueError(f"{path}: missing recency, history, visit or spend column")
    return HillstromData(
        recency=f.recency,
        history=f.monetary,
        mens=f.lines[:, 0],
        womens=f.lines[:, 1],
        zip_code=f.attributes["zip_code"][0],
        newbie=f.segment == 0,
        channel=f.attributes["purchase_channel"][0],
        arm=log.arm,
        visit=log.visit,
        conversion=log.conversion,
        spend=log.spend,
        log=log,
    )


@dataclass(frozen=True)
class CustomerFeatures:
    """The Hillstrom features of a set of customers (real or simulated), one row each."""

    recency: IntArray
    monetary: FloatArray
    mens: BoolArray
    womens: BoolArray
    zip_code: IntArray
    channel: IntArray
    new: BoolArray

    @staticmethod
    def of_simulator(sim: Simulator) -> CustomerFeatures:
        """The features of a simulator's current population of the ``hillstrom`` scenario.

        Raises:
            ValueError: the scenario lacks a ``new`` segment, a ``mens``/``womens`` line, or
                the ``zip_code``/``purchase_channel`` attributes.
        """
        sc = sim.scenario
        pop = sim.population
        try:
            new_code = list(sc.population.segments).index("new")
            lines = sc.population.product_lines.lines
            mens, womens = lines.index("mens"), lines.index("womens")
            zip_map = np.array([ZIP_CODES.index(v) for v in sc.population.attributes["zip_code"]])
            ch_map = np.array(
                [PURCHASE_CHANNELS.index(v) for v in sc.population.attributes["purchase_channel"]]
            )
        except (ValueError, KeyError) as err:
            raise ValueError(f"scenario {sc.name!r} is not Hillstrom-shaped: {err}") from None
        return CustomerFeatures(
            recency=pop.recency,
            monetary=pop.monetary,
            mens=pop.lines_observed[:, mens],
            womens=pop.lines_observed[:, womens],
            zip_code=zip_map[pop.attributes["zip_code"]],
            channel=ch_map[pop.attributes["purchase_channel"]],
            new=pop.segment == new_code,
        )

    def history_band(self) -> IntArray:
        """``(n,)`` the file's ``history_segment`` band, 0..6."""
        return np.searchsorted(np.array(HISTORY_EDGES), self.monetary, side="right").astype(np.int64)


__all__ = [
    "ARM_NAMES",
    "ARM_TOLERANCE",
    "DATA_ARMS",
    "GROUP_Z",
    "HILLSTROM_MAPPING",
    "HISTORY_EDGES",
    "METRICS",
    "PURCHASE_CHANNELS",
    "REPORT_GROUPS",
    "SCENARIO_NAME",
    "ZIP_CODES",
    "Cell",
    "CustomerFeatures",
    "HillstromData",
    "data_cells",
    "load_hillstrom",
]
