"""Bayesian logistic regression with a Laplace posterior, for the funnel models of ``funnel_ts``.

Written here rather than taken from scikit-learn: a Thompson-sampling policy needs the posterior
(mean and precision) to draw coefficients, a prior that can be any Gaussian (a pretrained
posterior, widened, becomes the next campaign's prior), weighted rows (subsampled history keeps
its weight) and warm-started Newton steps after every wave; scikit-learn's ``LogisticRegression``
gives a point estimate only.

The model: ``P(y = 1 | x) = sigmoid(x^T theta)``, prior ``theta ~ N(m0, P0^-1)``. :meth:`fit`
takes Newton steps on the log posterior; the Laplace approximation of the posterior is
``N(theta_hat, H^-1)`` with ``H = X^T diag(w p (1 - p)) X + P0`` at the mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulators.types import FloatArray, decode_array, encode_array

Float32Array = NDArray[np.float32]


def sigmoid(z: NDArray[np.floating[Any]]) -> FloatArray:
    """Numerically safe logistic function (float64)."""
    z = np.clip(np.asarray(z, dtype=np.float64), -35.0, 35.0)
    out: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return out


def logit(p: NDArray[np.floating[Any]] | float) -> FloatArray:
    """Inverse of :func:`sigmoid`, clipped away from 0 and 1."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    out: FloatArray = np.log(q / (1.0 - q))
    return out


class BayesLogistic:
    """Weighted Bayesian logistic regression, refit by Newton steps, sampled by Thompson.

    Args:
        d: number of coefficients (the design's columns, intercept included by the caller).
        prior_precision: diagonal of the initial prior precision ``P0`` (a scalar or ``(d,)``).
        prior_mean: initial prior mean ``m0`` (default 0); e.g. the logit of a base rate on the
            intercept.
        max_rows: rows kept; beyond, rows are subsampled at random and the kept ones weighted up
            by the inverse of their keep rate (the likelihood stays unbiased).
    """

    def __init__(
        self,
        d: int,
        prior_precision: float | FloatArray = 1.0,
        prior_mean: FloatArray | None = None,
        max_rows: int = 250_000,
    ) -> None:
        self.d = d
        self.m0 = np.zeros(d) if prior_mean is None else np.asarray(prior_mean, dtype=np.float64).copy()
        self.P0 = np.diag(np.broadcast_to(np.asarray(prior_precision, dtype=np.float64), (d,))).copy()
        self.theta = self.m0.copy()
        self.H = self.P0.copy()
        self.max_rows = max_rows
        self._X: list[Float32Array] = []
        self._y: list[Float32Array] = []
        self._w: list[Float32Array] = []
        self._chol: FloatArray | None = None

    @property
    def n_rows(self) -> int:
        """Rows held."""
        return int(sum(x.shape[0] for x in self._X))

    def add(self, X: NDArray[np.floating[Any]], y: NDArray[Any], w: NDArray[Any] | None = None) -> None:
        """Add ``(n, d)`` rows with ``(n,)`` labels in {0, 1} and optional weights."""
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] == 0:
            return
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"expected (n, {self.d}) rows, got {X.shape}")
        self._X.append(X)
        self._y.append(np.asarray(y, dtype=np.float32).reshape(-1))
        self._w.append(np.ones(X.shape[0], np.float32) if w is None else np.asarray(w, np.float32))

    def _data(self, rng: np.random.Generator | None) -> tuple[Float32Array, Float32Array, Float32Array]:
        if len(self._X) > 1:
            self._X = [np.concatenate(self._X)]
            self._y = [np.concatenate(self._y)]
            self._w = [np.concatenate(self._w)]
        if not self._X:
            return np.zeros((0, self.d), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
        X, y, w = self._X[0], self._y[0], self._w[0]
        n = X.shape[0]
        if n > self.max_rows and rng is not None:
            # Keep every positive (they are rare and informative), subsample the negatives.
            pos = y > 0.5
            n_neg_keep = max(self.max_rows - int(pos.sum()), self.max_rows // 2)
            neg = np.flatnonzero(~pos)
            if neg.size > n_neg_keep:
                keep_rate = n_neg_keep / neg.size
                kept = rng.choice(neg, size=n_neg_keep, replace=False)
                idx = np.sort(np.concatenate([np.flatnonzero(pos), kept]))
                w = w.copy()
                w[neg] = w[neg] / keep_rate
                X, y, w = X[idx], y[idx], w[idx]
                self._X, self._y, self._w = [X], [y], [w]
        return X, y, w

    def _objective(self, X: Float32Array, y: Float32Array, w: Float32Array, theta: FloatArray) -> float:
        """Log posterior (up to a constant) at ``theta``."""
        z = X @ theta
        loglik = float(np.sum(w * (y * z - np.logaddexp(0.0, z))))
        d = theta - self.m0
        return loglik - 0.5 * float(d @ self.P0 @ d)

    def fit(self, steps: int = 3, rng: np.random.Generator | None = None) -> None:
        """Newton steps with backtracking from the current coefficients toward the posterior mode
        (plain Newton can oscillate on logistic likelihoods far from the mode)."""
        X, y, w = self._data(rng)
        theta = self.theta.copy()
        current = self._objective(X, y, w, theta)
        H = self.P0.copy()
        for _ in range(max(steps, 1)):
            p = sigmoid(X @ theta)
            g = X.T @ (w * (y - p)).astype(np.float64) - self.P0 @ (theta - self.m0)
            s = (w * p * (1.0 - p)).astype(np.float32)
            # float32 GEMM: the Hessian's rounding error is far below its sampling error.
            H = ((X * s[:, None]).T @ X).astype(np.float64) + self.P0
            step = np.linalg.solve(H, g)
            t = 1.0
            for _ in range(30):
                trial = theta + t * step
                value = self._objective(X, y, w, trial)
                if value >= current - 1e-9 * abs(current):
                    break
                t *= 0.5
            else:
                break
            theta, current = trial, value
            if float(np.abs(t * step).max()) < 1e-6:
                break
        self.theta = theta
        self.H = 0.5 * (H + H.T)
        self._chol = None

    def _root(self) -> FloatArray:
        """``R`` with ``R R^T = H^-1`` (the inverse transposed Cholesky factor of ``H``), cached."""
        if self._chol is None:
            jitter = 1e-9 * float(np.trace(self.H)) / self.d
            L = np.linalg.cholesky(self.H + jitter * np.eye(self.d))
            self._chol = np.linalg.inv(L).T
        return self._chol

    def sample(self, rng: np.random.Generator, scale: float = 1.0) -> FloatArray:
        """One draw of the coefficients from ``N(theta, scale^2 H^-1)``."""
        if scale <= 0:
            return self.theta.copy()
        out: FloatArray = self.theta + scale * (self._root() @ rng.standard_normal(self.d))
        return out

    def to_prior(self, strength: float) -> None:
        """Make the current posterior, its precision times ``strength``, the prior of what comes
        next, and drop the rows (a new campaign: keep what was learned, widen the uncertainty)."""
        self.m0 = self.theta.copy()
        self.P0 = self.H * strength + np.eye(self.d) * 1e-6
        self.H = self.P0.copy()
        self._X, self._y, self._w = [], [], []
        self._chol = None

    def state(self) -> dict[str, Any]:
        """JSON-ready state (arrays as base64 ``.npy``)."""
        X, y, w = self._data(None)
        return {
            "d": self.d,
            "max_rows": self.max_rows,
            "m0": encode_array(self.m0),
            "P0": encode_array(self.P0),
            "theta": encode_array(self.theta),
            "H": encode_array(self.H),
            "X": encode_array(X),
            "y": encode_array(y),
            "w": encode_array(w),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BayesLogistic:
        """Inverse of :meth:`state`."""
        obj = cls(int(state["d"]), max_rows=int(state["max_rows"]))
        obj.m0, obj.P0 = decode_array(state["m0"]), decode_array(state["P0"])
        obj.theta, obj.H = decode_array(state["theta"]), decode_array(state["H"])
        X, y, w = decode_array(state["X"]), decode_array(state["y"]), decode_array(state["w"])
        if X.shape != (X.shape[0], obj.d) or y.shape != (X.shape[0],) or w.shape != y.shape:
            raise ValueError("inconsistent logistic model state")
        if X.shape[0]:
            obj._X, obj._y, obj._w = [X], [y], [w]
        return obj
