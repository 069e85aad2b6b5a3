"""Decision and event logs exported to Parquet round-trip the campaign's typed records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from typer.testing import CliRunner

from agent import Campaign, CampaignSpec, Goal
from agent.export import export_logs
from cli.app import app
from policies import make_policy
from simulators import Simulator, load_scenario


def test_export_round_trips_decisions_and_events(tmp_path: Path) -> None:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    spec = CampaignSpec(goal=Goal(target=1e6), budget=80, customers_per_iteration=1000, max_iterations=4)
    camp = Campaign(spec, sim, make_policy("thompson", sim, seed=2), seed=2)
    camp.run()
    paths = export_logs(camp, tmp_path, campaign_id="c-1")
    dec = pq.read_table(paths["decisions"]).to_pydict()
    assert len(dec["decision_id"]) == len(camp.log) > 0
    assert dec["decision_id"] == camp.log.decision_id.tolist() and dec["arm"] == camp.log.arm.tolist()
    assert set(dec["campaign"]) == {"c-1"} and set(dec["policy"]) == {"thompson"}
    assert all(0 < p <= 1 for p in dec["pscore"])
    assert np.isclose(sum(dec["charged"]), camp.ledger.spent)
    assert dec["arm_name"][0] == camp.sim.arms.names[dec["arm"][0]]
    ev = pq.read_table(paths["events"]).to_pydict()
    assert len(ev["kind"]) == len(camp.event_log) > 0
    assert set(ev["kind"]) <= {"delivered", "opened", "clicked", "converted", "unsubscribed"}
    own = [d for d in ev["decision_id"] if d >= 0]
    assert set(own) <= set(dec["decision_id"])


def test_simulate_export_log(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policy",
            "random",
            "--max-iterations",
            "2",
            "--customers-per-iteration",
            "2000",
            "--export-log",
            str(tmp_path / "logs"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "logs" / "decisions.parquet").num_rows == json.loads(res.stdout)["sends"]
