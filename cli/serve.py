"""The product's server on the command line: ``serve`` (the owners' API and the live runner),
``keys`` (owners' API keys) and ``demo`` (``make run``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, writable_folder
from cli.common import stderr as console
from cli.simulate import print_report

keys_app = typer.Typer(help="API keys of campaign owners.", no_args_is_help=True, rich_markup_mode=None)


@keys_app.command("create")
def keys_create(
    owner: Annotated[str, typer.Option(help="The owner's name (created when new).")],
) -> None:
    """Create an API key for an owner and print it once (only its hash is stored)."""
    from serving.service import Service, ServiceError
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    try:
        key = svc.create_key(owner)
    except ServiceError as err:
        raise fail(err.message) from None
    sys.stdout.write(key + "\n")
    console.print(f"key for owner {owner!r}: store it now, it is not shown again", style="dim")


@keys_app.command("list")
def keys_list() -> None:
    """List every key as JSON lines: id, owner, prefix, created_at, revoked_at (never the key)."""
    from serving.service import Service
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    for row in svc.list_keys():
        sys.stdout.write(json.dumps(row, default=str) + "\n")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).", min=1)],
) -> None:
    """Revoke a key: it stops working at once on every server sharing the database."""
    from serving.service import Service, ServiceError
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    try:
        svc.revoke_key(key_id)
    except ServiceError as err:
        raise fail(err.message) from None
    console.print(f"key {key_id} revoked", style="dim")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the live runner in this process.")
    ] = True,
) -> None:
    """Serve the campaign owners' API (docs at /docs) and run live campaigns.

    The database is ``$DATABASE_URL`` (default: an SQLite file under ``$DATA_DIR``, ``data/``).
    """
    from serving.app import serve as run_server

    try:
        run_server(host, port, worker=worker, echo=console.print)
    except ValueError as err:
        raise fail(str(err)) from None


def demo(
    data_dir: Annotated[Path, typer.Option(help="Data folder (database, policies, plots).")] = Path("data"),
    train_campaigns: Annotated[
        int, typer.Option(help="Warm-start campaigns when the default policy is not saved yet.", min=1)
    ] = 2,
) -> None:
    """The main job (`make run`): train if needed, serve, run the retail campaign over HTTP, report."""
    from cli.demo import run_demo

    writable_folder("--data-dir", data_dir)
    try:
        run_demo(data_dir, console, print_report, train_campaigns=train_campaigns)
    except RuntimeError as err:
        raise fail(str(err)) from None
