"""Delayed feedback: how many conversions recent sends will still bring.

Conversions arrive up to ``window`` iterations after the send. A stop rule that counts only
what has been observed keeps sending waves after the goal is already on its way (overshoot);
one that guesses the rest must not stop early. :class:`DelayTriangle` keeps the run-off
triangle of attributed conversions (and revenue) by send iteration and delay, and projects the
still-missing part with the chain-ladder method (the actuarial estimator of claims "incurred
but not reported"): the development factor from delay ``d`` to ``d + 1`` is read off the
cohorts already observed that far, so it adapts to the observed delay distribution and to each
cohort's own quality.

Example:
    >>> import numpy as np
    >>> tri = DelayTriangle(window=1)
    >>> tri.add_sends(0, 100)
    >>> tri.add(np.array([0, 0, 0]), np.array([0, 0, 1]), np.array([10.0, 10.0, 10.0]))
    >>> tri.add_sends(1, 100)
    >>> tri.add(np.array([1, 1]), np.array([0, 0]), np.array([10.0, 10.0]))
    >>> tri.pending(now=1)  # cohort 0 went from 2 to 3 (x1.5): cohort 1 should bring 1 more
    (1.0, 10.0)
"""

from __future__ import annotations

import numpy as np

from simulators.types import FloatArray, IntArray


class DelayTriangle:
    """Attributed conversions and revenue by send iteration (rows) and delay (columns).

    Args:
        window: the attribution window: conversions arrive with delays ``0..window``.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.sends = np.zeros(0, dtype=np.int64)
        self.conversions = np.zeros((0, window + 1))
        self.revenue = np.zeros((0, window + 1))

    def _grow(self, rows: int) -> None:
        extra = rows - self.sends.size
        if extra > 0:
            self.sends = np.concatenate([self.sends, np.zeros(extra, np.int64)])
            pad = np.zeros((extra, self.window + 1))
            self.conversions = np.vstack([self.conversions, pad])
            self.revenue = np.vstack([self.revenue, pad])

    def add_sends(self, iteration: int, n: int) -> None:
        """Count ``n`` sends in ``iteration`` (their cohort)."""
        self._grow(iteration + 1)
        self.sends[iteration] += n

    def add(self, send_iteration: IntArray, delay: IntArray, revenue: FloatArray) -> None:
        """Count attributed conversions: ``(n,)`` send iterations, delays and revenue."""
        if send_iteration.size == 0:
            return
        self._grow(int(send_iteration.max()) + 1)
        d = np.clip(delay, 0, self.window)
        np.add.at(self.conversions, (send_iteration, d), 1.0)
        np.add.at(self.revenue, (send_iteration, d), revenue)

    def pending(self, now: int) -> tuple[float, float]:
        """Conversions and revenue still expected from cohorts whose window is open at ``now``.

        Returns:
            ``(conversions, revenue)`` projected to arrive after ``now`` (0 when no observed
            cohort shows any late conversion yet: the projection never invents a delay it has
            not seen).
        """
        return self._pending(self.conversions, now), self._pending(self.revenue, now)

    def _pending(self, triangle: FloatArray, now: int) -> float:
        w = self.window
        rows = triangle.shape[0]
        if w == 0 or rows == 0:
            return 0.0
        cum = np.cumsum(triangle, axis=1)  # (n_cohorts, window + 1)
        age = now - np.arange(rows)
        factors = np.ones(w)
        for d in range(w):  # a loop over delays (the window), not customers
            seen = age >= d + 1
            base = cum[seen, d].sum()
            if base > 0:
                factors[d] = cum[seen, d + 1].sum() / base
        # tail[a] = product of the factors from delay a to the window's end
        tail = np.append(np.cumprod(factors[::-1])[::-1], 1.0)
        open_rows = np.flatnonzero((age >= 0) & (age < w))
        observed = cum[open_rows, age[open_rows]]
        return float((observed * (tail[age[open_rows]] - 1.0)).sum())
