"""The runner logs what it does with ``key=value`` fields: every committed iteration (with its
spend), a pause after an error, and nothing through ``print``."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import SMALL, auth, run_all


def _fields(message: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", message))


def test_each_committed_iteration_is_logged_with_its_spend(
    client: TestClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    h = auth(client)
    cid = client.post("/campaigns", json=SMALL, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    with caplog.at_level(logging.INFO, logger="serving"):
        run_all(client)
    done = [_fields(r.getMessage()) for r in caplog.records if r.name == "serving.runner"]
    done = [f for f in done if "spend" in f]
    iterations = client.get(f"/campaigns/{cid}/iterations", headers=h).json()
    assert [int(f["iteration"]) for f in done][: len(iterations)] == [i["iteration"] + 1 for i in iterations]
    assert all(f["campaign_id"] == str(cid) for f in done)
    assert float(done[0]["spend"]) == pytest.approx(iterations[0]["spend"], abs=1e-6)
    assert done[-1]["status"] == "completed"
    assert capsys.readouterr().out == ""  # no print


def test_a_pause_after_an_error_is_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    from agent import Campaign

    h = auth(client)
    cid = client.post("/campaigns", json=SMALL, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)

    def broken(self: Campaign, now: float | None = None) -> None:
        raise RuntimeError("policy exploded")

    monkeypatch.setattr(Campaign, "tick", broken)
    with caplog.at_level(logging.INFO, logger="serving"):
        run_all(client)
    paused = [r for r in caplog.records if r.name == "serving.runner" and r.levelno == logging.WARNING]
    assert len(paused) == 1
    f = _fields(paused[0].getMessage())
    assert (
        f["campaign_id"] == str(cid) and f["iteration"] == "0" and "policy exploded" in paused[0].getMessage()
    )
