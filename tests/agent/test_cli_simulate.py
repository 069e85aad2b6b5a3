"""`campaign-opt simulate` with caps: the options reach the loop, bad values exit 2 with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.app import app

runner = CliRunner(env={"COLUMNS": "200"})
SMALL = ["--max-iterations", "4", "--customers-per-iteration", "2000", "--budget", "300", "--json"]


def test_caps_reach_the_campaign(tmp_path: Path) -> None:
    ids = tmp_path / "suppress.txt"
    ids.write_text("\n".join(str(i) for i in range(0, 60_000, 2)) + "\n")
    res = runner.invoke(
        app,
        [
            "simulate",
            "--policy",
            "random",
            "--frequency-cap",
            "1/10",
            "--channel-budget",
            "mail=2",
            "--channel-budget",
            "sms=1",
            "--suppression",
            str(ids),
            *SMALL,
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["max_contacts_per_customer"] <= 1
    assert rep["spend_by_channel"]["mail"] <= 2 and rep["spend_by_channel"]["sms"] <= 1
    assert rep["sends"] > 0


def test_bad_cap_options_exit_2_with_the_reason(tmp_path: Path) -> None:
    cases = [
        (["--frequency-cap", "2"], "expected K/W"),
        (["--frequency-cap", "0/3"], "max_contacts"),
        (["--channel-budget", "mail"], "CHANNEL=DOLLARS"),
        (["--channel-budget", "mail=-3"], "positive finite amount"),
        (["--channel-budget", "mail=inf"], "positive finite amount"),
        (["--channel-budget", "fax=3"], "unknown channel 'fax'"),
        (["--suppression", str(tmp_path / "none.txt")], "file not found"),
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nabc\n")
    cases.append((["--suppression", str(bad)], "not a customer id: 'abc'"))
    binary = tmp_path / "ids.bin"
    binary.write_bytes(bytes(range(128, 256)))
    cases.append((["--suppression", str(binary)], "cannot read it as text"))
    cases.append((["--suppression", str(tmp_path / "ids.bin" / "x")], "file not found"))
    for args, message in cases:
        res = runner.invoke(app, ["simulate", "--policy", "random", *args, *SMALL])
        assert res.exit_code == 2, (args, res.output)
        assert message in " ".join(res.output.split()), (args, res.output)


def test_dry_run_and_forecast_send_nothing() -> None:
    res = runner.invoke(
        app, ["simulate", "--policy", "budgeted_ts", "--dry-run", "--max-offer-value", "0", *SMALL]
    )
    assert res.exit_code == 0, res.output
    dry = json.loads(res.stdout)
    assert dry["contacts"] > 0 and all(name.endswith("/none") for name in dry["contacts_by_arm"])
    assert dry["worst_case_cost"] <= dry["budget_available"]
    res = runner.invoke(app, ["simulate", "--policy", "oracle", "--forecast", "2", *SMALL])
    assert res.exit_code == 0, res.output
    fc = json.loads(res.stdout)
    assert fc["runs"] == 2 and 0 <= fc["p_goal_within_budget"] <= 1


def test_channel_file_writes_every_decision(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "--policy", "random", "--channel", f"file:{tmp_path}:csv", *SMALL])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["channel"] == "simulated+file"
    rows = sum(len(f.read_text().splitlines()) - 1 for f in tmp_path.glob("*.csv"))
    assert rows == rep["sends"] > 0
    assert "conversions_projected" in rep and rep["conversions_pending"] == 0


def test_channel_errors_are_clear() -> None:
    res = runner.invoke(app, ["simulate", "--channel", "carrier-pigeon", *SMALL])
    assert res.exit_code == 2 and "use simulated, file:FOLDER" in res.output
    res = runner.invoke(
        app,
        ["simulate", "--channel", "webhook:http://127.0.0.1:9/x", *SMALL],
        env={"CAMPAIGN_OPT_WEBHOOK_SECRET": ""},
    )
    assert res.exit_code == 2 and "CAMPAIGN_OPT_WEBHOOK_SECRET" in res.output
