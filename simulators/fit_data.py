"""A randomized campaign log as data for :mod:`simulators.fit`: the column mapping
(:class:`LogMapping`), reading a CSV or Parquet file (:func:`load_log`), the customers' features
shared by the log and simulated populations (:class:`Features`) and the cells the fit and the
report compare (:func:`data_cells`).

A log has one row per customer: feature columns, the arm the customer was given (one arm column,
or channel / content / offer columns, with a "no contact" value) and outcome columns (visit or
click, conversion, spend or revenue). The defaults of :class:`LogMapping` name the columns of
Kevin Hillstrom's e-mail file (``../shared/data/hillstrom.csv``).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulators.simulator import Simulator
from simulators.types import BoolArray, FloatArray, IntArray

METRICS: tuple[str, ...] = ("visit", "conversion", "spend")
"""What a log's cells measure: visit rate, conversion rate, dollars per customer."""
N_BANDS = 7
"""Monetary bands of the fit cells when a mapping gives no ``monetary_bands`` (equal counts)."""
MAX_RECENCY = 36
"""Recency values are whole months, clipped to 1..MAX_RECENCY."""

_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "false", "f", "no", "n", ""}


class LogError(ValueError):
    """A log or mapping that cannot be used; the message names the file, column or line."""


class LogMapping(BaseModel):
    """Which columns of a log hold what, and how their values become scenario names.

    Every column default is the Hillstrom file's name; a defaulted feature column that the file
    lacks is left out (the fitted scenario then has no such feature), a column named explicitly
    must exist. Values are turned into scenario names with ``values`` / ``segment_values`` /
    ``arms`` when listed there, else lower-cased with other characters replaced by ``_``.

    It describes a log as the data a *scenario* is fitted to (``scenario fit``) and that
    ``report ab`` groups by arm. Off-policy evaluation and offline training read the same kind of
    file through :class:`experiments.logs.BanditLogMapping`, which declares what this one does not
    need: each feature's fixed scaling bounds or one-hot levels and the arms' fixed order (the
    design matrix a saved policy sees) and the logging propensities, costs and margin.

    Attributes:
        name: the fitted scenario's name.
        source: how reports name the log (default: the file name).
        arm: the one column naming each customer's arm (``None`` with channel/content/offer).
        channel, content, offer: arm columns (used when ``arm`` is ``None``).
        no_contact: the values meaning "not contacted" (the control).
        arms: arm value -> ``channel/content/offer`` of the scenario (other values of a single
            arm column become ``<default_channel>/<value>/none``).
        arm_labels: arm value -> its name in reports (default: ``no_contact`` or the value).
        default_channel: the channel of a single arm column's values not listed in ``arms``.
        visit, conversion, spend: outcome columns (0/1, 0/1, dollars); ``visit`` may be a click
            column, ``visit`` and ``spend`` may be ``None``.
        segment: lifecycle column (one scenario segment per value); ``segment_values`` names them
            (the default names, Hillstrom's ``new`` and ``returning``, apply to the default column
            only).
        recency: months since the last purchase (whole months, 1..36).
        monetary: dollars spent in the last year.
        monetary_bands: upper edges of the monetary bands of the fit cells (default: equal-count
            bands).
        product_lines: scenario product line -> its 0/1 column ("bought from this line").
        attributes: scenario attribute -> its categorical column.
        values: per attribute, column value -> scenario value (also sets the order of values:
            the first is the reference whose effects are 1).
        scenario: scenario fields merged into the fitted scenario before the fit (costs,
            default goal, description, priors of the response parameters).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="fitted", min_length=1, max_length=100)
    source: str = ""
    arm: str | None = "segment"
    channel: str | None = None
    content: str | None = None
    offer: str | None = None
    no_contact: list[str] = Field(
        default_factory=lambda: ["No E-Mail", "no_contact", "No Contact", "none", "control", ""]
    )
    arms: dict[str, str] = Field(
        default_factory=lambda: {"Mens E-Mail": "email/mens/none", "Womens E-Mail": "email/womens/none"}
    )
    arm_labels: dict[str, str] = Field(
        default_factory=lambda: {
            "No E-Mail": "no_email",
            "Mens E-Mail": "mens_email",
            "Womens E-Mail": "womens_email",
        }
    )
    default_channel: str = "email"
    visit: str | None = "visit"
    conversion: str = "conversion"
    spend: str | None = "spend"
    segment: str | None = "newbie"
    segment_values: dict[str, str] = Field(default_factory=lambda: {"1": "new", "0": "returning"})
    recency: str | None = "recency"
    monetary: str | None = "history"
    monetary_bands: list[float] | None = None
    product_lines: dict[str, str] = Field(default_factory=lambda: {"mens": "mens", "womens": "womens"})
    attributes: dict[str, str] = Field(
        default_factory=lambda: {"zip_code": "zip_code", "purchase_channel": "channel"}
    )
    values: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "zip_code": {"Urban": "urban", "Surburban": "suburban", "Suburban": "suburban", "Rural": "rural"},
            "purchase_channel": {"Phone": "phone", "Web": "web", "Multichannel": "multichannel"},
        }
    )
    scenario: dict[str, Any] = Field(default_factory=dict)

    @staticmethod
    def from_file(path: str | Path) -> LogMapping:
        """Read a mapping YAML file (the fields of :class:`LogMapping`).

        Raises:
            LogError: unreadable file or invalid fields, naming them.
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise LogError(f"mapping {str(path)!r}: cannot read it ({err})") from None
        try:
            return LogMapping.model_validate(data if data is not None else {})
        except ValidationError as err:
            bad = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors())
            raise LogError(f"mapping {str(path)!r}: {bad}") from None


def slug(value: str) -> str:
    """A value as a scenario name: lower case, runs of other characters as ``_``."""
    s = re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")
    return s or "blank"


def read_columns(path: str | Path) -> dict[str, list[str]]:
    """The columns of a CSV (header row) or Parquet file, every value as text.

    Raises:
        FileNotFoundError: no such file.
        LogError: unreadable, or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log file {str(path)!r} does not exist")
    cols: dict[str, list[str]] = {}
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as err:  # pyarrow raises its own error types for a bad file
            raise LogError(f"{path}: not a readable Parquet file ({err})") from None
        for name in table.column_names:
            cols[name] = ["" if v is None else _text(v) for v in table.column(name).to_pylist()]
    else:
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    raise LogError(f"{path}: empty file, expected a header row")
                header = [h.strip() for h in header]
                lists: list[list[str]] = [[] for _ in header]
                for line, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    if len(row) != len(header):
                        raise LogError(
                            f"{path}: line {line}: {len(row)} fields, the header has {len(header)}"
                        )
                    for lst, v in zip(lists, row, strict=True):
                        lst.append(v.strip())
                cols = dict(zip(header, lists, strict=True))
        except (UnicodeDecodeError, csv.Error) as err:
            raise LogError(f"{path}: not a UTF-8 CSV file ({err})") from None
    if not cols or not next(iter(cols.values())):
        raise LogError(f"{path}: no rows")
    return cols


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class Features:
    """The mapped features of a set of customers (a log's or a simulated population's).

    Attributes:
        segment: ``(n,)`` codes into ``segments``.
        segments: segment names.
        recency: ``(n,)`` months, or ``None`` when not mapped.
        monetary: ``(n,)`` dollars spent last year, or ``None``.
        lines: ``(n, n_lines)`` bought from each product line.
        line_names: product line names.
        attributes: attribute name -> (``(n,)`` codes, value names).
        bands: upper edges of the monetary bands of the fit cells.
        combo_set: the product-line combinations (bit masks, see :meth:`combo`) that have
            groups: those of the log, in the order of :meth:`combos`.
        max_recency: the largest recency month with a fit cell.
    """

    segment: IntArray
    segments: tuple[str, ...]
    recency: IntArray | None
    monetary: FloatArray | None
    lines: BoolArray
    line_names: tuple[str, ...]
    attributes: dict[str, tuple[IntArray, tuple[str, ...]]]
    bands: tuple[float, ...] = ()
    combo_set: tuple[int, ...] = ()
    max_recency: int = 0

    def __len__(self) -> int:
        return int(self.segment.shape[0])

    @staticmethod
    def of_simulator(sim: Simulator, like: Features) -> Features:
        """The features of a simulator's current population, mapped like ``like`` (a log's).

        Raises:
            ValueError: the scenario lacks a segment, line or attribute ``like`` has.
        """
        sc, pop = sim.scenario, sim.population
        seg_names = list(sc.population.segments)
        lines = sc.population.product_lines.lines
        try:
            seg_map = np.array([like.segments.index(s) for s in seg_names], np.int64)
            line_idx = [lines.index(ln) for ln in like.line_names]
            attrs: dict[str, tuple[IntArray, tuple[str, ...]]] = {}
            for name, (_, values) in like.attributes.items():
                sim_values = list(sc.population.attributes[name])
                amap = np.array([values.index(v) for v in sim_values], np.int64)
                attrs[name] = (amap[pop.attributes[name]], values)
        except (ValueError, KeyError) as err:
            raise ValueError(f"scenario {sc.name!r} does not have the log's features: {err}") from None
        return Features(
            segment=seg_map[pop.segment],
            segments=like.segments,
            recency=pop.recency if like.recency is not None else None,
            monetary=pop.monetary if like.monetary is not None else None,
            lines=pop.lines_observed[:, line_idx] if line_idx else np.zeros((pop.segment.size, 0), bool),
            line_names=like.line_names,
            attributes=attrs,
            bands=like.bands,
            combo_set=like.combo_set,
            max_recency=like.max_recency,
        )

    def combo(self) -> IntArray:
        """``(n,)`` each customer's combination of product lines as a bit mask."""
        weights = 1 << np.arange(self.lines.shape[1], dtype=np.int64)
        return (self.lines.astype(np.int64) @ weights).astype(np.int64)

    def combo_label(self, mask: int) -> str:
        """A report name of a combination: ``mens_only``, ``mens_and_womens``, ``no_line``."""
        parts = [ln for i, ln in enumerate(self.line_names) if mask >> i & 1]
        if not parts:
            return "no_line"
        if len(parts) == 1:
            return f"{parts[0]}_only" if len(self.line_names) > 1 else parts[0]
        return "_and_".join(parts)

    def band(self) -> IntArray:
        """``(n,)`` the monetary band, 0..len(bands)."""
        if self.monetary is None:
            return np.zeros(len(self), np.int64)
        return np.searchsorted(np.array(self.bands), self.monetary, side="right").astype(np.int64)

    def groups(self, *, fit: bool = False) -> dict[str, BoolArray]:
        """Masks of the report groups, or (``fit=True``) of the fitting cells.

        Report groups: ``all``, each product-line combination, each segment (when more than
        one). Fitting cells: ``all``, combination x segment, each attribute value, each recency
        month, each monetary band (overlapping cells: a method of moments).

        Args:
            fit: the fitting cells instead of the report groups.
        """
        n = len(self)
        combo = self.combo()
        masks = {self.combo_label(m): combo == m for m in self.combo_set}
        segs = {s: self.segment == i for i, s in enumerate(self.segments)}
        out: dict[str, BoolArray] = {"all": np.ones(n, bool)}
        if not fit:
            if len(masks) > 1:
                out.update(masks)
            if len(segs) > 1:
                out.update(segs)
            return out
        for cname, cmask in masks.items():
            if len(segs) > 1:
                for sname, smask in segs.items():
                    out[f"{cname}&{sname}"] = cmask & smask
            elif len(masks) > 1:
                out[cname] = cmask
        for attr, (codes, values) in self.attributes.items():
            for code, v in enumerate(values):
                out[f"{attr}={v}"] = codes == code
        if self.recency is not None:
            for month in range(1, self.max_recency + 1):
                out[f"recency={month}"] = self.recency == month
        if self.monetary is not None:
            band = self.band()
            for b in range(len(self.bands) + 1):
                out[f"monetary_band={b + 1}"] = band == b
        return out


@dataclass(frozen=True)
class LogData:
    """A log as arrays, one row per customer.

    Attributes:
        features: the mapped features.
        arm: ``(n,)`` the scenario's arm index (0 = no contact, i = ``arm_names[i - 1]``).
        arm_names: the scenario's arms, ``channel/content/offer``.
        arm_labels: report names of arm 0 (no contact) and of each arm.
        visit: ``(n,)`` visited (or clicked), or ``None`` when the log has no such column.
        conversion: ``(n,)`` converted.
        spend: ``(n,)`` dollars, or ``None``.
        source: how reports name the log.
        notes: what was left out or assumed while reading.
    """

    features: Features
    arm: IntArray
    arm_names: tuple[str, ...]
    arm_labels: tuple[str, ...]
    visit: BoolArray | None
    conversion: BoolArray
    spend: FloatArray | None
    source: str
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics this log measures."""
        return tuple(
            m
            for m in METRICS
            if not ((m == "visit" and self.visit is None) or (m == "spend" and self.spend is None))
        )

    def outcome(self, metric: str) -> FloatArray:
        """``(n,)`` the values of one metric."""
        x = {"visit": self.visit, "conversion": self.conversion, "spend": self.spend}[metric]
        if x is None:
            raise KeyError(f"the log has no {metric!r} column")
        return np.asarray(x, np.float64)


def _flags(col: list[str], name: str, source: str) -> BoolArray:
    out = np.empty(len(col), bool)
    for i, v in enumerate(col):
        t = v.strip().lower()
        if t in _TRUE:
            out[i] = True
        elif t in _FALSE:
            out[i] = False
        else:
            try:
                out[i] = float(t) != 0.0
            except ValueError:
                raise LogError(f"{source}: column {name!r}, row {i + 2}: {v!r} is not 0/1") from None
    return out


def _numbers(col: list[str], name: str, source: str) -> FloatArray:
    try:
        x = np.array([float(v) if v.strip() else math.nan for v in col], np.float64)
    except ValueError as err:
        raise LogError(f"{source}: column {name!r} is not numeric ({err})") from None
    if not np.all(np.isfinite(x)):
        row = int(np.flatnonzero(~np.isfinite(x))[0])
        raise LogError(f"{source}: column {name!r}, row {row + 2}: {col[row]!r} is not a finite number")
    return x


def _codes(col: list[str], known: dict[str, str], prefix: str) -> tuple[IntArray, tuple[str, ...]]:
    """Codes of scenario names for a categorical column: ``known``'s names in their order, then
    the other values by decreasing count (a value starting with a digit gets ``prefix_``, so
    that it stays a text key in YAML)."""

    def name_of(v: str) -> str:
        s = known.get(v, slug(v))
        return f"{slug(prefix)}_{s}" if s[:1].isdigit() or s[:1] in "+-." else s

    names = [name_of(v) for v in col]
    counts: dict[str, int] = {}
    for nm in names:
        counts[nm] = counts.get(nm, 0) + 1
    order = [v for v in dict.fromkeys(known.values()) if v in counts]
    order += sorted((v for v in counts if v not in order), key=lambda v: (-counts[v], v))
    index = {v: i for i, v in enumerate(order)}
    return np.array([index[nm] for nm in names], np.int64), tuple(order)


def _column(
    cols: dict[str, list[str]], mapping: LogMapping, key: str, source: str, strict: bool = True
) -> list[str] | None:
    """The column an option names; ``None`` when defaulted (or not ``strict``) and absent,
    :class:`LogError` when named explicitly and absent."""
    name = getattr(mapping, key)
    if name is None:
        return None
    if name in cols:
        return cols[name]
    if strict and key in mapping.model_fields_set:
        raise LogError(f"{source}: no column {name!r} (given as {key}); columns: {sorted(cols)}")
    return None


def features_of(
    cols: dict[str, list[str]],
    mapping: LogMapping,
    source: str,
    notes: list[str] | None = None,
    *,
    strict: bool = True,
) -> Features:
    """The mapped features of a table's rows (a log's or an audience's).

    Args:
        cols: the table's columns as text.
        mapping: which column holds what.
        source: the file, for messages.
        notes: a list the notes on the reading are appended to.
        strict: a column named explicitly must exist (an audience may lack any feature).

    Raises:
        LogError: a column named explicitly is missing (``strict``), or holds a bad value.
    """
    notes = notes if notes is not None else []
    n = len(next(iter(cols.values())))
    seg_col = _column(cols, mapping, "segment", source, strict)
    segments: tuple[str, ...]
    if seg_col is None:
        segment, segments = np.zeros(n, np.int64), ("all",)
    else:
        # Hillstrom's names of its newbie flag apply to its column only, unless given
        explicit = "segment" in mapping.model_fields_set and "segment_values" not in mapping.model_fields_set
        known = {} if explicit else mapping.segment_values
        segment, segments = _codes(seg_col, known, mapping.segment or "")
    rec_col = _column(cols, mapping, "recency", source, strict)
    recency = None
    if rec_col is not None:
        r = np.rint(_numbers(rec_col, mapping.recency or "", source))
        if np.any((r < 1) | (r > MAX_RECENCY)):
            notes.append(f"recency clipped to 1..{MAX_RECENCY} months")
        recency = np.clip(r, 1, MAX_RECENCY).astype(np.int64)
    mon_col = _column(cols, mapping, "monetary", source, strict)
    monetary = None
    bands: tuple[float, ...] = ()
    if mon_col is not None:
        monetary = np.maximum(_numbers(mon_col, mapping.monetary or "", source), 0.01)
        if mapping.monetary_bands is not None:
            bands = tuple(sorted(float(b) for b in mapping.monetary_bands))
        else:
            q = np.quantile(monetary, np.linspace(0, 1, N_BANDS + 1)[1:-1])
            bands = tuple(sorted(set(float(x) for x in q)))
    line_names: list[str] = []
    line_cols: list[BoolArray] = []
    for line, cname in mapping.product_lines.items():
        if cname in cols:
            line_names.append(line)
            line_cols.append(_flags(cols[cname], cname, source))
        elif strict and "product_lines" in mapping.model_fields_set:
            raise LogError(f"{source}: no column {cname!r} (product line {line!r}); columns: {sorted(cols)}")
    lines = np.stack(line_cols, axis=1) if line_cols else np.zeros((n, 0), bool)
    weights = 1 << np.arange(lines.shape[1], dtype=np.int64)
    present = set(np.unique(lines.astype(np.int64) @ weights).tolist())
    combo_set = tuple(sorted(present, key=lambda m: (bin(m).count("1"), [-(m >> i & 1) for i in range(64)])))
    attrs: dict[str, tuple[IntArray, tuple[str, ...]]] = {}
    for attr, cname in mapping.attributes.items():
        if cname in cols:
            attrs[attr] = _codes(cols[cname], mapping.values.get(attr, {}), attr)
        elif strict and "attributes" in mapping.model_fields_set:
            raise LogError(f"{source}: no column {cname!r} (attribute {attr!r}); columns: {sorted(cols)}")
    return Features(
        segment=segment,
        segments=segments,
        recency=recency,
        monetary=monetary,
        lines=lines,
        line_names=tuple(line_names),
        attributes=attrs,
        bands=bands,
        combo_set=combo_set,
        max_recency=int(recency.max(initial=1)) if recency is not None else 0,
    )


def _arms(
    cols: dict[str, list[str]], mapping: LogMapping, source: str
) -> tuple[IntArray, list[str], list[str]]:
    """Arm codes (0 = no contact), the scenario's arm names and the report labels."""
    no_contact = set(mapping.no_contact)
    if mapping.arm is not None and (mapping.arm in cols or mapping.channel is None):
        if mapping.arm not in cols:
            raise LogError(f"{source}: no arm column {mapping.arm!r}; columns: {sorted(cols)}")
        raw = cols[mapping.arm]
        values = list(dict.fromkeys(raw))
        known = [v for v in mapping.arms if v in values]
        others = sorted(v for v in values if v not in mapping.arms and v not in no_contact)
        scen: dict[str, str] = {}
        for v in known + others:
            scen[v] = mapping.arms.get(v, f"{slug(mapping.default_channel)}/{slug(v)}/none")
        keys = [v for v in values if v in no_contact]
        label_of = {
            v: mapping.arm_labels.get(v, "no_contact" if v in no_contact else slug(v)) for v in values
        }
    else:
        parts = []
        for key in ("channel", "content", "offer"):
            cname = getattr(mapping, key)
            if cname is not None and cname not in cols:
                raise LogError(f"{source}: no {key} column {cname!r}; columns: {sorted(cols)}")
            parts.append(cols[cname] if cname is not None else None)
        if parts[0] is None:
            raise LogError(f"{source}: give an arm column or a channel column")
        n = len(parts[0])
        raw = []
        scen = {}
        for i in range(n):
            ch = parts[0][i]
            co = parts[1][i] if parts[1] is not None else "default"
            of = parts[2][i] if parts[2] is not None else "none"
            if ch in no_contact:
                raw.append("")
                continue
            name = f"{slug(ch)}/{slug(co)}/{slug(of) if of not in no_contact else 'none'}"
            raw.append(name)
            scen[name] = name
        keys = [""] if "" in raw else []
        label_of = {v: v for v in scen}
        label_of[""] = "no_contact"
        no_contact = {""}
    arm_names: list[str] = list(dict.fromkeys(scen.values()))
    if mapping.arm is None or mapping.arm not in cols:
        arm_names.sort()  # channel/content/offer columns: arms in name order
    code_of = {v: 0 for v in no_contact}
    code_of.update({v: 1 + arm_names.index(s) for v, s in scen.items()})
    labels = ["no_contact"] + [""] * len(arm_names)
    for v in keys:
        labels[0] = label_of[v]
    for v, s in scen.items():
        i = 1 + arm_names.index(s)
        labels[i] = labels[i] or label_of[v]
    arm = np.array([code_of[v] for v in raw], np.int64)
    if not arm_names:
        raise LogError(f"{source}: every row is 'no contact'; a fit needs contacted customers")
    return arm, arm_names, labels


def load_log(path: str | Path, mapping: LogMapping | None = None) -> LogData:
    """Read a randomized log (CSV or Parquet) with a column mapping.

    Args:
        path: the file.
        mapping: which column holds what (default: the Hillstrom file's names).

    Returns:
        The log as typed arrays.

    Raises:
        FileNotFoundError: no such file.
        LogError: a missing column, a bad value, or no contacted rows.
    """
    mapping = mapping if mapping is not None else LogMapping()
    cols = read_columns(path)
    source = mapping.source or Path(path).name
    notes: list[str] = []
    feats = features_of(cols, mapping, str(path), notes)
    arm, arm_names, labels = _arms(cols, mapping, str(path))
    conv_col = cols.get(mapping.conversion)
    spend_col = _column(cols, mapping, "spend", str(path))
    spend = _numbers(spend_col, mapping.spend or "", str(path)) if spend_col is not None else None
    if conv_col is None:
        if spend is None:
            raise LogError(f"{path}: no conversion column {mapping.conversion!r}; columns: {sorted(cols)}")
        notes.append("conversion = spend > 0 (no conversion column)")
        conversion = spend > 0
    else:
        conversion = _flags(conv_col, mapping.conversion, str(path))
    visit_col = _column(cols, mapping, "visit", str(path))
    visit = _flags(visit_col, mapping.visit or "", str(path)) if visit_col is not None else None
    for key in ("segment", "recency", "monetary", "visit", "spend"):
        if getattr(mapping, key) is not None and getattr(mapping, key) not in cols:
            notes.append(f"no {key} column {getattr(mapping, key)!r}: left out")
    return LogData(
        features=feats,
        arm=arm,
        arm_names=tuple(arm_names),
        arm_labels=tuple(labels),
        visit=visit,
        conversion=conversion,
        spend=spend,
        source=source,
        notes=tuple(notes),
    )


def _rate_se(k: float, n: int) -> float:
    """Binomial standard error of a rate, with a Laplace-smoothed rate (never zero)."""
    p = (k + 1.0) / (n + 2.0)
    return math.sqrt(p * (1.0 - p) / max(n, 1))


@dataclass(frozen=True)
class Cell:
    """One data target: a metric of one group of customers under one arm.

    Attributes:
        group: group name (see :meth:`Features.groups`).
        arm: the scenario's arm index (0 = no contact).
        metric: ``visit``, ``conversion`` or ``spend``.
        data: the log's value.
        se: its standard error.
        n: rows of the log in the group and arm.
    """

    group: str
    arm: int
    metric: str
    data: float
    se: float
    n: int


def data_cells(log: LogData, *, fit: bool = False) -> list[Cell]:
    """The log's value and standard error for every (group, arm, metric) with rows.

    Args:
        log: the loaded log.
        fit: the fitting cells (visit and conversion; spend for ``all`` only) instead of the
            report groups (every metric).
    """
    out: list[Cell] = []
    for gname, gmask in log.features.groups(fit=fit).items():
        for arm in range(len(log.arm_names) + 1):
            m = gmask & (log.arm == arm)
            n = int(np.count_nonzero(m))
            if n == 0:
                continue
            for metric in log.metrics:
                if fit and metric == "spend" and gname != "all":
                    continue
                x = log.outcome(metric)[m]
                if metric == "spend":
                    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
                    out.append(Cell(gname, arm, metric, float(x.mean()), se, n))
                else:
                    k = float(np.count_nonzero(x))
                    out.append(Cell(gname, arm, metric, k / n, _rate_se(k, n), n))
    return out
