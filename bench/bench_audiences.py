"""Audiences: importing 1,000,000 synthetic customers from CSV (id, 8 feature columns, 2 consent
columns, 67 MB), then loading them back as arrays, on SQLite and PostgreSQL.

The import is what ``campaign-opt audience import`` and ``POST /audiences`` run
(:func:`serving.audiences.import_file`: read, infer, check every row, store in one transaction;
``COPY`` on PostgreSQL, one ``executemany`` on SQLite). Targets: 60 s on PostgreSQL, 120 s on
SQLite. Run alone: ``python -m bench --only audiences`` (``--quick``: 100,000 customers).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from bench.pg import drop_schema, pg_schema
from serving.audience_lists import add_opt_outs
from serving.audience_store import owner_id_by_name
from serving.audiences import import_file, load_audience, opted_out
from serving.db import make_engine, migrate

TARGET_SECONDS = {"PostgreSQL": 60.0, "SQLite": 120.0}


def synthetic_csv(path: Path, n: int, seed: int = 0) -> int:
    """Write ``n`` synthetic customers to ``path``; returns the file's size in bytes."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("cust-", np.arange(n).astype(str))
    table = pa.table(
        {
            "customer_id": ids,
            "recency": rng.integers(1, 13, n),
            "history": np.round(rng.gamma(2.0, 120.0, n), 2),
            "frequency": rng.poisson(3, n),
            "age": np.where(rng.random(n) < 0.05, np.nan, rng.integers(18, 90, n).astype(float)),
            "mens": rng.integers(0, 2, n),
            "zip_code": rng.choice(np.array(["Urban", "Surburban", "Rural"]), n),
            "channel": rng.choice(np.array(["Web", "Phone", "Multichannel"]), n),
            "tier": rng.choice(np.array(["bronze", "silver", "gold", ""]), n),
            "consent_email": rng.random(n) < 0.8,
            "consent_sms": rng.random(n) < 0.3,
        }
    )
    pcsv.write_csv(table, path)
    return path.stat().st_size


def _measure(url: str, backend: str, csv: Path, n: int) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        migrate(engine)
        owner = owner_id_by_name(engine, "bench")
        start = time.perf_counter()
        report = import_file(engine, owner, csv, "bench", max_rows=n)
        imported = time.perf_counter() - start
        assert report["inserted"] == n, report["inserted"]
        aid = report["audience"]["id"]
        start = time.perf_counter()
        with engine.connect() as conn:
            data = load_audience(conn, owner, aid)
        loaded = time.perf_counter() - start
        assert len(data.ids) == n
        add_opt_outs(engine, owner, aid, "email", [str(i) for i in data.ids[::100]])
        start = time.perf_counter()
        with engine.connect() as conn:
            out = opted_out(conn, aid, data.ids, ["email", "sms"])
        lookup = time.perf_counter() - start
        assert int(out["email"].sum()) == len(data.ids[::100])
        start = time.perf_counter()
        again = import_file(engine, owner, csv, "bench", max_rows=n)  # every row updated by id
        reimported = time.perf_counter() - start
        assert again["updated"] == n
    finally:
        engine.dispose()
    target = TARGET_SECONDS[backend]
    return [
        {
            "benchmark": f"audience import, {n:,} customers from CSV ({backend})",
            "value": imported,
            "unit": "s",
            "target": f"<= {target:g} s",
        },
        {
            "benchmark": f"audience re-import, {n:,} updated by id ({backend})",
            "value": reimported,
            "unit": "s",
            "target": "",
        },
        {
            "benchmark": f"load_audience, {n:,} customers as arrays ({backend})",
            "value": loaded,
            "unit": "s",
            "target": "",
        },
        {
            "benchmark": f"opted_out, {n:,} ids, {n // 100:,} opted out ({backend})",
            "value": lookup,
            "unit": "s",
            "target": "",
        },
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 100_000 if quick else 1_000_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "customers.csv"
        size = synthetic_csv(csv, n)
        print(f"  {n:,} customers, {size / 1e6:.0f} MB of CSV", flush=True)
        pg = pg_schema()
        if pg is not None:
            try:
                rows += _measure(pg[0], "PostgreSQL", csv, n)
            finally:
                drop_schema(pg[1])
        else:
            print("  PostgreSQL at 127.0.0.1:5432 not reachable: skipped", flush=True)
        rows += _measure(f"sqlite:///{root / 'audience.sqlite'}", "SQLite", csv, n)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
