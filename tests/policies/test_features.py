"""The feature pipeline: an owner's columns to model inputs in [0, 1]."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.features import FeaturePipeline


def test_numeric_and_categorical_columns_become_bounded_inputs() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    spend = rng.lognormal(4, 1, n)
    spend[:10] = np.nan
    cols = {
        "spend": spend,
        "zip": rng.choice(["Urban", "Rural", "Surburban"], n),
        "age": rng.normal(40, 9, n),
    }
    pipe = FeaturePipeline.fit(cols, {"spend": "numeric", "zip": "categorical", "age": "numeric"})
    x = pipe.transform(cols)
    assert x.dtype == np.float32 and x.shape == (n, len(pipe.feature_names))
    assert x.min() >= 0 and x.max() <= 1
    names = pipe.feature_names
    assert names[:2] == ("spend", "spend=missing") and "zip=Urban" in names and "zip=other" in names
    assert x[:10, names.index("spend=missing")].all() and not x[10:, names.index("spend=missing")].any()
    z = x[:, [i for i, m in enumerate(names) if m.startswith("zip=")]]
    assert (z.sum(axis=1) == 1).all()  # one level per customer
    # New rows (an unseen level, an out-of-range value) stay in [0, 1]
    new = {"spend": np.array([1e9]), "zip": np.array(["Moon"]), "age": np.array([-5.0])}
    y = pipe.transform(new)
    assert y[0, names.index("spend")] == 1 and y[0, names.index("zip=other")] == 1
    again = FeaturePipeline.from_dict(json.loads(json.dumps(pipe.to_dict())))
    assert np.array_equal(again.transform(cols), x)


def test_rare_levels_share_other_and_bad_declarations_are_named() -> None:
    cols = {"c": np.array(["a"] * 999 + ["rare"])}
    pipe = FeaturePipeline.fit(cols, {"c": "categorical"})
    assert pipe.feature_names == ("c=a", "c=other")
    with pytest.raises(ValueError, match="'missing'"):
        FeaturePipeline.fit(cols, {"missing": "numeric"})
    with pytest.raises(ValueError, match="allowed: numeric, categorical"):
        FeaturePipeline.fit(cols, {"c": "text"})
