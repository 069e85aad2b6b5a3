r"""Logged bandit data, one typed record for every source off-policy evaluation reads.

A :class:`LoggedData` holds one row per logged decision: the customer's features, the arm that was
taken, the probability the logging policy gave it (``pscore``) and what followed (conversion,
revenue, cost and their net value ``revenue * margin - cost``). Two sources load into it:

* our own campaign logs (:func:`load_campaign_log`): the folder ``agent.export.export_logs`` writes
  (``decisions.parquet`` and ``events.parquet``), with the features rebuilt from the scenario and
  the simulator seed the campaign ran with (the export does not store them; see
  :func:`load_campaign_log` for what is rebuilt and what the export leaves out);
* external randomized experiments (:func:`load_external`): a CSV or Parquet file with feature
  columns, an action column, outcome columns and a propensity column or known assignment
  probabilities, described by a small declared :class:`BanditLogMapping` (why it is not
  :class:`simulators.fit_data.LogMapping`: see its docstring). :func:`hillstrom_mapping` is the
  one for ``../shared/data/hillstrom.csv`` (uniform 1/3 assignment over three arms).

Bad files and columns raise :class:`LogError` (:mod:`simulators.fit_data`'s) with a message
that names the column.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> _ = open(path, "w").write("x,arm,buy,spend\n0.1,a,0,0\n0.9,b,1,10\n")
    >>> m = BanditLogMapping(action="arm", arms={"a": "no_contact", "b": "email/x/none"},
    ...     numeric={"x": (0, 1)}, conversion="buy", revenue="spend",
    ...     assignment={"a": 0.5, "b": 0.5}, margin=0.5)
    >>> d = load_external(path, m)
    >>> d.action.tolist(), d.reward.tolist()
    ([0, 1], [0.0, 5.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.fit_data import LogError as LogError  # one error for an unusable log, re-exported
from simulators.types import NO_CONTACT, BoolArray, EventKind, FloatArray, IntArray

if TYPE_CHECKING:
    from simulators import Scenario


@dataclass(frozen=True)
class LoggedData:
    """Logged bandit feedback, one row per decision (struct of arrays).

    Attributes:
        features: ``(n, d)`` float32 customer features (scaled to about [0, 1]).
        feature_names: ``(d,)`` names of the feature columns.
        action: ``(n,)`` logged arm index into :attr:`arm_names`.
        arm_names: ``(n_arms,)`` arm names; index 0 is no contact when the source has it.
        pscore: ``(n,)`` probability the logging policy gave the logged arm, in (0, 1].
        conversion: ``(n,)`` conversions that followed (0/1 for most sources).
        revenue: ``(n,)`` revenue that followed (dollars).
        cost: ``(n,)`` cost of the decision (send plus offer cost, dollars).
        reward: ``(n,)`` net value ``revenue * margin - cost``, the default outcome OPE estimates.
        margin: the margin used for :attr:`reward`.
        mask: ``(n, n_arms)`` arms the logging policy could choose for each row.
        arm_cost: ``(n_arms,)`` send cost of each arm (dollars).
        iteration: ``(n,)`` iteration of each decision (sequential replay), or ``None``.
        customer: ``(n,)`` customer id of each decision, or ``None``.
        contacts_only: ``True`` when the source logs contacts only (no-contact decisions are missing,
            so arm 0 has no support and values are conditional on contact).
        source: where the rows came from (file or folder).
    """

    features: NDArray[np.float32]
    feature_names: tuple[str, ...]
    action: IntArray
    arm_names: tuple[str, ...]
    pscore: FloatArray
    conversion: FloatArray
    revenue: FloatArray
    cost: FloatArray
    reward: FloatArray
    margin: float
    mask: BoolArray
    arm_cost: FloatArray
    iteration: IntArray | None = None
    customer: IntArray | None = None
    contacts_only: bool = False
    source: str = ""
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.action.shape[0]
        for name in ("pscore", "conversion", "revenue", "cost", "reward"):
            if getattr(self, name).shape != (n,):
                raise LogError(f"{name}: expected shape ({n},), got {getattr(self, name).shape}")
        if self.features.shape != (n, len(self.feature_names)):
            raise LogError(
                f"features: expected shape ({n}, {len(self.feature_names)}), got {self.features.shape}"
            )
        if self.mask.shape != (n, len(self.arm_names)):
            raise LogError(f"mask: expected shape ({n}, {len(self.arm_names)}), got {self.mask.shape}")
        if n and (self.action.min() < 0 or self.action.max() >= len(self.arm_names)):
            raise LogError(f"action: arm indices must be in 0..{len(self.arm_names) - 1}")
        if n and not (np.all(self.pscore > 0) and np.all(self.pscore <= 1 + 1e-9)):
            raise LogError("pscore: every propensity must be in (0, 1]")

    def __len__(self) -> int:
        return int(self.action.shape[0])

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arm_names)

    def select(self, rows: IntArray | BoolArray) -> LoggedData:
        """The rows ``rows`` (indices or a boolean mask), in that order."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, np.int64)
        return replace(
            self,
            features=self.features[idx],
            action=self.action[idx],
            pscore=self.pscore[idx],
            conversion=self.conversion[idx],
            revenue=self.revenue[idx],
            cost=self.cost[idx],
            reward=self.reward[idx],
            mask=self.mask[idx],
            iteration=None if self.iteration is None else self.iteration[idx],
            customer=None if self.customer is None else self.customer[idx],
        )

    def with_margin(self, margin: float) -> LoggedData:
        """The same rows with :attr:`reward` recomputed for another margin."""
        return replace(self, margin=margin, reward=self.revenue * margin - self.cost)

    def split(self, share: float, seed: int) -> tuple[LoggedData, LoggedData]:
        """A seeded random split: ``(train, holdout)`` with ``share`` of the rows held out
        (each part keeps the logged order)."""
        if not 0.0 < share < 1.0:
            raise ValueError(f"holdout share must be in (0, 1), got {share}")
        rng = np.random.default_rng(seed)
        held = rng.random(len(self)) < share
        return self.select(~held), self.select(held)


# -- external files ---------------------------------------------------------------------------


class BanditLogMapping(BaseModel):
    """How the columns of an external experiment file map onto :class:`LoggedData` (bandit feedback).

    Not :class:`simulators.fit_data.LogMapping`, which reads the same kind of file for another
    purpose: that one turns a log into a *scenario* (segments, recency, monetary bands, product
    lines and attribute values become scenario names; arms come from one arm column or from
    channel / content / offer columns, in name order). This one turns it into a *design matrix and
    propensities* for off-policy evaluation and offline training: every feature is declared with
    fixed scaling bounds or one-hot levels and the arms in a fixed order, because a policy trained
    on one file is evaluated on another and must see the same feature columns and arm indices;
    and it adds what only OPE needs (a propensity column or known assignment probabilities, per-row
    or per-arm costs, the margin of the net value). The two share the meaning of the arm and outcome
    columns and one :class:`LogError`.

    Attributes:
        action: the column holding the arm taken.
        arms: file value -> arm name, in arm order (``no_contact`` first when there is one).
        numeric: numeric feature column -> ``(low, high)``: scaled to ``(x - low) / (high - low)``
            and clipped to [0, 1]; with ``log`` listing the column, ``log1p`` is applied to the
            value and the bounds first.
        log: numeric columns scaled on a log1p scale.
        categorical: categorical feature column -> its levels (one-hot, in that order); a value
            not listed is an error naming the column.
        conversion: the conversion column (0/1), or ``None`` (then conversions are ``revenue > 0``).
        revenue: the revenue column (dollars), or ``None`` (zero revenue).
        cost: a per-row cost column, or ``None`` to use ``arm_cost``.
        arm_cost: arm name -> send cost in dollars (arms not listed cost 0).
        pscore: the propensity column, or ``None`` to use ``assignment``.
        assignment: file value -> known assignment probability (randomized experiments).
        margin: profit share of revenue for the net value ``revenue * margin - cost``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    arms: dict[str, str] = Field(min_length=2)
    numeric: dict[str, tuple[float, float]] = Field(default_factory=dict)
    log: tuple[str, ...] = ()
    categorical: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    conversion: str | None = None
    revenue: str | None = None
    cost: str | None = None
    arm_cost: dict[str, float] = Field(default_factory=dict)
    pscore: str | None = None
    assignment: dict[str, float] | None = None
    margin: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> BanditLogMapping:
        if (self.pscore is None) == (self.assignment is None):
            raise ValueError("give exactly one of pscore (a column) and assignment (known probabilities)")
        if self.assignment is not None:
            unknown = sorted(set(self.assignment) - set(self.arms))
            if unknown:
                raise ValueError(f"assignment: values {unknown} are not in arms {list(self.arms)}")
            total = sum(self.assignment.values())
            if not math.isclose(total, 1.0, abs_tol=1e-6) or min(self.assignment.values()) <= 0:
                raise ValueError(f"assignment: probabilities must be > 0 and sum to 1, got {total:g}")
        unknown = sorted(set(self.arm_cost) - set(self.arms.values()))
        if unknown:
            raise ValueError(f"arm_cost: arms {unknown} are not in {list(self.arms.values())}")
        for col, (lo, hi) in self.numeric.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"numeric.{col}: need finite bounds with high > low, got ({lo}, {hi})")
        bad = sorted(set(self.log) - set(self.numeric))
        if bad:
            raise ValueError(f"log: columns {bad} are not numeric features")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the mapping reads."""
        cols = [self.action, *self.numeric, *self.categorical]
        cols += [c for c in (self.conversion, self.revenue, self.cost, self.pscore) if c is not None]
        return tuple(cols)


def hillstrom_mapping(margin: float = 0.35, email_cost: float = 0.001) -> BanditLogMapping:
    """The mapping of Kevin Hillstrom's e-mail experiment (``../shared/data/hillstrom.csv``).

    Arms follow the ``hillstrom`` scenario (0 no contact, 1 men's e-mail, 2 women's e-mail),
    assignment is uniform (1/3 each), revenue is ``spend``, an e-mail costs ``email_cost``.
    The defaults are the ``retail`` scenario's margin and e-mail send cost (see :func:`retail_economics`).
    """
    return BanditLogMapping(
        action="segment",
        arms={
            "No E-Mail": "no_contact",
            "Mens E-Mail": "email/mens/none",
            "Womens E-Mail": "email/womens/none",
        },
        numeric={
            "recency": (1.0, 12.0),
            "history": (29.99, 3345.93),
            "mens": (0, 1),
            "womens": (0, 1),
            "newbie": (0, 1),
        },
        log=("history",),
        categorical={
            "zip_code": ("Urban", "Surburban", "Rural"),
            "channel": ("Phone", "Web", "Multichannel"),
        },
        conversion="conversion",
        revenue="spend",
        arm_cost={"email/mens/none": email_cost, "email/womens/none": email_cost},
        assignment={"No E-Mail": 1 / 3, "Mens E-Mail": 1 / 3, "Womens E-Mail": 1 / 3},
        margin=margin,
    )


def retail_economics() -> tuple[float, float]:
    """``(margin, email send cost)`` of the built-in ``retail`` scenario."""
    from simulators import load_scenario

    sc = load_scenario("retail")
    return float(sc.margin), float(sc.channels["email"].send_cost)


def read_mapping(name_or_path: str) -> BanditLogMapping:
    """A mapping by name (``hillstrom``: the retail scenario's economics) or from a YAML/JSON file.

    Raises:
        LogError: unknown name, unreadable file, or a mapping that does not validate.
    """
    if name_or_path == "hillstrom":
        margin, cost = retail_economics()
        return hillstrom_mapping(margin, cost)
    import yaml

    path = Path(name_or_path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise LogError(
            f"mapping {name_or_path!r}: not 'hillstrom' nor a readable YAML/JSON file ({err})"
        ) from None
    try:
        return BanditLogMapping.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "mapping"
        raise LogError(f"mapping {name_or_path!r}: {where}: {first['msg']}") from None


def _read_table(path: Path) -> Any:
    """The file as a ``pyarrow.Table`` (Parquet by its suffix, else CSV)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LogError(f"{path}: no such file")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    try:
        return pq.read_table(path) if parquet else pacsv.read_csv(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        kind = "Parquet" if parquet else "CSV"
        raise LogError(f"{path}: cannot read as {kind} ({' '.join(str(err).split())})") from None


def _numeric(table: Any, col: str, path: Path) -> FloatArray:
    """Column ``col`` as float64, or a :class:`LogError` naming it and the first bad row."""
    import pyarrow as pa

    column = table.column(col)
    try:
        values = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowException, ValueError):
        raise LogError(f"{path}: column {col!r} must be numeric (it holds {column.type})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LogError(f"{path}: column {col!r} must be numeric and finite; row {row} is missing or infinite")
    return values


def _text(table: Any, col: str) -> NDArray[np.str_]:
    import pyarrow as pa

    return np.asarray(table.column(col).cast(pa.string()).to_numpy(zero_copy_only=False), dtype=str)


def load_external(path: str | Path, mapping: BanditLogMapping) -> LoggedData:
    """Load an external randomized experiment (CSV, or Parquet by the ``.parquet`` suffix).

    Args:
        path: the file.
        mapping: what each column means.

    Returns:
        The rows in file order (no iteration or customer columns: a one-shot experiment).

    Raises:
        LogError: unreadable file, missing column, non-numeric value, unknown arm or level,
            propensity outside (0, 1].
    """
    file = Path(path)
    table = _read_table(file)
    missing = [c for c in mapping.columns if c not in table.column_names]
    if missing:
        raise LogError(f"{file}: column {missing[0]!r} is missing (the file has {table.column_names})")
    n = table.num_rows
    values = list(mapping.arms)
    arm_names = tuple(mapping.arms.values())
    raw = _text(table, mapping.action)
    index = {v: i for i, v in enumerate(values)}
    action = np.array([index.get(v, -1) for v in raw], dtype=np.int64)
    if n and action.min() < 0:
        bad = str(raw[int(np.flatnonzero(action < 0)[0])])
        raise LogError(f"{file}: column {mapping.action!r} has value {bad!r}, not one of {values}")
    cols: list[NDArray[np.float64]] = []
    names: list[str] = []
    for col, (lo, hi) in mapping.numeric.items():
        x = _numeric(table, col, file)
        if col in mapping.log:
            x, lo, hi = np.log1p(np.maximum(x, 0.0)), math.log1p(max(lo, 0.0)), math.log1p(hi)
        cols.append(np.clip((x - lo) / (hi - lo), 0.0, 1.0)[:, None])
        names.append(col)
    for col, levels in mapping.categorical.items():
        text = _text(table, col)
        lookup = {v: i for i, v in enumerate(levels)}
        code = np.array([lookup.get(v, -1) for v in text], dtype=np.int64)
        if n and code.min() < 0:
            bad = str(text[int(np.flatnonzero(code < 0)[0])])
            raise LogError(f"{file}: column {col!r} has level {bad!r}, not one of {list(levels)}")
        cols.append(np.eye(len(levels))[code])
        names += [f"{col}={v}" for v in levels]
    features = np.concatenate(cols, axis=1) if cols else np.zeros((n, 0))
    revenue = _numeric(table, mapping.revenue, file) if mapping.revenue else np.zeros(n)
    conversion = (
        _numeric(table, mapping.conversion, file) if mapping.conversion else (revenue > 0).astype(float)
    )
    arm_cost = np.array([mapping.arm_cost.get(a, 0.0) for a in arm_names])
    cost = _numeric(table, mapping.cost, file) if mapping.cost else arm_cost[action]
    if mapping.pscore is not None:
        pscore = _numeric(table, mapping.pscore, file)
        if n and not (np.all(pscore > 0) and np.all(pscore <= 1)):
            raise LogError(f"{file}: column {mapping.pscore!r} must hold propensities in (0, 1]")
    else:
        assert mapping.assignment is not None
        probs = np.array([mapping.assignment.get(v, 0.0) for v in values])
        pscore = probs[action]
        if n and pscore.min() <= 0:
            raise LogError(f"{file}: column {mapping.action!r} holds an arm with assignment probability 0")
    mask = np.ones((n, len(arm_names)), dtype=bool)
    if mapping.assignment is not None:
        mask[:, [mapping.assignment.get(v, 0.0) <= 0 for v in values]] = False
    return LoggedData(
        features=features.astype(np.float32),
        feature_names=tuple(names),
        action=action,
        arm_names=arm_names,
        pscore=pscore,
        conversion=conversion,
        revenue=revenue,
        cost=cost,
        reward=revenue * mapping.margin - cost,
        margin=mapping.margin,
        mask=mask,
        arm_cost=arm_cost,
        source=str(file),
    )


# -- our own campaign logs --------------------------------------------------------------------


def campaign_sim_seed(seed: int | None) -> int:
    """The simulator seed of a campaign run with ``seed`` (as ``agent.loop.Campaign`` derives it:
    the first of three ``SeedSequence`` children; a test checks they agree)."""
    return int(np.random.SeedSequence(seed).spawn(3)[0].generate_state(1)[0])


def load_campaign_log(
    folder: str | Path,
    scenario: Scenario,
    sim_seed: int,
    n_customers: int | None = None,
    margin: float | None = None,
) -> LoggedData:
    """Load a campaign's exported decision and event logs (``agent.export.export_logs``).

    The export stores the customer index but not the features, so they are rebuilt: the static
    features from ``Simulator(scenario, n_customers).reset(sim_seed)`` (the campaign's world:
    ``Campaign.sim_seed``, or :func:`campaign_sim_seed` of the campaign's seed), the
    contact-history features (``contacts``, ``since_last_contact``, ``fatigue``) and the
    reachability (unsubscribes) replayed from the log itself, as the simulator computes them at
    the start of each iteration. Rows are decisions in logged order (iteration, then decision id).

    The export holds **contacts only**: a decision of no contact is not logged, so arm 0 has no
    support and estimates are conditional on contact (``contacts_only`` is set; the OPE
    diagnostics say so). Revenue and conversions are the converted events joined on
    ``decision_id``; cost is what the ledger charged.

    Raises:
        LogError: a missing file or column, or customers outside the rebuilt population.
    """
    from simulators import Simulator

    root = Path(folder)
    need = {
        "decisions": ("decision_id", "iteration", "customer", "arm", "pscore", "charged"),
        "events": ("decision_id", "customer", "kind", "iteration", "revenue"),
    }
    cols: dict[str, dict[str, NDArray[Any]]] = {}
    for kind, names in need.items():
        path = root / f"{kind}.parquet"
        if not path.is_file():
            raise LogError(f"{root}: no {path.name} (expected the folder written by `simulate --export-log`)")
        table = _read_table(path)
        for c in names:
            if c not in table.column_names:
                raise LogError(f"{path}: column {c!r} is missing (the file has {table.column_names})")
        cols[kind] = {c: _text(table, c) if c == "kind" else _numeric(table, c, path) for c in names}
    dec, ev = cols["decisions"], cols["events"]
    order = np.lexsort((dec["decision_id"], dec["iteration"]))
    ids = dec["decision_id"][order].astype(np.int64)
    iteration = dec["iteration"][order].astype(np.int64)
    customer = dec["customer"][order].astype(np.int64)
    action = dec["arm"][order].astype(np.int64)
    sim = Simulator(scenario, n_customers=n_customers)
    sim.reset(seed=sim_seed)
    where = root / "decisions.parquet"
    if ids.size and (customer.min() < 0 or customer.max() >= sim.n_customers):
        raise LogError(f"{where}: column 'customer' exceeds the population of {sim.n_customers}")
    arms = sim.arms
    if ids.size and (action.min() < 0 or action.max() >= len(arms)):
        raise LogError(f"{where}: column 'arm' is outside the scenario's arms 0..{len(arms) - 1}")
    ev_arrays = {k: v if k == "kind" else v.astype(np.int64) for k, v in ev.items() if k != "revenue"}
    features, mask = _replayed_features(sim, ids, customer, iteration, action, ev_arrays)
    # conversions: distinct (decision, iteration, revenue) converted events joined on decision_id
    conv = (ev["kind"] == EventKind.CONVERTED.name.lower()) & (ev["decision_id"] >= 0)
    rows = np.unique(
        np.stack([ev["decision_id"][conv], ev["iteration"][conv], ev["revenue"][conv]], 1), axis=0
    )
    row_of, hit = lookup(ids, rows[:, 0].astype(np.int64))
    conversion = np.bincount(row_of[hit], minlength=ids.size).astype(np.float64)
    revenue = np.bincount(row_of[hit], weights=rows[hit, 2], minlength=ids.size).astype(np.float64)
    cost = dec["charged"][order]
    m = float(scenario.margin if margin is None else margin)
    return LoggedData(
        features=features,
        feature_names=sim.feature_names,
        action=action,
        arm_names=arms.names,
        pscore=dec["pscore"][order],
        conversion=conversion,
        revenue=revenue,
        cost=cost,
        reward=revenue * m - cost,
        margin=m,
        mask=mask,
        arm_cost=np.asarray(arms.send_cost, np.float64),
        iteration=iteration,
        customer=customer,
        contacts_only=True,
        source=str(root),
    )


def lookup(ids: IntArray, query: IntArray) -> tuple[IntArray, BoolArray]:
    """Row of each ``query`` id in ``ids`` and whether it is there (``ids`` distinct apart from
    values never queried, such as -1).

    Returns:
        ``(row (m,), hit (m,))`` for ``m`` queries; ``row`` is meaningful where ``hit``.
    """
    if ids.size == 0:
        return np.zeros(query.shape, np.int64), np.zeros(query.shape, bool)
    order = np.argsort(ids)
    pos = np.minimum(np.searchsorted(ids, query, sorter=order), ids.size - 1)
    row = order[pos]
    return row, ids[row] == query


def _replayed_features(
    sim: Any,
    ids: IntArray,
    customer: IntArray,
    iteration: IntArray,
    action: IntArray,
    ev: dict[str, NDArray[Any]],
) -> tuple[NDArray[np.float32], BoolArray]:
    """Features and arm masks of logged decisions at the start of their iterations, the contact
    history replayed from the log into ``sim`` (a send counts as a contact, a delivered event
    raises fatigue, an unsubscribe closes the decision's channel; :meth:`Simulator.advance`
    decays fatigue between iterations)."""
    n_rows = customer.shape[0]
    feats = np.zeros((n_rows, len(sim.feature_names)), np.float32)
    mask = np.ones((n_rows, len(sim.arms)), bool)
    if n_rows == 0:
        return feats, mask
    kinds, ev_c, ev_t, ev_id = ev["kind"], ev["customer"], ev["iteration"], ev["decision_id"]
    delivered = kinds == EventKind.DELIVERED.name.lower()
    unsub = kinds == EventKind.UNSUBSCRIBED.name.lower()
    for t in range(int(iteration.max()) + 1):
        rows = np.flatnonzero(iteration == t)
        if rows.size:
            feats[rows] = sim.features(customer[rows])
            mask[rows] = sim.arm_mask(customer[rows])
        sent = rows[action[rows] != NO_CONTACT]
        sim.contacts[customer[sent]] += 1
        sim.last_contact[customer[sent]] = t
        np.add.at(sim.fatigue, ev_c[delivered & (ev_t == t)], 1.0)
        u = np.flatnonzero(unsub & (ev_t == t))
        if u.size:
            row, known = lookup(ids, ev_id[u])
            arm = action[row[known]]
            sim.unsubscribed[ev_c[u[known]], sim.arms.channel[arm]] = True
        sim.advance()
    return feats, mask


# -- simulated logs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedLog:
    """A one-iteration log drawn from the simulator, with the ground truth OPE is tested against.

    Attributes:
        data: the log (every customer once, in index order).
        truth: ``(n, n_arms)`` expected net value ``revenue * margin - cost`` of every arm for every
            customer (``Simulator.expected``), before anything was sent.
        logging: ``(n, n_arms)`` the logging policy's probabilities.
    """

    data: LoggedData
    truth: FloatArray
    logging: FloatArray

    def value(self, pi: FloatArray) -> float:
        """True value per customer of target probabilities ``pi`` ``(n, n_arms)``."""
        return float(np.sum(pi * self.truth) / len(self.data))


def simulate_log(sim: Any, seed: int, epsilon: float | None = None, greedy_arm: int = 1) -> SimulatedLog:
    """Log one iteration of a simulator: every customer gets an arm from the logging policy, the
    simulator responds (delayed conversions are waited for; organic conversions of customers not
    contacted count for arm 0).

    Args:
        sim: a :class:`simulators.Simulator` (reset here with ``seed``).
        seed: population, response and logging seed.
        epsilon: ``None`` for uniform logging over each customer's allowed arms; else
            epsilon-greedy: ``greedy_arm`` (when allowed, else no contact) with probability
            ``1 - epsilon``, a uniformly random allowed arm otherwise.
        greedy_arm: the logging policy's favourite arm.
    """
    sim.reset(seed=seed)
    n, k = sim.n_customers, len(sim.arms)
    c = np.arange(n, dtype=np.int64)
    features, mask = sim.features(c), sim.arm_mask(c)
    mu = mask / mask.sum(axis=1, keepdims=True)
    if epsilon is not None:
        greedy = np.where(mask[:, greedy_arm], greedy_arm, NO_CONTACT)
        mu = epsilon * mu
        mu[c, greedy] += 1.0 - epsilon
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    action = np.minimum((rng.random(n)[:, None] > np.cumsum(mu, axis=1)).sum(axis=1), k - 1)
    truth = sim.expected(c[:, None], np.arange(k)[None, :]).net_value(sim.margin)
    batches = [sim.send(c, c, action)]
    for _ in range(sim.max_delay + 1):
        batches.append(sim.advance())
    kind, dec, cust, t = (
        np.concatenate([getattr(b, f) for b in batches])
        for f in ("kind", "decision_id", "customer", "iteration")
    )
    rev, offer = (np.concatenate([getattr(b, f) for b in batches]) for f in ("revenue", "offer_cost"))
    conv = kind == EventKind.CONVERTED
    counted = conv & ((dec >= 0) | (t == 0))  # attributed, or organic within the logged iteration
    revenue = np.bincount(cust[counted], weights=rev[counted], minlength=n).astype(np.float64)
    conversion = np.bincount(cust[counted], minlength=n).astype(np.float64)
    cost = sim.arms.send_cost[action] + np.bincount(cust[counted], weights=offer[counted], minlength=n)
    data = LoggedData(
        features=features,
        feature_names=sim.feature_names,
        action=action,
        arm_names=sim.arms.names,
        pscore=mu[c, action],
        conversion=conversion,
        revenue=revenue,
        cost=cost,
        reward=revenue * sim.margin - cost,
        margin=float(sim.margin),
        mask=mask,
        arm_cost=np.asarray(sim.arms.send_cost, np.float64),
        customer=c,
        source=f"simulated {sim.scenario.name} seed {seed}",
    )
    return SimulatedLog(data, truth, mu)
