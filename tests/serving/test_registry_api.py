"""A policy registered in MLflow runs live through the API as ``models:/NAME@champion``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from experiments.tracking import client as mlflow_client
from experiments.tracking import register_run_policy
from policies import make_policy
from serving.app import create_app
from serving.settings import Settings
from simulators import Simulator, load_scenario
from tests.serving.conftest import SMALL, auth, run_all


def test_registered_policy_runs_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    c = mlflow_client(uri)
    exp = c.create_experiment("reg", artifact_location=(tmp_path / "artifacts").as_uri())
    run = c.create_run(exp)
    folder = make_policy("thompson", Simulator(load_scenario("retail"), n_customers=100), seed=3).save(
        tmp_path / "policy"
    )
    c.log_artifacts(run.info.run_id, str(folder), artifact_path="policy")
    c.set_terminated(run.info.run_id)
    assert register_run_policy(c, "live_champ", run.info.run_id) == "1"

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data", run_worker=False
    )
    with TestClient(create_app(settings)) as client:
        h = auth(client)
        listed = client.get("/policies", headers=h).json()["registered"]
        assert [m["name"] for m in listed] == ["live_champ"]
        r = client.post("/campaigns", json={**SMALL, "policy": "models:/live_champ@champion"}, headers=h)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        client.post(f"/campaigns/{cid}/start", headers=h)
        run_all(client)
        rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
        assert rep["policy"] == "thompson" and rep["status"] == "completed" and rep["sends"] > 0
        bad = client.post("/campaigns", json={**SMALL, "policy": "models:/nobody@champion"}, headers=h)
        assert bad.status_code == 422 and ["body", "policy"] in [d["loc"] for d in bad.json()["detail"]]
