"""One feature pipeline: an owner's declared columns to the model inputs every policy reads.

Policies take observable features in ``[0, 1]`` (:class:`policies.base.DecisionContext`). For an
owner's audience, :class:`FeaturePipeline` is fitted on the audience's own columns and turns them
into that matrix: a numeric column is scaled between its 1st and 99th percentiles and clipped
(a missing value becomes 0 and sets a ``<column>=missing`` indicator when the column has gaps), a
categorical column becomes one indicator per frequent level plus ``<column>=other``. The fitted
pipeline is plain data (:meth:`to_dict`), so a campaign's snapshot carries it.

Example:
    >>> import numpy as np
    >>> cols = {"recency": np.array([1.0, 6.0, 12.0]), "channel": np.array(["Web", "Phone", "Web"])}
    >>> pipe = FeaturePipeline.fit(cols, {"recency": "numeric", "channel": "categorical"})
    >>> pipe.feature_names
    ('recency', 'channel=Web', 'channel=Phone', 'channel=other')
    >>> pipe.transform(cols).shape
    (3, 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_LEVELS = 12
"""Most indicator columns one categorical column gets (the rarer levels share ``other``)."""
MIN_SHARE = 0.005
"""A level rarer than this share of the audience goes to ``other``."""


@dataclass(frozen=True)
class FeaturePipeline:
    """Fitted scaling of numeric columns and levels of categorical ones.

    Attributes:
        numeric: ``(column, low, high, has_missing)`` per numeric column, in input order.
        categorical: ``(column, levels)`` per categorical column.
    """

    numeric: tuple[tuple[str, float, float, bool], ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @staticmethod
    def fit(
        columns: Mapping[str, NDArray[Any]], column_types: Mapping[str, str], max_levels: int = MAX_LEVELS
    ) -> FeaturePipeline:
        """Fit on an audience's columns.

        Args:
            columns: column -> ``(n,)`` values (float with NaN for missing, or strings with ``""``).
            column_types: column -> ``"numeric"`` or ``"categorical"``; only these columns are used.
            max_levels: most indicator columns per categorical column.

        Raises:
            ValueError: a declared column is missing or has an unknown type.
        """
        numeric: list[tuple[str, float, float, bool]] = []
        categorical: list[tuple[str, tuple[str, ...]]] = []
        for name, kind in column_types.items():
            if name not in columns:
                raise ValueError(f"column {name!r} is declared but not in the audience")
            values = columns[name]
            if kind == "numeric":
                v = np.asarray(values, dtype=np.float64)
                ok = np.isfinite(v)
                lo, hi = np.quantile(v[ok], [0.01, 0.99]).tolist() if ok.any() else [0.0, 1.0]
                numeric.append((name, float(lo), float(hi), bool((~ok).any())))
            elif kind == "categorical":
                s = np.asarray(values).astype(str)
                levels, counts = np.unique(s[s != ""], return_counts=True)
                order = np.argsort(-counts, kind="stable")
                keep = [str(levels[i]) for i in order[:max_levels] if counts[i] >= MIN_SHARE * s.size]
                categorical.append((name, tuple(keep)))
            else:
                raise ValueError(f"column {name!r}: type {kind!r}; allowed: numeric, categorical")
        return FeaturePipeline(tuple(numeric), tuple(categorical))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the output columns, in order."""
        out: list[str] = []
        for name, _, _, missing in self.numeric:
            out.append(name)
            if missing:
                out.append(f"{name}=missing")
        for name, levels in self.categorical:
            out.extend(f"{name}={lv}" for lv in levels)
            out.append(f"{name}=other")
        return tuple(out)

    def transform(self, columns: Mapping[str, NDArray[Any]]) -> NDArray[np.float32]:
        """``(n, n_features)`` model inputs in ``[0, 1]``.

        Raises:
            ValueError: a fitted column is missing from ``columns``.
        """
        parts: list[NDArray[np.float32]] = []
        for name, lo, hi, missing in self.numeric:
            if name not in columns:
                raise ValueError(f"column {name!r} is missing")
            v = np.asarray(columns[name], dtype=np.float64)
            ok = np.isfinite(v)
            scaled = np.clip((np.where(ok, v, lo) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
            parts.append(np.where(ok, scaled, 0.0).astype(np.float32)[:, None])
            if missing:
                parts.append((~ok).astype(np.float32)[:, None])
        for name, levels in self.categorical:
            if name not in columns:
                raise ValueError(f"column {name!r} is missing")
            s = np.asarray(columns[name]).astype(str)
            hot: NDArray[np.bool_] = np.zeros((s.size, len(levels)), bool)
            for j, level in enumerate(levels):  # a dozen levels at most: one vector compare each
                hot[:, j] = s == level
            other = ~np.asarray(hot.any(axis=1), dtype=bool)
            parts.append(np.concatenate([hot, other.reshape(-1, 1)], axis=1).astype(np.float32))
        if not parts:
            n = len(next(iter(columns.values()))) if columns else 0
            return np.zeros((n, 0), np.float32)
        return np.concatenate(parts, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :meth:`from_dict`)."""
        return {
            "numeric": [list(x) for x in self.numeric],
            "categorical": [[name, list(levels)] for name, levels in self.categorical],
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> FeaturePipeline:
        """Inverse of :meth:`to_dict`."""
        return FeaturePipeline(
            tuple((str(n), float(lo), float(hi), bool(m)) for n, lo, hi, m in d["numeric"]),
            tuple((str(n), tuple(str(x) for x in lv)) for n, lv in d["categorical"]),
        )
