"""A/B reports and round comparisons over logged decisions and their outcomes.

Everything here is a pure function over :class:`Outcomes`, a typed table with one row per
decision (its arm, the policy that chose it, its conversion, revenue and cost). Loaders build it
from our campaign logs (``decisions.parquet`` and ``events.parquet`` as :mod:`agent.export` writes
them, :func:`outcomes_from_tables`) and from external randomized logs such as Hillstrom's
(:func:`outcomes_from_log`, through :mod:`simulators.fit_data`'s column mapping);
:func:`load_outcomes` picks the right one for a path.

* :func:`ab_report`: per group (arm, channel, content, offer or policy) the decisions, conversions,
  conversion rate with its Wilson interval, revenue and net value per customer, cost and cost
  per conversion; each group against a control (no contact when present, else the first group or
  a named one): the difference in conversion rate (Newcombe's hybrid score interval; p-value of
  the two-proportion z-test, Fisher's exact test when a cell is small), in revenue and in net
  value per customer (Welch's t interval and test), the relative lift, and every family of
  p-values corrected for multiple comparisons (Holm and Benjamini-Hochberg, both reported; the
  ``significant`` flag uses the one asked for).
* :func:`rounds_report`: one round (campaign, log) against the next: totals (decisions,
  conversions, revenue, spend, cost per conversion, net value), per-customer deltas with
  intervals (delta method for cost per conversion) and conversion rates by group, before and
  after, with corrected p-values.

Their plots are :func:`agent.plots.plot_ab` and :func:`agent.plots.plot_rounds`.

Example:
    >>> import numpy as np
    >>> arms = np.array(["no_contact"] * 1000 + ["email/a/none"] * 1000)
    >>> conv = np.r_[np.zeros(950), np.ones(50), np.zeros(900), np.ones(100)]
    >>> t = Outcomes(arm=arms, policy=np.full(2000, "random"), conversion=conv,
    ...              revenue=conv * 50, cost=np.r_[np.zeros(1000), np.full(1000, 0.01)])
    >>> rep = ab_report(t)
    >>> rep.control, round(rep.comparison("email/a/none", "conversion_rate").difference, 3)
    ('no_contact', 0.05)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from simulators.types import FloatArray

StrArray = NDArray[np.str_]
By = Literal["arm", "channel", "content", "offer", "policy"]
Correction = Literal["holm", "bh"]
BY_CHOICES: tuple[str, ...] = ("arm", "channel", "content", "offer", "policy")
NO_CONTACT = "no_contact"
METRICS: tuple[str, ...] = ("conversion_rate", "revenue_per_customer", "net_value_per_customer")
"""The metrics compared between groups: a rate (Newcombe / z-test) and two means (Welch)."""
SMALL_CELL = 5
"""Below this many expected conversions or non-conversions in a cell, Fisher's exact test."""


class ReportError(ValueError):
    """A log or parameter a report cannot use; the message names it."""


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """Decisions and their outcomes, one row each.

    Attributes:
        arm: ``(n,)`` the arm, ``channel/content/offer`` or ``no_contact``.
        policy: ``(n,)`` the policy that chose it.
        conversion: ``(n,)`` conversions that followed (0/1).
        revenue: ``(n,)`` revenue that followed (dollars).
        cost: ``(n,)`` cost of the decision: send plus offer cost (dollars).
        label: ``(n,)`` the arm's display name (default: ``arm``).
        source: where the rows came from.
    """

    arm: StrArray
    policy: StrArray
    conversion: FloatArray
    revenue: FloatArray
    cost: FloatArray
    label: StrArray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = self.arm.shape[0]
        for name in ("policy", "conversion", "revenue", "cost"):
            if getattr(self, name).shape != (n,):
                raise ReportError(f"{name}: expected shape ({n},), got {getattr(self, name).shape}")
        if self.label is not None and self.label.shape != (n,):
            raise ReportError(f"label: expected shape ({n},), got {self.label.shape}")
        for name in ("conversion", "revenue", "cost"):
            if n and not np.all(np.isfinite(getattr(self, name))):
                raise ReportError(f"{name}: every value must be finite")

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    def keys(self, by: str) -> StrArray:
        """``(n,)`` each row's group under ``by`` (``arm``, ``channel``, ``content``, ``offer`` or
        ``policy``; a part of ``no_contact`` is ``no_contact``).

        Raises:
            ReportError: an unknown ``by``.
        """
        if by == "arm":
            return self.label if self.label is not None else self.arm
        if by == "policy":
            return self.policy
        if by not in BY_CHOICES:
            raise ReportError(f"by: {by!r} is not one of {list(BY_CHOICES)}")
        part = ("channel", "content", "offer").index(by)
        names, inverse = np.unique(self.arm, return_inverse=True)
        parts = [n.split("/")[part] if n.count("/") == 2 else NO_CONTACT for n in names.tolist()]
        return np.asarray(parts, dtype=np.str_)[inverse]

    @staticmethod
    def concat(tables: Sequence[Outcomes]) -> Outcomes:
        """The rows of several tables, in order (e.g. two campaigns' logs, to compare their
        policies); labels are kept where given, else the arm names."""
        if not tables:
            raise ReportError("no tables to concatenate")
        return Outcomes(
            arm=np.concatenate([t.arm for t in tables]),
            policy=np.concatenate([t.policy for t in tables]),
            conversion=np.concatenate([t.conversion for t in tables]),
            revenue=np.concatenate([t.revenue for t in tables]),
            cost=np.concatenate([t.cost for t in tables]),
            label=(
                None
                if all(t.label is None for t in tables)
                else np.concatenate([t.label if t.label is not None else t.arm for t in tables])
            ),
            source=" + ".join(t.source for t in tables if t.source),
        )

    def select(self, rows: NDArray[np.bool_]) -> Outcomes:
        """The rows where ``rows`` is true."""
        return Outcomes(
            arm=self.arm[rows],
            policy=self.policy[rows],
            conversion=self.conversion[rows],
            revenue=self.revenue[rows],
            cost=self.cost[rows],
            label=None if self.label is None else self.label[rows],
            source=self.source,
        )


def outcomes_from_tables(decisions: Any, events: Any, source: str = "") -> Outcomes:
    """Outcomes of a campaign's decision and event tables (:mod:`agent.export`'s columns).

    A decision's conversion is 1 when a ``converted`` event names it (duplicates of the same
    event counted once), its revenue the sum of those events' revenue, its cost the ledger's
    ``charged`` (send and redeemed offer) or, without that column, ``reserved``; events with
    ``offer_cost`` add it when ``charged`` is missing.

    Args:
        decisions: a ``pyarrow.Table`` with ``decision_id``, ``arm_name`` (or ``arm``) and
            ``charged`` (or ``reserved``), optionally ``policy``.
        events: a ``pyarrow.Table`` with ``decision_id``, ``kind``, ``revenue``.
        source: where the tables came from.

    Raises:
        ReportError: a missing column, naming it.
    """
    dcols, ecols = set(decisions.column_names), set(events.column_names)
    for need in ("decision_id",):
        if need not in dcols:
            raise ReportError(f"{source or 'decisions'}: column {need!r} is missing (has {sorted(dcols)})")
    arm_col = "arm_name" if "arm_name" in dcols else "arm"
    if arm_col not in dcols:
        raise ReportError(f"{source or 'decisions'}: column 'arm_name' is missing (has {sorted(dcols)})")
    for need in ("decision_id", "kind", "revenue"):
        if need not in ecols:
            raise ReportError(f"{source or 'events'}: column {need!r} is missing (has {sorted(ecols)})")
    ids = np.asarray(decisions.column("decision_id").to_numpy(), np.int64)
    n = ids.size
    arm = np.asarray([str(a) for a in decisions.column(arm_col).to_pylist()], dtype=np.str_)
    policy = (
        np.asarray([str(p) for p in decisions.column("policy").to_pylist()], dtype=np.str_)
        if "policy" in dcols
        else np.full(n, "unknown", dtype=np.str_)
    )
    kind = np.asarray([str(k) for k in events.column("kind").to_pylist()])
    ev_id = np.asarray(events.column("decision_id").to_numpy(), np.int64)
    ev_rev = np.asarray(events.column("revenue").to_numpy(), np.float64)
    ev_it = (
        np.asarray(events.column("iteration").to_numpy(), np.int64)
        if "iteration" in ecols
        else np.zeros(ev_id.size, np.int64)
    )
    conv = (kind == "converted") & (ev_id >= 0)
    rows = np.unique(np.stack([ev_id[conv], ev_it[conv], ev_rev[conv]], 1), axis=0) if conv.any() else None
    conversion = np.zeros(n)
    revenue = np.zeros(n)
    order = np.argsort(ids, kind="stable")
    if rows is not None and n:
        pos = np.searchsorted(ids[order], rows[:, 0].astype(np.int64))
        pos = np.clip(pos, 0, n - 1)
        hit = ids[order][pos] == rows[:, 0].astype(np.int64)
        idx = order[pos[hit]]
        np.add.at(revenue, idx, rows[hit, 2])
        conversion[idx] = 1.0
    if "charged" in dcols:
        cost = np.asarray(decisions.column("charged").to_numpy(), np.float64)
    elif "reserved" in dcols:
        cost = np.asarray(decisions.column("reserved").to_numpy(), np.float64)
    else:
        cost = np.zeros(n)
    return Outcomes(
        arm=arm,
        policy=policy,
        conversion=conversion,
        revenue=revenue,
        cost=np.nan_to_num(cost),
        source=source,
    )


def outcomes_from_log(path: str | Path, mapping: Any = None) -> Outcomes:
    """Outcomes of an external randomized log (one row per customer), read with
    :func:`simulators.fit_data.load_log` and its column mapping (default: Hillstrom's names).

    Revenue is the spend column (0 without one); cost is the send cost of the arm's channel
    (:data:`simulators.fit_scenario.SEND_COSTS`, $0.001 for e-mail) for contacted rows; the
    policy is ``logged``; the arms are shown by their labels (``no_email``, ``mens_email``...).

    Raises:
        FileNotFoundError: no such file.
        ReportError: a column the mapping cannot use.
    """
    from simulators.fit_data import LogError, load_log
    from simulators.fit_scenario import SEND_COSTS

    try:
        log = load_log(path, mapping)
    except LogError as err:
        raise ReportError(str(err)) from None
    names = np.asarray([NO_CONTACT, *log.arm_names], dtype=np.str_)
    labels = np.asarray(log.arm_labels, dtype=np.str_)
    send = np.asarray([0.0] + [SEND_COSTS.get(a.split("/")[0], 0.001) for a in log.arm_names])
    n = len(log)
    return Outcomes(
        arm=names[log.arm],
        policy=np.full(n, "logged", dtype=np.str_),
        conversion=log.conversion.astype(np.float64),
        revenue=log.spend if log.spend is not None else np.zeros(n),
        cost=send[log.arm],
        label=labels[log.arm],
        source=log.source,
    )


def load_outcomes(path: str | Path, mapping: Any = None) -> Outcomes:
    """Outcomes of a log file or folder.

    Args:
        path: a folder holding ``decisions.parquet`` and ``events.parquet`` (``simulate
            --export-log``), one of those two files (the other beside it), or an external log
            (CSV or Parquet, one row per customer; see :func:`outcomes_from_log`).
        mapping: the external log's :class:`simulators.fit_data.LogMapping`.

    Raises:
        FileNotFoundError: no such file or folder.
        ReportError: a file that cannot be read as a log, naming it.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"log {str(p)!r} does not exist")
    folder = p if p.is_dir() else p.parent
    if p.is_dir() or p.name in {"decisions.parquet", "events.parquet"}:
        dec, ev = folder / "decisions.parquet", folder / "events.parquet"
        if not (dec.is_file() and ev.is_file()):
            raise ReportError(f"{p}: expected decisions.parquet and events.parquet (simulate --export-log)")
        try:
            return outcomes_from_tables(pq.read_table(dec), pq.read_table(ev), source=str(folder))
        except (OSError, ValueError) as err:
            if isinstance(err, ReportError):
                raise
            raise ReportError(f"{folder}: not readable as a campaign log ({err})") from None
    return outcomes_from_log(p, mapping)


# -- statistics ---------------------------------------------------------------------------------


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1.0 - alpha / 2.0))


def wilson_interval(k: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial rate ``k / n`` (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(alpha)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k <= 0 else min(p, max(0.0, centre - half))
    high = 1.0 if k >= n else max(p, min(1.0, centre + half))
    return low, high


def newcombe_interval(k1: float, n1: int, k0: float, n0: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``k1/n1 - k0/n0`` (method 10, from the two Wilson
    intervals)."""
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson_interval(k1, n1, alpha)
    l0, u0 = wilson_interval(k0, n0, alpha)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return low, high


def rate_test(k1: float, n1: int, k0: float, n0: int) -> float:
    """Two-sided p-value of equal rates: the pooled two-proportion z-test, or Fisher's exact test
    when an expected cell count is below :data:`SMALL_CELL`."""
    from scipy.stats import fisher_exact, norm

    if n1 <= 0 or n0 <= 0:
        return 1.0
    pooled = (k1 + k0) / (n1 + n0)
    expected = min(pooled * n1, pooled * n0, (1 - pooled) * n1, (1 - pooled) * n0)
    if expected < SMALL_CELL:
        table = [[round(k1), n1 - round(k1)], [round(k0), n0 - round(k0)]]
        return float(fisher_exact(table)[1])
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return float(2 * norm.sf(abs(k1 / n1 - k0 / n0) / se))


def welch(x1: FloatArray, x0: FloatArray, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Welch's comparison of two means.

    Args:
        x1: ``(n1,)`` the group's values.
        x0: ``(n0,)`` the control's values.
        alpha: one minus the interval's coverage.

    Returns:
        ``(difference, low, high, p_value)`` of ``mean(x1) - mean(x0)`` (a zero-variance pair
        gives a zero-width interval and p 1 if equal, 0 otherwise).
    """
    from scipy.stats import t as student

    n1, n0 = x1.size, x0.size
    d = float(x1.mean() - x0.mean()) if n1 and n0 else math.nan
    if n1 < 2 or n0 < 2:
        return d, -math.inf, math.inf, 1.0
    v1, v0 = float(x1.var(ddof=1)) / n1, float(x0.var(ddof=1)) / n0
    se = math.sqrt(v1 + v0)
    if se == 0:
        return d, d, d, 1.0 if d == 0 else 0.0
    df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1))
    q = float(student.ppf(1 - alpha / 2, df))
    p = float(2 * student.sf(abs(d) / se, df))
    return d, d - q * se, d + q * se, p


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p_values, np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate), in the input order."""
    p = np.asarray(p_values, np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# -- A/B report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupStats:
    """One group's totals.

    Attributes:
        name: the group (an arm, channel, content, offer or policy).
        n: decisions (customers).
        conversions: decisions that converted.
        rate: ``conversions / n``; ``rate_low`` / ``rate_high``: its Wilson interval.
        revenue: total revenue; ``revenue_per_customer`` its mean.
        cost: total cost; ``cost_per_customer`` its mean.
        net_value: ``revenue * margin - cost``; ``net_value_per_customer`` its mean.
        cost_per_conversion: ``cost / conversions`` (``None`` without conversions).
    """

    name: str
    n: int
    conversions: int
    rate: float
    rate_low: float
    rate_high: float
    revenue: float
    revenue_per_customer: float
    cost: float
    cost_per_customer: float
    net_value: float
    net_value_per_customer: float
    cost_per_conversion: float | None


@dataclass(frozen=True)
class Comparison:
    """One group against the control on one metric.

    Attributes:
        group: the group.
        control: the control group.
        metric: one of :data:`METRICS`.
        control_value, value: the metric in each.
        difference: ``value - control_value`` with its interval ``low`` .. ``high``.
        relative_lift: ``value / control_value - 1`` (``None`` unless the control's is positive:
            a lift over a loss has no meaning).
        p_value: two-sided, unadjusted.
        p_holm, p_bh: adjusted within the metric's family (every group against the control).
        significant: the chosen adjusted p-value is below ``alpha``.
    """

    group: str
    control: str
    metric: str
    control_value: float
    value: float
    difference: float
    low: float
    high: float
    relative_lift: float | None
    p_value: float
    p_holm: float
    p_bh: float
    significant: bool


def _stats(name: str, t: Outcomes, margin: float, alpha: float) -> GroupStats:
    n = len(t)
    conv = int(np.count_nonzero(t.conversion > 0))
    revenue, cost = float(t.revenue.sum()), float(t.cost.sum())
    net = revenue * margin - cost
    lo, hi = wilson_interval(conv, n, alpha)
    return GroupStats(
        name=name,
        n=n,
        conversions=conv,
        rate=conv / n if n else 0.0,
        rate_low=lo,
        rate_high=hi,
        revenue=revenue,
        revenue_per_customer=revenue / n if n else 0.0,
        cost=cost,
        cost_per_customer=cost / n if n else 0.0,
        net_value=net,
        net_value_per_customer=net / n if n else 0.0,
        cost_per_conversion=cost / conv if conv else None,
    )


def _compare(
    pairs: list[tuple[str, str, Outcomes, Outcomes]], margin: float, alpha: float, correction: Correction
) -> list[Comparison]:
    """Every (group, control) pair on every metric, each metric's p-values adjusted together."""
    raw: dict[str, list[tuple[str, str, float, float, float, float, float, float]]] = {m: [] for m in METRICS}
    for group, control, g, c in pairs:
        k1, n1 = float(np.count_nonzero(g.conversion > 0)), len(g)
        k0, n0 = float(np.count_nonzero(c.conversion > 0)), len(c)
        if n1 == 0 or n0 == 0:
            continue
        lo, hi = newcombe_interval(k1, n1, k0, n0, alpha)
        raw["conversion_rate"].append(
            (group, control, k0 / n0, k1 / n1, k1 / n1 - k0 / n0, lo, hi, rate_test(k1, n1, k0, n0))
        )
        for metric, x1, x0 in (
            ("revenue_per_customer", g.revenue, c.revenue),
            ("net_value_per_customer", g.revenue * margin - g.cost, c.revenue * margin - c.cost),
        ):
            d, lo, hi, p = welch(x1, x0, alpha)
            raw[metric].append((group, control, float(x0.mean()), float(x1.mean()), d, lo, hi, p))
    out: list[Comparison] = []
    for metric, rows in raw.items():
        ps = [r[7] for r in rows]
        ph, pb = holm(ps), benjamini_hochberg(ps)
        for r, a, b in zip(rows, ph, pb, strict=True):
            group, control, v0, v1, d, lo, hi, p = r
            out.append(
                Comparison(
                    group=group,
                    control=control,
                    metric=metric,
                    control_value=v0,
                    value=v1,
                    difference=d,
                    low=lo,
                    high=hi,
                    relative_lift=v1 / v0 - 1.0 if v0 > 0 else None,
                    p_value=p,
                    p_holm=a,
                    p_bh=b,
                    significant=(a if correction == "holm" else b) < alpha,
                )
            )
    return out


def _dict(obj: Any) -> dict[str, Any]:
    d: dict[str, Any] = asdict(obj)
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass(frozen=True)
class ABReport:
    """Groups of one log side by side, each against a control.

    Attributes:
        by: what a group is (``arm``, ``channel``, ``content``, ``offer``, ``policy``).
        control: the control group.
        alpha: the significance level (intervals have coverage ``1 - alpha``).
        correction: which adjusted p-value ``significant`` uses (``holm`` or ``bh``).
        margin: the profit share of revenue in the net value.
        groups: per group totals, the control first.
        comparisons: every other group against the control, per metric.
        source: where the rows came from.
    """

    by: str
    control: str
    alpha: float
    correction: str
    margin: float
    groups: tuple[GroupStats, ...]
    comparisons: tuple[Comparison, ...]
    source: str = ""

    def group(self, name: str) -> GroupStats:
        """One group's totals.

        Raises:
            KeyError: no such group, listing them.
        """
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r}; groups: {[g.name for g in self.groups]}")

    def comparison(self, group: str, metric: str = "conversion_rate") -> Comparison:
        """One group's comparison with the control on ``metric``.

        Raises:
            KeyError: no such comparison.
        """
        for c in self.comparisons:
            if (c.group, c.metric) == (group, metric):
                return c
        raise KeyError(f"no comparison of {group!r} on {metric!r}; metrics: {list(METRICS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers as ``None``)."""
        return {
            "kind": "ab",
            "by": self.by,
            "control": self.control,
            "alpha": self.alpha,
            "correction": self.correction,
            "margin": self.margin,
            "source": self.source,
            "groups": [_dict(g) for g in self.groups],
            "comparisons": [_dict(c) for c in self.comparisons],
        }


def ab_report(
    table: Outcomes,
    by: str = "arm",
    control: str | None = None,
    *,
    alpha: float = 0.05,
    correction: Correction = "holm",
    margin: float = 0.3,
) -> ABReport:
    """Compare the groups of a log with a control.

    Args:
        table: the decisions and outcomes.
        by: what a group is: ``arm``, ``channel``, ``content``, ``offer`` or ``policy``.
        control: the control group (default: ``no_contact`` (or the label of the no-contact arm)
            when present, else the largest group, ties to the first name).
        alpha: significance level, in (0, 0.5].
        correction: ``holm`` (family-wise error) or ``bh`` (false discovery rate) for the
            ``significant`` flag; both adjusted p-values are reported.
        margin: profit share of revenue, for the net value.

    Raises:
        ReportError: an empty table, an unknown ``by``, ``control``, ``correction`` or a bad
            ``alpha`` / ``margin``.
    """
    if not 0.0 < alpha <= 0.5:
        raise ReportError(f"alpha: {alpha!r} must be in (0, 0.5]")
    if correction not in ("holm", "bh"):
        raise ReportError(f"correction: {correction!r} is not one of ['holm', 'bh']")
    if not 0.0 <= margin <= 1.0:
        raise ReportError(f"margin: {margin!r} must be in [0, 1]")
    if len(table) == 0:
        raise ReportError("the log has no decisions")
    keys = table.keys(by)
    names = sorted(set(keys.tolist()))
    if control is None:
        contact_free = [
            k for k in names if k == NO_CONTACT or set(table.arm[keys == k].tolist()) == {NO_CONTACT}
        ]
        if contact_free:
            control = contact_free[0]
        else:
            sizes = {k: int(np.count_nonzero(keys == k)) for k in names}
            control = max(names, key=lambda k: (sizes[k], -names.index(k)))
    elif control not in names:
        raise ReportError(f"control: {control!r} is not a group; groups by {by}: {names}")
    order = [control, *(k for k in names if k != control)]
    parts = {k: table.select(keys == k) for k in order}
    groups = tuple(_stats(k, parts[k], margin, alpha) for k in order)
    pairs = [(k, control, parts[k], parts[control]) for k in order[1:]]
    return ABReport(
        by=by,
        control=control,
        alpha=alpha,
        correction=correction,
        margin=margin,
        groups=groups,
        comparisons=tuple(_compare(pairs, margin, alpha, correction)),
        source=table.source,
    )


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def money_text(x: float | None, digits: int = 3) -> str:
    """Dollars as text (``-`` when missing or not finite)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{'-' if x < 0 else ''}${abs(x):,.{digits}f}"


def _p(x: float) -> str:
    return f"{x:.3g}" if x >= 1e-4 else f"{x:.1e}"


def format_ab(report: ABReport) -> str:
    """A plain-text table: the groups, then each comparison with the control."""
    w = max([10, *(len(g.name) + 1 for g in report.groups)])
    lines = [
        f"A/B report by {report.by} of {report.source or 'the log'} (control {report.control!r}; "
        f"{100 * (1 - report.alpha):.0f}% intervals; significance after "
        f"{'Holm' if report.correction == 'holm' else 'Benjamini-Hochberg'} correction)",
        f"{report.by:<{w}} {'n':>9} {'conv':>7} {'rate':>8} {'rate 95% CI':>17} {'rev/cust':>9} "
        f"{'cost':>11} {'net value':>12} {'cost/conv':>10}",
    ]
    for g in report.groups:
        lines.append(
            f"{g.name:<{w}} {g.n:>9,} {g.conversions:>7,} {_pct(g.rate):>8} "
            f"{_pct(g.rate_low) + '..' + _pct(g.rate_high):>17} {money_text(g.revenue_per_customer):>9} "
            f"{money_text(g.cost, 2):>11} {money_text(g.net_value, 2):>12} "
            f"{money_text(g.cost_per_conversion, 2):>10}"
        )
    lines.append("")
    lines.append(
        f"{'vs ' + report.control:<{w}} {'metric':<23} {'difference':>11} {'interval':>23} {'lift':>8} "
        f"{'p':>8} {'p holm':>8} {'p bh':>8}  sig"
    )
    for c in report.comparisons:
        fmt = _pct if c.metric == "conversion_rate" else money_text
        lift = "-" if c.relative_lift is None else f"{100 * c.relative_lift:+.1f}%"
        lines.append(
            f"{c.group:<{w}} {c.metric:<23} {fmt(c.difference):>11} "
            f"{fmt(c.low) + '..' + fmt(c.high):>23} {lift:>8} {_p(c.p_value):>8} {_p(c.p_holm):>8} "
            f"{_p(c.p_bh):>8}  {'yes' if c.significant else 'no'}"
        )
    return "\n".join(lines)


# -- round comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """A metric in two rounds.

    Attributes:
        metric: its name.
        before, after: its value in each round.
        difference: ``after - before``; ``low`` .. ``high`` its interval (``None`` for totals,
            which are counts, not estimates).
        p_value: two-sided p-value of no change (``None`` for totals).
    """

    metric: str
    before: float | None
    after: float | None
    difference: float | None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class RoundsReport:
    """One round against the next.

    Attributes:
        before, after: each round's totals (a :class:`GroupStats` named by the round).
        deltas: totals and per-customer metrics, after minus before, with intervals.
        by: the grouping of ``groups``.
        groups: per group, the conversion rate before and after (a :class:`Comparison` whose
            control is the before round), p-values adjusted over the groups.
        alpha: significance level.
        correction: the adjustment ``significant`` uses.
        margin: profit share of revenue in the net value.
    """

    before: GroupStats
    after: GroupStats
    deltas: tuple[Delta, ...]
    by: str
    groups: tuple[Comparison, ...]
    alpha: float
    correction: str
    margin: float

    def delta(self, metric: str) -> Delta:
        """One delta by metric name.

        Raises:
            KeyError: no such metric, listing them.
        """
        for d in self.deltas:
            if d.metric == metric:
                return d
        raise KeyError(f"no delta {metric!r}; metrics: {[d.metric for d in self.deltas]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers as ``None``)."""
        return {
            "kind": "rounds",
            "by": self.by,
            "alpha": self.alpha,
            "correction": self.correction,
            "margin": self.margin,
            "before": _dict(self.before),
            "after": _dict(self.after),
            "deltas": [_dict(d) for d in self.deltas],
            "groups": [_dict(g) for g in self.groups],
        }


def _ratio_var(cost: FloatArray, conv: FloatArray) -> tuple[float, float]:
    """Cost per conversion and the delta-method variance of that ratio of means."""
    n = cost.size
    k = float(conv.mean())
    if n < 2 or k == 0:
        return math.nan, math.nan
    r = float(cost.mean()) / k
    cov = np.cov(np.stack([cost, conv]), ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * k * k)
    return r, float(max(var, 0.0))


def rounds_report(
    before: Outcomes,
    after: Outcomes,
    by: str = "arm",
    *,
    alpha: float = 0.05,
    correction: Correction = "holm",
    margin: float = 0.3,
    labels: tuple[str, str] = ("before", "after"),
) -> RoundsReport:
    """Compare one round (a campaign or log) with the next.

    Args:
        before: the earlier round's decisions and outcomes.
        after: the later round's.
        by: the grouping of the per-group conversion rates.
        alpha: significance level, in (0, 0.5].
        correction: ``holm`` or ``bh``, for the per-group ``significant`` flags.
        margin: profit share of revenue, for the net value.
        labels: the rounds' names.

    Raises:
        ReportError: an empty round or a bad parameter.
    """
    from scipy.stats import norm

    if not 0.0 < alpha <= 0.5:
        raise ReportError(f"alpha: {alpha!r} must be in (0, 0.5]")
    if correction not in ("holm", "bh"):
        raise ReportError(f"correction: {correction!r} is not one of ['holm', 'bh']")
    if not 0.0 <= margin <= 1.0:
        raise ReportError(f"margin: {margin!r} must be in [0, 1]")
    for name, t in zip(labels, (before, after), strict=True):
        if len(t) == 0:
            raise ReportError(f"the {name} log has no decisions")
    b, a = _stats(labels[0], before, margin, alpha), _stats(labels[1], after, margin, alpha)
    deltas = [
        Delta("decisions", b.n, a.n, a.n - b.n),
        Delta("conversions", b.conversions, a.conversions, a.conversions - b.conversions),
        Delta("revenue", b.revenue, a.revenue, a.revenue - b.revenue),
        Delta("spend", b.cost, a.cost, a.cost - b.cost),
        Delta("net_value", b.net_value, a.net_value, a.net_value - b.net_value),
    ]
    k1, k0 = float(a.conversions), float(b.conversions)
    lo, hi = newcombe_interval(k1, a.n, k0, b.n, alpha)
    deltas.append(
        Delta("conversion_rate", b.rate, a.rate, a.rate - b.rate, lo, hi, rate_test(k1, a.n, k0, b.n))
    )
    for metric, x0, x1 in (
        ("revenue_per_customer", before.revenue, after.revenue),
        ("cost_per_customer", before.cost, after.cost),
        (
            "net_value_per_customer",
            before.revenue * margin - before.cost,
            after.revenue * margin - after.cost,
        ),
    ):
        d, lo, hi, p = welch(x1, x0, alpha)
        deltas.append(Delta(metric, float(x0.mean()), float(x1.mean()), d, _finite(lo), _finite(hi), p))
    r0, v0 = _ratio_var(before.cost, (before.conversion > 0).astype(float))
    r1, v1 = _ratio_var(after.cost, (after.conversion > 0).astype(float))
    if math.isfinite(r0) and math.isfinite(r1):
        se = math.sqrt(v0 + v1)
        d = r1 - r0
        z = _z(alpha)
        p = float(2 * norm.sf(abs(d) / se)) if se > 0 else (1.0 if d == 0 else 0.0)
        deltas.append(Delta("cost_per_conversion", r0, r1, d, d - z * se, d + z * se, p))
    else:
        deltas.append(Delta("cost_per_conversion", _finite(r0), _finite(r1), None))
    kb, ka = before.keys(by), after.keys(by)
    names = sorted(set(kb.tolist()) & set(ka.tolist()))
    pairs = [(k, labels[0], after.select(ka == k), before.select(kb == k)) for k in names]
    comps = [c for c in _compare(pairs, margin, alpha, correction) if c.metric == "conversion_rate"]
    return RoundsReport(
        before=b,
        after=a,
        deltas=tuple(deltas),
        by=by,
        groups=tuple(comps),
        alpha=alpha,
        correction=correction,
        margin=margin,
    )


def format_rounds(report: RoundsReport) -> str:
    """A plain-text table: totals and deltas, then conversion rates by group."""
    b, a = report.before, report.after
    lines = [
        f"Round comparison: {b.name} ({b.n:,} decisions) vs {a.name} ({a.n:,} decisions); "
        f"{100 * (1 - report.alpha):.0f}% intervals",
        f"{'metric':<24} {b.name:>14} {a.name:>14} {'difference':>14} {'interval':>25} {'p':>8}",
    ]
    for d in report.deltas:
        if d.metric in ("conversion_rate",):
            fmt = _pct
        elif d.metric in ("decisions", "conversions"):
            fmt = lambda x: "-" if x is None else f"{x:,.0f}"  # noqa: E731
        else:
            fmt = money_text
        interval = "" if d.low is None or d.high is None else f"{fmt(d.low)}..{fmt(d.high)}"
        p = "" if d.p_value is None else _p(d.p_value)
        lines.append(
            f"{d.metric:<24} {fmt(d.before):>14} {fmt(d.after):>14} {fmt(d.difference):>14} "
            f"{interval:>25} {p:>8}".rstrip()
        )
    if report.groups:
        w = max([10, *(len(g.group) + 1 for g in report.groups)])
        lines += [
            "",
            f"conversion rate by {report.by}",
            f"{report.by:<{w}} {b.name:>9} {a.name:>9} {'difference':>11} {'interval':>19} {'p':>8} "
            f"{'p holm':>8} {'p bh':>8}  sig",
        ]
        for g in report.groups:
            lines.append(
                f"{g.group:<{w}} {_pct(g.control_value):>9} {_pct(g.value):>9} {_pct(g.difference):>11} "
                f"{_pct(g.low) + '..' + _pct(g.high):>19} {_p(g.p_value):>8} {_p(g.p_holm):>8} "
                f"{_p(g.p_bh):>8}  {'yes' if g.significant else 'no'}"
            )
    return "\n".join(lines)


__all__ = [
    "BY_CHOICES",
    "METRICS",
    "NO_CONTACT",
    "ABReport",
    "Comparison",
    "Delta",
    "GroupStats",
    "Outcomes",
    "ReportError",
    "RoundsReport",
    "ab_report",
    "benjamini_hochberg",
    "format_ab",
    "format_rounds",
    "holm",
    "load_outcomes",
    "newcombe_interval",
    "outcomes_from_log",
    "outcomes_from_tables",
    "rate_test",
    "rounds_report",
    "welch",
    "wilson_interval",
]
