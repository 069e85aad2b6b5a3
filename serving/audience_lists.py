"""An audience's lists beside its customers: opt-outs per channel, saved filters (segments) and
a categorical column's labels. Opt-outs live in their own table, so no import ever loses them;
:func:`serving.audiences.load_audience` and :func:`serving.audiences.opted_out` honour them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy
from sqlalchemy import func, insert, select, update

from serving.audience_filters import check_filter, evaluate_filter
from serving.audience_import import MAX_ID_CHARS
from serving.audiences import audience_row, load_audience, stored_schema
from serving.errors import InvalidError, NotFoundError
from serving.models import AudienceFilter, AudienceOptOut, utcnow


def add_opt_outs(
    engine: sqlalchemy.Engine, owner_id: int, audience_id: int, channel: str, customer_ids: Sequence[str]
) -> dict[str, Any]:
    """Put customers on a channel's opt-out list (ids not in the audience yet are kept too, so a
    later import cannot bring them back); adding one twice is harmless.

    Returns:
        ``{"channel", "added", "total"}``: newly listed, and the channel's list size now.
    """
    ids = list(dict.fromkeys(customer_ids))
    for i, cid in enumerate(ids):
        if not cid or len(cid) > MAX_ID_CHARS:
            raise InvalidError(f"customer ids must be 1 to {MAX_ID_CHARS} characters", ["customer_ids", i])
    with engine.begin() as conn:
        audience_row(conn, owner_id, audience_id)
        count = select(func.count()).select_from(AudienceOptOut)
        count = count.where(AudienceOptOut.audience_id == audience_id, AudienceOptOut.channel == channel)
        before = int(conn.execute(count).scalar_one())
        if ids:
            from sqlalchemy.dialects import postgresql, sqlite

            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            now = utcnow()
            stmt: Any = dialect.insert(AudienceOptOut).on_conflict_do_nothing()
            conn.execute(
                stmt,
                [
                    {"audience_id": audience_id, "channel": channel, "customer_id": c, "created_at": now}
                    for c in ids
                ],
            )
        after = int(conn.execute(count).scalar_one())
    return {"channel": channel, "added": after - before, "total": after}


def list_opt_outs(
    conn: sqlalchemy.Connection, owner_id: int, audience_id: int, channel: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """The opt-out lists: per channel its size, and one page of ``{channel, customer_id}``."""
    audience_row(conn, owner_id, audience_id)
    where = [AudienceOptOut.audience_id == audience_id]
    if channel is not None:
        where.append(AudienceOptOut.channel == channel)
    counts = conn.execute(
        select(AudienceOptOut.channel, func.count()).where(*where).group_by(AudienceOptOut.channel)
    ).all()
    page = conn.execute(
        select(AudienceOptOut.channel, AudienceOptOut.customer_id, AudienceOptOut.created_at)
        .where(*where)
        .order_by(AudienceOptOut.channel, AudienceOptOut.customer_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return {
        "counts": {ch: int(n) for ch, n in counts},
        "opt_outs": [{"channel": ch, "customer_id": c, "created_at": t} for ch, c, t in page],
    }


def save_filter(
    engine: sqlalchemy.Engine, owner_id: int, audience_id: int, name: str, expression: str, max_filters: int
) -> dict[str, Any]:
    """Save (or replace) a named filter once it is valid for the audience's columns.

    Returns:
        ``{"name", "expression", "matches"}`` with the number of customers it keeps.

    Raises:
        InvalidError: a bad expression, or more than ``max_filters`` filters.
    """
    with engine.begin() as conn:
        row = audience_row(conn, owner_id, audience_id)
        schema = stored_schema(row)
        check_filter(expression, schema.columns)
        now = utcnow()
        done = conn.execute(
            update(AudienceFilter)
            .where(AudienceFilter.audience_id == audience_id, AudienceFilter.name == name)
            .values(expression=expression, updated_at=now)
        ).rowcount
        if not done:
            n = conn.execute(
                select(func.count())
                .select_from(AudienceFilter)
                .where(AudienceFilter.audience_id == audience_id)
            ).scalar_one()
            if n >= max_filters:
                raise InvalidError(f"an audience has at most {max_filters} saved filters", ["name"])
            conn.execute(
                insert(AudienceFilter).values(
                    audience_id=audience_id, name=name, expression=expression, created_at=now, updated_at=now
                )
            )
    with engine.connect() as conn:
        data = load_audience(conn, owner_id, audience_id)
    matches = int(evaluate_filter(expression, data.columns, data.column_types, len(data.ids)).sum())
    return {"name": name, "expression": expression, "matches": matches}


def list_filters(conn: sqlalchemy.Connection, owner_id: int, audience_id: int) -> list[dict[str, Any]]:
    """The saved filters with the number of customers each keeps now (an expression the
    columns no longer fit shows its error instead)."""
    audience_row(conn, owner_id, audience_id)
    rows = conn.execute(
        select(AudienceFilter.name, AudienceFilter.expression)
        .where(AudienceFilter.audience_id == audience_id)
        .order_by(AudienceFilter.name)
    ).all()
    if not rows:
        return []
    data = load_audience(conn, owner_id, audience_id)
    out = []
    for name, expression in rows:
        try:
            item: dict[str, Any] = {
                "name": name,
                "expression": expression,
                "matches": int(
                    evaluate_filter(expression, data.columns, data.column_types, len(data.ids)).sum()
                ),
            }
        except InvalidError as err:
            item = {"name": name, "expression": expression, "matches": None, "error": err.message}
        out.append(item)
    return out


def delete_filter(engine: sqlalchemy.Engine, owner_id: int, audience_id: int, name: str) -> None:
    """Delete a saved filter.

    Raises:
        NotFoundError: no such audience of this owner, or no filter of that name.
    """
    with engine.begin() as conn:
        audience_row(conn, owner_id, audience_id)
        done = conn.execute(
            sqlalchemy.delete(AudienceFilter).where(
                AudienceFilter.audience_id == audience_id, AudienceFilter.name == name
            )
        ).rowcount
    if not done:
        raise NotFoundError(f"no filter {name!r} of audience {audience_id}", ["name"])


def segments(
    conn: sqlalchemy.Connection, owner_id: int, audience_id: int, column: str, max_labels: int = 1000
) -> dict[str, Any]:
    """A categorical column as segment labels: each label and its number of customers.

    Raises:
        InvalidError: not a categorical column of the audience.
    """
    row = audience_row(conn, owner_id, audience_id)
    schema = stored_schema(row)
    if schema.columns.get(column) != "categorical":
        cats = ", ".join(c for c, t in schema.columns.items() if t == "categorical") or "none"
        raise InvalidError(f"{column!r} is not a categorical column (categorical: {cats})", ["column"])
    data = load_audience(conn, owner_id, audience_id)
    labels, counts = np.unique(data.columns[column], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:max_labels]
    return {
        "column": column,
        "labels": [{"label": str(labels[i]), "customers": int(counts[i])} for i in order],
        "distinct": int(labels.size),
    }
