"""A throwaway PostgreSQL schema for the serving and audience benchmarks (the local server,
127.0.0.1:5432, database ``test``)."""

from __future__ import annotations

import uuid

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_schema() -> tuple[str, str] | None:
    """A fresh schema: ``(URL with it as the search path, its name)``, or ``None`` when the server
    is not reachable (the PostgreSQL rows are then left out)."""
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return f"{PG}?options=-csearch_path%3D{schema}", schema
    except Exception:
        return None


def drop_schema(schema: str) -> None:
    """Drop a schema made by :func:`pg_schema`."""
    import psycopg

    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
