"""`campaign-opt audience import|list|show` through typer's runner, on an SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from serving.audience_store import owner_id_named
from serving.audiences import load_audience
from serving.db import make_engine

runner = CliRunner(env={"COLUMNS": "200"})

CSV = "customer_id,recency,zip_code,consent_email\nc1,3,Urban,yes\nc2,,Rural,no\nc3,9,Urban,1\n"


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_import_json_report_then_list_and_show(tmp_path: Path, db: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    res = runner.invoke(
        app, ["audience", "import", str(path), "--name", "spring", "--database-url", db, "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["created"] and rep["inserted"] == 3 and rep["error_count"] == 0
    assert rep["schema"]["columns"] == {"recency": "numeric", "zip_code": "categorical"}
    assert rep["schema"]["consent"] == {"email": "consent_email"}
    assert rep["types"]["recency"]["missing"] == 1
    # again: updates by id
    path.write_text("customer_id,recency,zip_code,consent_email\nc1,4,Urban,yes\nc4,1,Rural,yes\n")
    res = runner.invoke(
        app, ["audience", "import", str(path), "--name", "spring", "--database-url", db, "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert (
        not rep["created"] and rep["inserted"] == 1 and rep["updated"] == 1 and rep["audience"]["rows"] == 4
    )
    engine = make_engine(db)
    owner = owner_id_named(engine, "default")
    assert owner is not None
    with engine.connect() as conn:
        data = load_audience(conn, owner, rep["audience"]["id"])
    engine.dispose()
    assert list(data.ids) == ["c1", "c2", "c3", "c4"] and data.columns["recency"][0] == 4
    listed = runner.invoke(app, ["audience", "list", "--database-url", db, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["owner"], r["rows"]) for r in rows] == [("spring", "default", 4)]
    shown = runner.invoke(app, ["audience", "show", "spring", "--database-url", db, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["channels"] == ["email"]
    table = runner.invoke(app, ["audience", "show", "1", "--database-url", db])
    assert table.exit_code == 0 and "spring" in table.stdout and "zip_code" in table.stdout
    text = runner.invoke(app, ["audience", "list", "--database-url", db])
    assert text.exit_code == 0 and "spring" in text.stdout


def test_declared_schema_file_and_database_url_from_the_environment(tmp_path: Path, db: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text("cid,zip,ok\n1,10001,1\n2,10002,0\n")
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({"id_column": "cid", "columns": {"zip": "categorical"}, "consent": {"email": "ok"}})
    )
    res = runner.invoke(
        app,
        [
            "audience",
            "import",
            str(path),
            "--name",
            "x",
            "--schema",
            str(schema),
            "--owner",
            "acme",
            "--json",
        ],
        env={"DATABASE_URL": db},
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["schema"]["columns"] == {"zip": "categorical"} and rep["inferred"] == []
    listed = json.loads(
        runner.invoke(app, ["audience", "list", "--owner", "acme", "--json"], env={"DATABASE_URL": db}).stdout
    )
    assert [r["owner"] for r in listed] == ["acme"]


def test_row_errors_exit_2_with_the_report(tmp_path: Path, db: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,recency,consent_email\n1,3,yes\n1,4,maybe\n")
    res = runner.invoke(app, ["audience", "import", str(path), "--name", "x", "--database-url", db, "--json"])
    assert res.exit_code == 2, res.output
    rep = json.loads(res.stdout)
    assert rep["error_count"] == 2 and {e["column"] for e in rep["errors"]} == {"id", "consent_email"}
    assert "FILE" in _flat(res.stderr).split("error:", 1)[1]
    res = runner.invoke(app, ["audience", "import", str(path), "--name", "x", "--database-url", db])
    assert res.exit_code == 2 and "row 2" in res.stderr
    listed = runner.invoke(app, ["audience", "list", "--database-url", db, "--json"])
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["audience", "import", "{tmp}/nowhere.csv", "--name", "x"], "FILE"),
        (["audience", "import", "{tmp}/plain.csv", "--name", "x", "--id-column", "zz"], "--id-column"),
        (["audience", "import", "{tmp}/plain.csv", "--name", "x"], "--id-column"),
        (["audience", "import", "{tmp}/plain.csv", "--name", " "], "--name"),
        (["audience", "import", "{tmp}/plain.csv", "--name", "x", "--schema", "{tmp}/nope.json"], "--schema"),
        (["audience", "import", "{tmp}/plain.csv", "--name", "x", "--schema", "{tmp}/plain.csv"], "--schema"),
        (["audience", "import", "{tmp}/plain.csv", "--name", "x", "--schema", "{tmp}/list.json"], "--schema"),
        (
            ["audience", "import", "{tmp}/plain.csv", "--name", "x", "--database-url", "nonsense://x"],
            "--database-url",
        ),
        (["audience", "import", "{tmp}/binary.csv", "--name", "x"], "FILE"),
        (["audience", "import", "{tmp}/plain.csv"], "--name"),
        (["audience", "show", "nothing"], "AUDIENCE"),
        (["audience", "list", "--owner", "nobody"], "--owner"),
        (["audience", "list", "--jsn"], "--jsn"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_option(
    tmp_path: Path, args: list[str], option: str
) -> None:
    (tmp_path / "plain.csv").write_text("a,b\n1,2\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(128, 256)))
    (tmp_path / "list.json").write_text("[1, 2]")
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    res = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args], env=env)
    assert res.exit_code == 2, res.output
    error = _flat(res.output).lower().split("error:", 1)
    assert len(error) == 2 and option.lower() in error[1], res.output


def test_help_is_plain_text() -> None:
    for cmd in (["audience"], ["audience", "import"], ["audience", "list"], ["audience", "show"]):
        res = runner.invoke(app, [*cmd, "--help"])
        assert res.exit_code == 0, res.output
        assert "Usage:" in res.stdout and "\x1b[" not in res.stdout
    words = _flat(runner.invoke(app, ["audience", "import", "--help"]).stdout)
    for opt in ("--name", "--id-column", "--schema", "--database-url", "--json", "--owner"):
        assert opt in words
