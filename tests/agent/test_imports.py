"""Importing the agent does no heavy work: neither gymnasium, scipy nor torch is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("gymnasium", "scipy", "torch", "stable_baselines3")


@pytest.mark.parametrize("module", ["agent", "policies", "simulators", "simulators.money"])
def test_importing_loads_no_heavy_dependency(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_public_policy_name_loads_on_first_use() -> None:
    import policies

    assert sorted(policies._MODULE_OF) == sorted(policies.__all__)
    for name in policies.__all__:
        assert getattr(policies, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = policies.nope  # type: ignore[attr-defined]
