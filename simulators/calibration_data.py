"""The Hillstrom file, and the features and cells shared by the file and simulated populations
(:mod:`simulators.calibration`: the method; this module: the constants, :func:`load_hillstrom`,
:class:`CustomerFeatures` and the data cells the fit and the report compare)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
ARM_TOLERANCE = 0.05
"""Per-arm rows (group ``all``) must be within this relative error."""
GROUP_Z = 3.0
"""Group rows are within tolerance when within ``max(ARM_TOLERANCE, GROUP_Z * se)`` relative,
``se`` being the combined standard error of the data cell and the simulated estimate."""
ARM_WEIGHT = 6.0
"""How much more the whole-file per-arm targets weigh in the fit than the cell targets."""

_ZIP_CODES_IN_FILE = {"Urban": 0, "Surburban": 1, "Suburban": 1, "Rural": 2}
_CHANNELS_IN_FILE = {"Phone": 0, "Web": 1, "Multichannel": 2}


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
    """Read the Hillstrom CSV (stdlib ``csv``; no pandas).

    Args:
        path: the file, e.g. ``../shared/data/hillstrom.csv``.

    Returns:
        The columns as typed arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing column or an unknown category, naming the row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Hillstrom data file {str(path)!r} does not exist")
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "recency",
            "history",
            "mens",
            "womens",
            "zip_code",
            "newbie",
            "channel",
            "arm",
            "visit",
            "conversion",
            "spend",
        )
    }
    arm_of = {name: i for i, name in enumerate(DATA_ARMS)}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for line, row in enumerate(reader, start=2):
            try:
                cols["recency"].append(int(row["recency"]))
                cols["history"].append(float(row["history"]))
                cols["mens"].append(row["mens"] == "1")
                cols["womens"].append(row["womens"] == "1")
                cols["zip_code"].append(_ZIP_CODES_IN_FILE[row["zip_code"]])
                cols["newbie"].append(row["newbie"] == "1")
                cols["channel"].append(_CHANNELS_IN_FILE[row["channel"]])
                cols["arm"].append(arm_of[row["segment"]])
                cols["visit"].append(row["visit"] == "1")
                cols["conversion"].append(row["conversion"] == "1")
                cols["spend"].append(float(row["spend"]))
            except (KeyError, ValueError) as err:
                raise ValueError(f"{path}: line {line}: cannot read {err}") from None
    return HillstromData(
        recency=np.array(cols["recency"], np.int64),
        history=np.array(cols["history"], np.float64),
        mens=np.array(cols["mens"], bool),
        womens=np.array(cols["womens"], bool),
        zip_code=np.array(cols["zip_code"], np.int64),
        newbie=np.array(cols["newbie"], bool),
        channel=np.array(cols["channel"], np.int64),
        arm=np.array(cols["arm"], np.int64),
        visit=np.array(cols["visit"], bool),
        conversion=np.array(cols["conversion"], bool),
        spend=np.array(cols["spend"], np.float64),
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

    def groups(self, *, fit: bool = False) -> dict[str, BoolArray]:
        """Masks of the report groups, or (``fit=True``) of the fitting cells.

        The fitting cells are the product-line x segment groups, zip codes, purchase channels,
        recency months and history bands; the report groups are :data:`REPORT_GROUPS`.
        """
        mens_only = self.mens & ~self.womens
        womens_only = self.womens & ~self.mens
        both = self.mens & self.womens
        lines = {"mens_only": mens_only, "womens_only": womens_only, "mens_and_womens": both}
        if not fit:
            return {
                "all": np.ones(self.new.shape, bool),
                **lines,
                "new": self.new,
                "returning": ~self.new,
            }
        out: dict[str, BoolArray] = {"all": np.ones(self.new.shape, bool)}
        for lname, lmask in lines.items():
            out[f"{lname}&new"] = lmask & self.new
            out[f"{lname}&returning"] = lmask & ~self.new
        for code, zname in enumerate(ZIP_CODES):
            out[f"zip={zname}"] = self.zip_code == code
        for code, cname in enumerate(PURCHASE_CHANNELS):
            out[f"channel={cname}"] = self.channel == code
        for month in range(1, 13):
            out[f"recency={month}"] = self.recency == month
        band = self.history_band()
        for b in range(len(HISTORY_EDGES) + 1):
            out[f"history_band={b + 1}"] = band == b
        return out


def _rate_se(k: float, n: int) -> float:
    """Binomial standard error of a rate, with a Laplace-smoothed rate (never zero)."""
    p = (k + 1.0) / (n + 2.0)
    return math.sqrt(p * (1.0 - p) / max(n, 1))


@dataclass(frozen=True)
class _Cell:
    group: str
    arm: int
    metric: str
    data: float
    se: float
    n: int


def data_cells(data: HillstromData, *, fit: bool = False) -> list[_Cell]:
    """The file's value and standard error for every (group, arm, metric).

    Args:
        data: the loaded file.
        fit: the fitting cells (visit and conversion; spend for ``all`` only) instead of the
            report groups (all three metrics).
    """
    out: list[_Cell] = []
    for gname, gmask in data.features().groups(fit=fit).items():
        for arm in range(len(DATA_ARMS)):
            m = gmask & (data.arm == arm)
            n = int(np.count_nonzero(m))
            if n == 0:
                continue
            for metric in METRICS:
                if fit and metric == "spend" and gname != "all":
                    continue
                if metric == "spend":
                    s = data.spend[m]
                    se = float(s.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
                    out.append(_Cell(gname, arm, metric, float(s.mean()), se, n))
                else:
                    k = float(np.count_nonzero(getattr(data, metric)[m]))
                    out.append(_Cell(gname, arm, metric, k / n, _rate_se(k, n), n))
    return out
