"""``campaign-opt policies``: the policy catalogue (policies/registry.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import print_json

policies_app = typer.Typer(
    help="The policy catalogue: every policy name with its kind and what it does.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
out = Console()


@policies_app.command("list")
def policies_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every policy: name (as written in --policy), kind, adaptive, pretrainable, description."""
    from policies.registry import CATALOGUE

    if as_json:
        print_json([e.to_dict() for e in CATALOGUE.values()])
        return
    table = Table(title="Policies")
    for col in ("name", "kind", "adaptive", "pretrainable"):
        table.add_column(col, no_wrap=True)
    table.add_column("description")
    for e in CATALOGUE.values():
        table.add_row(
            e.spelling,
            e.kind,
            "yes" if e.adaptive else "no",
            "yes" if e.pretrainable else "no",
            e.description,
        )
    out.print(table)
