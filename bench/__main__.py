"""Run every benchmark module and print one table (also as markdown for the README).

Usage: ``python -m bench [--quick] [--only NAME] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Smaller, faster runs (smoke check).")
    parser.add_argument("--only", default=None, help="Run only modules whose name contains this.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON here.")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not mod.startswith("bench_") or (args.only and args.only not in mod):
            continue
        module = importlib.import_module(f"bench.{mod}")
        print(f"running {mod} ...", flush=True)
        rows.extend(module.run(quick=args.quick))
    print()
    print("| benchmark | value | unit | target |")
    print("|---|---:|---|---|")
    for r in rows:
        v = r["value"]
        shown = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"
        print(f"| {r['benchmark']} | {shown} | {r['unit']} | {r.get('target', '')} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
