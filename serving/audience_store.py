"""Writing owners' audiences: imports (one transaction, ``COPY`` on PostgreSQL, one
``executemany`` on SQLite), JSON rows, opt-outs, saved filters and segments.

The readers (:func:`serving.audiences.load_audience`, :func:`serving.audiences.opted_out`) and the
module's overview are in :mod:`serving.audiences`; files are read and checked by
:mod:`serving.audience_import`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy
from sqlalchemy import func, insert, select, update

from serving.audience_import import (
    Report,
    Schema,
    infer_schema,
    parse_schema,
    read_table,
    rows_table,
    validate,
)
from serving.audiences import (
    AUDIENCE,
    DEFAULT_MAX_ROWS,
    ImportRejectedError,
    audience_row,
    audience_summary,
    stored_schema,
    summary,
)
from serving.errors import ConflictError, InvalidError, NotFoundError
from serving.models import AudienceMember, AudienceRow, Owner, utcnow


def _merge_schema(old: Schema, new: Schema) -> Schema:
    """The audience's schema after an import: the old one plus the file's new columns."""
    merged = Schema(**old.to_json())
    for c, t in new.columns.items():
        merged.columns.setdefault(c, t)
    for ch, c in new.consent.items():
        merged.consent.setdefault(ch, c)
    for ch, c in new.reachable.items():
        merged.reachable.setdefault(ch, c)
    return merged


def _base_for(old: Schema, names: list[str], declared: Schema | None) -> Schema:
    """The declaration a re-import is read with: the audience's schema for the file's columns
    (the types it pinned), then what the owner declared for new columns."""
    have = set(names)
    base = Schema(
        id_column=old.id_column,
        columns={c: t for c, t in old.columns.items() if c in have},
        consent={ch: c for ch, c in old.consent.items() if c in have},
        reachable={ch: c for ch, c in old.reachable.items() if c in have},
    )
    if declared is not None:
        for c, t in declared.columns.items():
            if old.columns.get(c, t) != t:
                msg = f"column {c!r} is {old.columns[c]} in the audience; its type cannot change"
                raise InvalidError(msg, ["schema", "columns", c])
            base.columns.setdefault(c, t)
        for part, new_part, key in (
            (old.consent, declared.consent, "consent"),
            (old.reachable, declared.reachable, "reachable"),
        ):
            for ch, c in new_part.items():
                if part.get(ch, c) != c:
                    msg = f"channel {ch!r} has {key} column {part[ch]!r} in the audience, not {c!r}"
                    raise InvalidError(msg, ["schema", key, ch])
                getattr(base, key).setdefault(ch, c)
    return base


def import_table(
    conn: sqlalchemy.Connection,
    owner_id: int,
    name: str,
    table: pa.Table,
    *,
    declared: Schema | None = None,
    id_column: str | None = None,
    audience_id: int | None = None,
) -> dict[str, Any]:
    """Check and store a text table as (part of) an audience, in the caller's transaction.

    Args:
        conn: a connection inside a transaction (rolled back by the caller on error).
        owner_id: the owner.
        name: the audience's name (a new one is created; an existing one is updated by id).
        table: the rows, every value as text (:func:`serving.audience_import.read_table`).
        declared: the owner's declared schema, if any.
        id_column: the id column's name, if given apart.
        audience_id: append to this audience (JSON rows) instead of looking it up by name.

    Returns:
        The report: ``audience`` (as :func:`audience_summary`), ``rows_in_file``, ``inserted``,
        ``updated``, ``schema``, ``inferred`` (columns whose role or type was inferred),
        ``types`` (per column), ``errors`` (empty) and ``error_count`` (0).

    Raises:
        ImportRejectedError: row errors (nothing stored).
        InvalidError: the file or schema does not fit (a missing column, no id column...).
    """
    names = list(table.column_names)
    q = select(*AUDIENCE.c).where(AudienceRow.owner_id == owner_id)
    q = (
        q.where(AudienceRow.id == audience_id)
        if audience_id is not None
        else q.where(AudienceRow.name == name)
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    existing = conn.execute(q).first()
    if audience_id is not None and existing is None:
        raise NotFoundError(f"no audience {audience_id} of this owner", ["audience_id"])
    if existing is not None:
        old = stored_schema(existing)
        if id_column and id_column != old.id_column:
            msg = f"the audience's id column is {old.id_column!r}, not {id_column!r}"
            raise InvalidError(msg, ["id_column"])
        if declared is not None and declared.id_column and declared.id_column != old.id_column:
            raise InvalidError(f"the audience's id column is {old.id_column!r}", ["schema", "id_column"])
        given: Schema | None = _base_for(old, names, declared)
        schema = infer_schema(names, table, given, None)
    else:
        given = declared
        schema = infer_schema(names, table, declared, id_column)
    report = Report()
    checked = validate(table, schema, report)
    # Inferred: what neither the owner's declaration nor the audience's schema said.
    known = set(given.columns) | set(given.flags) if given is not None else set()
    inferred = sorted(c for c in [*schema.columns, *schema.flags] if c not in known)
    result: dict[str, Any] = {
        "rows_in_file": table.num_rows,
        "schema": schema.to_json(),
        "inferred": inferred,
        "types": checked.types,
    }
    if report.total:
        raise ImportRejectedError({**result, "errors": report.sorted(), "error_count": report.total})
    now = utcnow()
    if existing is None:
        aid = conn.execute(
            insert(AudienceRow)
            .values(
                owner_id=owner_id,
                name=name,
                schema_json=json.dumps(schema.to_json()),
                report_json=json.dumps(checked.types),
                rows=0,
                next_seq=0,
                created_at=now,
                updated_at=now,
            )
            .returning(AudienceRow.id)
        ).scalar_one()
        before, seq0, merged = 0, 0, schema
    else:
        aid, before, seq0 = existing.id, int(existing.rows), int(existing.next_seq)
        merged = _merge_schema(stored_schema(existing), schema)
    _write_members(conn, aid, checked.ids, checked.values, seq0, upsert=existing is not None)
    total = int(
        conn.execute(
            select(func.count()).select_from(AudienceMember).where(AudienceMember.audience_id == aid)
        ).scalar_one()
    )
    conn.execute(
        update(AudienceRow)
        .where(AudienceRow.id == aid)
        .values(
            schema_json=json.dumps(merged.to_json()),
            report_json=json.dumps(checked.types),
            rows=total,
            next_seq=seq0 + table.num_rows,
            updated_at=now,
        )
    )
    inserted = total - before
    summary = audience_summary(conn, owner_id, aid)
    return {
        "audience": summary,
        **result,
        "created": existing is None,
        "inserted": inserted,
        "updated": table.num_rows - inserted,
        "errors": [],
        "error_count": 0,
    }


def _lines(arr: pa.Array) -> bytes:
    """Text values joined as one buffer, each followed by a newline."""
    joined = pc.binary_join_element_wise(arr, pa.scalar("\n"), "")
    if len(joined) == 0:
        return b""
    offsets = np.frombuffer(
        joined.buffers()[1], dtype=np.int32, count=len(joined) + 1, offset=joined.offset * 4
    )
    data: bytes = joined.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    return data


def _copy_text(arr: pa.Array) -> pa.Array:
    """Text escaped for PostgreSQL's ``COPY`` text format (backslash, tab, newline, return)."""
    out = pc.replace_substring(arr, "\\", "\\\\")
    for raw, esc in (("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        out = pc.replace_substring(out, raw, esc)
    return out


def _write_members(
    conn: sqlalchemy.Connection, aid: int, ids: pa.Array, values: pa.Array, seq0: int, *, upsert: bool
) -> None:
    """Insert (or, when ``upsert``, insert or update by id) the members, shape ``(n,)`` each."""
    n = len(ids)
    if n == 0:
        return
    seq = pa.array(np.arange(seq0, seq0 + n, dtype=np.int64))
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        target = "audience_members"
        with raw.cursor() as cur:  # type: ignore[union-attr]
            if upsert:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS audience_import (audience_id integer, "
                    "customer_id varchar(200), seq bigint, values_json text) ON COMMIT DROP"
                )
                cur.execute("TRUNCATE audience_import")
                target = "audience_import"
            lines = pc.binary_join_element_wise(
                pa.scalar(str(aid)), _copy_text(ids), pc.cast(seq, pa.string()), _copy_text(values), "\t"
            )
            data = _lines(lines)
            sql = f"COPY {target} (audience_id, customer_id, seq, values_json) FROM STDIN"
            with cur.copy(sql) as copy:
                step = 1 << 23
                for start in range(0, len(data), step):
                    copy.write(data[start : start + step])
            if upsert:
                cur.execute(
                    "INSERT INTO audience_members SELECT audience_id, customer_id, seq, values_json "
                    "FROM audience_import ON CONFLICT (audience_id, customer_id) "
                    "DO UPDATE SET values_json = EXCLUDED.values_json"
                )
                cur.execute("DROP TABLE audience_import")
        return
    raw = conn.connection.driver_connection
    sql = "INSERT INTO audience_members (audience_id, customer_id, seq, values_json) VALUES (?, ?, ?, ?)"
    if upsert:
        sql += " ON CONFLICT (audience_id, customer_id) DO UPDATE SET values_json = excluded.values_json"
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(
            sql, zip([aid] * n, ids.to_pylist(), range(seq0, seq0 + n), values.to_pylist(), strict=True)
        )
    finally:
        cur.close()


def check_name(name: str) -> str:
    """An audience name: 1 to 200 characters of text, trimmed.

    Raises:
        InvalidError: empty, too long or with control characters (field ``name``).
    """
    name = (name or "").strip()
    if not name or len(name) > 200 or any(ord(ch) < 32 for ch in name):
        raise InvalidError("name must be 1 to 200 characters, without control characters", ["name"])
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidError("name must be valid Unicode", ["name"]) from None
    return name


def import_bytes(
    engine: sqlalchemy.Engine,
    owner_id: int,
    data: bytes,
    fmt: str,
    name: str,
    id_column: str | None = None,
    schema: dict[str, Any] | None = None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, Any]:
    """:func:`import_file` for a file's bytes (the HTTP upload).

    Two imports creating the same new name at once: the one that commits second finds the
    audience on its second attempt and updates it (a 409 only if that fails again)."""
    name = check_name(name)
    if id_column is not None and (not id_column or len(id_column) > 100):
        raise InvalidError("id_column must be a column name", ["id_column"])
    declared = parse_schema(schema) if schema is not None else None
    table = read_table(data, fmt, max_rows)
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                return import_table(conn, owner_id, name, table, declared=declared, id_column=id_column)
        except sqlalchemy.exc.IntegrityError:
            if attempt:
                msg = f"audience {name!r} is being imported by another request; try again"
                raise ConflictError(msg) from None
    raise AssertionError("unreachable")


def append_rows(
    engine: sqlalchemy.Engine, owner_id: int, audience_id: int, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Add or update (by id) JSON rows of an audience, checked like a file, in one transaction.

    A customer already in the audience keeps the stored values of the columns its row leaves
    out (``null`` clears a value); a new customer's left-out columns are missing (a consent left
    out: no consent).

    Raises:
        NotFoundError: no such audience of this owner.
        ImportRejectedError: row errors (nothing stored).
        InvalidError: a row that is not an object, an unknown column.
    """
    with engine.begin() as conn:
        row = audience_row(conn, owner_id, audience_id)
        schema = stored_schema(row)
        stored = _stored_values(
            conn, audience_id, [r.get(schema.id_column) for r in rows if isinstance(r, dict)]
        )
        merged = [
            {**stored.get(_id_text(r.get(schema.id_column)), {}), **r} if isinstance(r, dict) else r
            for r in rows
        ]
        table = rows_table(merged, [schema.id_column, *schema.stored_columns()])
        return import_table(conn, owner_id, row.name, table, audience_id=audience_id)


def _id_text(value: Any) -> str:
    """A JSON row's customer id as the text it is stored as."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return repr(value)
    return ""


def _stored_values(
    conn: sqlalchemy.Connection, audience_id: int, ids: list[Any]
) -> dict[str, dict[str, Any]]:
    """The stored values of the customers among ``ids`` that are in the audience."""
    wanted = sorted({t for t in map(_id_text, ids) if t})
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        found = conn.execute(
            select(AudienceMember.customer_id, AudienceMember.values_json).where(
                AudienceMember.audience_id == audience_id,
                AudienceMember.customer_id.in_(wanted[start : start + 500]),
            )
        ).all()
        out.update((cid, json.loads(values)) for cid, values in found)
    return out


def list_audiences(conn: sqlalchemy.Connection, owner_id: int) -> list[dict[str, Any]]:
    """The owner's audiences (as :func:`audience_summary`), by id."""
    rows = conn.execute(
        select(*AUDIENCE.c).where(AudienceRow.owner_id == owner_id).order_by(AudienceRow.id)
    ).all()
    return [summary(r) for r in rows]


def owner_id_by_name(engine: sqlalchemy.Engine, owner: str) -> int:
    """The id of the owner called ``owner``, created when new (the command line's owner)."""
    owner = owner.strip()
    if not owner or len(owner) > 200:
        raise InvalidError("owner name must be 1 to 200 characters", ["owner"])
    with engine.begin() as conn:
        oid = conn.execute(select(Owner.id).where(Owner.name == owner)).scalar()
        if oid is None:
            oid = conn.execute(
                insert(Owner).values(name=owner, created_at=utcnow()).returning(Owner.id)
            ).scalar_one()
    return int(oid)


def find_audience(conn: sqlalchemy.Connection, ref: str, owner_id: int | None = None) -> tuple[int, int]:
    """``(owner_id, audience_id)`` of an audience named by id or by name (the command line's
    view: every owner's audiences unless ``owner_id``).

    Raises:
        NotFoundError: no such audience, or a name that several owners use.
    """
    q = select(AudienceRow.owner_id, AudienceRow.id)
    q = q.where(AudienceRow.id == int(ref)) if ref.isdigit() else q.where(AudienceRow.name == ref)
    if owner_id is not None:
        q = q.where(AudienceRow.owner_id == owner_id)
    rows = conn.execute(q.limit(2)).all()
    if not rows:
        raise NotFoundError(f"no audience {ref!r}" + (" of this owner" if owner_id is not None else ""))
    if len(rows) > 1:
        raise NotFoundError(f"several owners have an audience {ref!r}: name the owner")
    return int(rows[0][0]), int(rows[0][1])


def all_audiences(conn: sqlalchemy.Connection, owner_id: int | None = None) -> list[dict[str, Any]]:
    """Audiences of one owner, or of every owner, each with its ``owner`` name, by id."""
    q = select(*AUDIENCE.c, Owner.name.label("owner")).join(Owner, Owner.id == AudienceRow.owner_id)
    if owner_id is not None:
        q = q.where(AudienceRow.owner_id == owner_id)
    return [{**summary(r), "owner": r.owner} for r in conn.execute(q.order_by(AudienceRow.id)).all()]


def owner_id_named(engine: sqlalchemy.Engine, owner: str) -> int | None:
    """The id of the owner called ``owner``, or ``None``."""
    with engine.connect() as conn:
        oid = conn.execute(select(Owner.id).where(Owner.name == owner.strip())).scalar()
    return None if oid is None else int(oid)
