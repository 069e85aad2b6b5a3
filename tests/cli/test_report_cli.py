"""``campaign-opt report ab`` and ``report rounds``: JSON on stdout, a PNG, one-line errors with
exit code 2 naming the option (assertions on JSON, never on wrapped console text)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner(env={"COLUMNS": "200"})


def _log(path: Path, seed: int, mens_rate: float = 0.03, n: int = 3000) -> Path:
    """A Hillstrom-shaped randomized log (default column names), without feature columns."""
    rng = np.random.default_rng(seed)
    arms = rng.choice(["No E-Mail", "Mens E-Mail", "Womens E-Mail"], n)
    rate = np.select([arms == "Mens E-Mail", arms == "Womens E-Mail"], [mens_rate, 0.02], 0.01)
    conv = rng.random(n) < rate
    visit = conv | (rng.random(n) < 0.1)
    spend = np.where(conv, np.round(rng.lognormal(4.5, 0.8, n), 2), 0.0)
    lines = ["segment,visit,conversion,spend"]
    lines += [f"{a},{int(v)},{int(c)},{s}" for a, v, c, s in zip(arms, visit, conv, spend, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _json(args: list[str]) -> dict[str, object]:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out: dict[str, object] = json.loads(res.stdout)
    return out


def test_ab_json_table_and_plot(tmp_path: Path) -> None:
    log = _log(tmp_path / "log.csv", 0, mens_rate=0.04)
    png = tmp_path / "plots" / "ab.png"
    body = _json(["report", "ab", "--log", str(log), "--json", "--plot", str(png)])
    assert body["kind"] == "ab" and body["control"] == "no_email" and body["plot"] == str(png)
    groups = body["groups"]
    assert isinstance(groups, list) and sum(g["n"] for g in groups) == 3000
    comps = {(c["group"], c["metric"]): c for c in body["comparisons"]}  # type: ignore[union-attr]
    assert comps[("mens_email", "conversion_rate")]["significant"] is True
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = runner.invoke(app, ["report", "ab", "--log", str(log), "--by", "content"])
    assert text.exit_code == 0 and "womens" in text.stdout
    named = _json(
        ["report", "ab", "--log", str(log), "--control", "womens_email", "--json", "--correction", "bh"]
    )
    assert named["control"] == "womens_email" and named["correction"] == "bh"


def test_ab_of_a_campaign_export_by_policy(tmp_path: Path) -> None:
    from agent import Campaign, CampaignSpec, Goal
    from agent.export import export_logs
    from policies import make_policy
    from simulators import Simulator, load_scenario

    camps = {}
    for policy in ("random", "thompson"):
        sim = Simulator(load_scenario("retail"), n_customers=2000)
        spec = CampaignSpec(goal=Goal(target=40), budget=40, customers_per_iteration=500, max_iterations=3)
        camps[policy] = Campaign(spec, sim, make_policy(policy, sim, seed=0), seed=0)
        camps[policy].run()
        export_logs(camps[policy], tmp_path / policy)
    body = _json(["report", "ab", "--log", str(tmp_path / "random"), "--by", "channel", "--json"])
    assert sum(g["n"] for g in body["groups"]) == len(camps["random"].log)  # type: ignore[union-attr]
    pol = _json(["report", "ab", "--log", str(tmp_path / "random"), "--by", "policy", "--json"])
    assert [g["name"] for g in pol["groups"]] == ["random"]  # type: ignore[union-attr]
    # Two campaigns pooled: their policies side by side, the named one as the control.
    args = ["report", "ab", "--log", str(tmp_path / "random"), "--log", str(tmp_path / "thompson")]
    both = _json([*args, "--by", "policy", "--control", "random", "--json"])
    sizes = {g["name"]: g["n"] for g in both["groups"]}  # type: ignore[union-attr]
    assert sizes == {"random": len(camps["random"].log), "thompson": len(camps["thompson"].log)}
    assert {c["group"] for c in both["comparisons"]} == {"thompson"}  # type: ignore[union-attr]


def test_rounds_json_and_plot(tmp_path: Path) -> None:
    before = _log(tmp_path / "june.csv", 1, mens_rate=0.02)
    after = _log(tmp_path / "july.csv", 2, mens_rate=0.06)
    png = tmp_path / "rounds.png"
    body = _json(
        ["report", "rounds", "--before", str(before), "--after", str(after), "--json", "--plot", str(png)]
    )
    assert body["kind"] == "rounds"
    deltas = {d["metric"]: d for d in body["deltas"]}  # type: ignore[union-attr]
    assert deltas["conversions"]["difference"] == body["after"]["conversions"] - body["before"]["conversions"]  # type: ignore[index]
    assert {"spend", "cost_per_conversion", "conversion_rate"} <= set(deltas)
    groups = {g["group"]: g for g in body["groups"]}  # type: ignore[union-attr]
    assert groups["mens_email"]["significant"] is True and groups["mens_email"]["difference"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = runner.invoke(app, ["report", "rounds", "--before", str(before), "--after", str(after)])
    assert text.exit_code == 0 and "cost_per_conversion" in text.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["report", "ab", "--log", "{tmp}/none.csv"], "--log"),
        (["report", "ab", "--log", "{tmp}/bad.csv"], "--log"),
        (["report", "ab", "--log", "{log}", "--control", "nobody"], "--control"),
        (["report", "ab", "--log", "{log}", "--plot", "{tmp}/ab.jpg"], "--plot"),
        (["report", "ab", "--log", "{log}", "--alpha", "2"], "--alpha"),
        (["report", "ab", "--log", "{log}", "--margin", "-1"], "--margin"),
        (["report", "ab", "--log", "{log}", "--by", "colour"], "--by"),
        (["report", "ab", "--log", "{log}", "--mapping", "{tmp}/bad_mapping.yaml"], "--mapping"),
        (["report", "rounds", "--before", "{tmp}/none.csv", "--after", "{log}"], "--before"),
        (["report", "rounds", "--before", "{log}", "--after", "{tmp}/none.csv"], "--after"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_option(
    tmp_path: Path, args: list[str], option: str
) -> None:
    log = _log(tmp_path / "log.csv", 0)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bad_mapping.yaml").write_text("arm: [1, 2\n")
    res = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)).replace("{log}", str(log)) for a in args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    error = " ".join(res.output.split()).lower().split("error", 1)
    assert len(error) == 2 and option.lower() in error[1], res.output
    assert len([ln for ln in lines if "error" in ln.lower()]) == 1, res.output
