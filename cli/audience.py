"""``campaign-opt audience``: owners' audiences in the server's database (import, list, show).

The database is ``--database-url``, else ``$DATABASE_URL`` (default: the SQLite file under
``$DATA_DIR``), the same the server uses; it is migrated first. Audiences belong to an owner
(``--owner``, created when new, the name ``keys create --owner`` takes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, print_json
from cli.common import stderr as console

if TYPE_CHECKING:
    from sqlalchemy import Engine

audience_app = typer.Typer(
    help="Owners' audiences: import customers from CSV or Parquet, list and show them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the server's database (default: $DATABASE_URL, else the SQLite file "
        "under $DATA_DIR).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_OPTION = {
    "id_column": "--id-column",
    "schema": "--schema",
    "name": "--name",
    "owner": "--owner",
    "body": "FILE",
}
"""The command-line spelling of the fields the import's errors name."""


def _engine(database_url: str | None) -> Engine:
    """The database, migrated, or exit 2 naming ``--database-url``."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from serving.db import make_engine, migrate
    from serving.settings import settings_from_env

    url = database_url or settings_from_env().database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = make_engine(url)
        migrate(engine)
    except (ArgumentError, ValueError) as err:
        raise fail(f"--database-url {url!r}: not a database URL ({err})") from None
    except (SQLAlchemyError, OSError) as err:
        reason = " ".join(str(getattr(err, "orig", None) or err).split())[:200]
        raise fail(f"--database-url: cannot open the database ({reason})") from None
    return engine


def _field_option(field: list[str | int] | None) -> str:
    names = [f for f in field or [] if isinstance(f, str) and f not in ("query", "body")]
    if field and field[0] == "body" and not names:
        return "FILE"
    return next((_OPTION[n] for n in names if n in _OPTION), "FILE")


@audience_app.command("import")
def audience_import(
    file: Annotated[
        Path, typer.Argument(help="The customers: CSV (a header row) or Parquet (.parquet, .pq).")
    ],
    name: Annotated[
        str, typer.Option(help="The audience's name; the same name again updates customers by id.")
    ],
    id_column: Annotated[
        str | None,
        typer.Option(help="The column of customer ids (default: a column named id, customer_id, ...)."),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            help='A declared schema, JSON: {"id_column": ..., "columns": {"recency": "numeric", ...}, '
            '"consent": {"email": "email_consent"}, "reachable": {"email": "email_ok"}} (default: inferred).'
        ),
    ] = None,
    owner: Annotated[str, typer.Option(help="The owner of the audience (created when new).")] = "default",
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Import customers as an owner's audience: one transaction, nothing stored on any row error.

    Prints the report: rows inserted and updated, the schema as read (inferred columns listed) and
    each column's type, missing values and range. Row errors are listed (the first 100) and the
    command exits with code 2."""
    from serving.audience_store import owner_id_by_name
    from serving.audiences import ImportRejectedError, import_file
    from serving.errors import ServiceError

    if not file.is_file():
        raise fail(f"FILE {str(file)!r}: no such file")
    declared: dict[str, Any] | None = None
    if schema is not None:
        try:
            declared = json.loads(schema.read_text(encoding="utf-8"))
        except OSError as err:
            raise fail(f"--schema {str(schema)!r}: cannot read the file ({err.strerror or err})") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise fail(f"--schema {str(schema)!r}: not valid JSON ({err})") from None
        if not isinstance(declared, dict):
            raise fail(f"--schema {str(schema)!r}: must be a JSON object")
    engine = _engine(database_url)
    try:
        oid = owner_id_by_name(engine, owner)
        report = import_file(engine, oid, file, name, id_column, declared)
    except ImportRejectedError as err:
        if as_json:
            print_json(err.report)
        else:
            for e in err.report["errors"][:20]:
                where = f"row {e['row']}, " if e["row"] else ""
                console.print(f"  {where}column {e['column']}: {e['message']}", highlight=False, markup=False)
        raise fail(f"FILE {str(file)!r}: {err.message}") from None
    except ServiceError as err:
        raise fail(f"{_field_option(err.field)}: {err.message}") from None
    except OSError as err:
        raise fail(f"FILE {str(file)!r}: cannot read the file ({err.strerror or err})") from None
    finally:
        engine.dispose()
    if as_json:
        print_json(_jsonable(report))
        return
    aud = report["audience"]
    verb = "created" if report["created"] else "updated"
    out.print(
        f"audience {aud['id']} {aud['name']!r} {verb} (owner {owner!r}): {report['inserted']:,} inserted, "
        f"{report['updated']:,} updated, {aud['rows']:,} customers; "
        f"channels: {', '.join(aud['channels']) or 'none'}",
        highlight=False,
        markup=False,
    )
    _types_table(report["types"], report["inferred"])


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def _types_table(types: dict[str, dict[str, Any]], inferred: list[str] | None = None) -> None:
    table = Table(title="Columns")
    for col in ("column", "type", "role", "missing", "range / distinct / true", "inferred"):
        table.add_column(col, no_wrap=True)
    for name, t in types.items():
        if t["type"] == "numeric":
            detail = f"{t.get('min')} .. {t.get('max')}"
        elif t["type"] == "categorical":
            detail = f"{t.get('distinct')} distinct"
        elif t["type"] == "boolean":
            detail = f"{t.get('true')} true"
        else:
            detail = ""
        mark = "yes" if inferred is not None and name in inferred else ""
        table.add_row(name, t["type"], t["role"], f"{t['missing']:,}", detail, mark)
    out.print(table)


@audience_app.command("list")
def audience_list(
    owner: Annotated[
        str | None, typer.Option(help="Only this owner's audiences (default: every owner's).")
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """List audiences: id, owner, name, customers, channels, last update."""
    from serving.audience_store import all_audiences, owner_id_named

    engine = _engine(database_url)
    try:
        oid = None
        if owner is not None:
            oid = owner_id_named(engine, owner)
            if oid is None:
                raise fail(f"--owner {owner!r}: no such owner")
        with engine.connect() as conn:
            rows = all_audiences(conn, oid)
    finally:
        engine.dispose()
    if as_json:
        print_json(_jsonable(rows))
        return
    table = Table(title="Audiences")
    for col in ("id", "owner", "name", "customers", "channels", "updated"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["owner"],
            r["name"],
            f"{r['rows']:,}",
            ", ".join(r["channels"]),
            str(r["updated_at"])[:19],
        )
    out.print(table)


@audience_app.command("show")
def audience_show(
    audience: Annotated[str, typer.Argument(metavar="AUDIENCE", help="The audience's id or name.")],
    owner: Annotated[str | None, typer.Option(help="The owner (needed when several own that name).")] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show an audience: customers, schema, channels, the last import's column report, saved
    filters with their match counts, opt-out list sizes."""
    from serving.audience_lists import list_filters, list_opt_outs
    from serving.audience_store import find_audience, owner_id_named
    from serving.audiences import audience_summary
    from serving.errors import ServiceError

    engine = _engine(database_url)
    try:
        oid = None
        if owner is not None:
            oid = owner_id_named(engine, owner)
            if oid is None:
                raise fail(f"--owner {owner!r}: no such owner")
        with engine.connect() as conn:
            try:
                oid, aid = find_audience(conn, audience, oid)
                data = audience_summary(conn, oid, aid)
                data["filters"] = list_filters(conn, oid, aid)
                data["opt_outs"] = list_opt_outs(conn, oid, aid, None, 0, 1)["counts"]
            except ServiceError as err:
                raise fail(f"AUDIENCE {audience!r}: {err.message}") from None
    finally:
        engine.dispose()
    if as_json:
        print_json(_jsonable(data))
        return
    out.print(
        f"audience {data['id']} {data['name']!r}: {data['rows']:,} customers, id column "
        f"{data['schema']['id_column']!r}, channels: {', '.join(data['channels']) or 'none'}",
        highlight=False,
        markup=False,
    )
    _types_table(data["types"])
    for f in data["filters"]:
        shown = f"{f['matches']:,}" if f["matches"] is not None else f"error: {f.get('error')}"
        out.print(f"filter {f['name']}: {f['expression']}  ({shown})", highlight=False, markup=False)
    for ch, n in data["opt_outs"].items():
        out.print(f"opted out of {ch}: {n:,}", highlight=False, markup=False)
    sys.stdout.flush()
