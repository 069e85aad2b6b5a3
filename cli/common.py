"""What every ``campaign-opt`` command shares: one-line errors with exit code 2, finite numbers,
writable folders, scenarios and policies named on the command line, JSON on stdout.

Bad input exits with code 2 and one line naming the option and what it allows: typer's ranges
and :class:`Number` for values, then :func:`fail` for what only the command can check (files,
names, policies).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic_core import PydanticCustomError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from policies import Policy
    from simulators import Scenario

stderr = Console(stderr=True, soft_wrap=True)
"""Progress, notes and errors (stdout is left to results)."""

MAX_SEED = 2**32 - 1
"""The largest seed the simulator, NumPy and Stable-Baselines3 all accept."""

MAX_DOLLARS = 1e9
"""The most one amount of money given on the command line may be, as in the API (budgets, caps,
offer values): far inside the ledger's integer micro-dollars."""


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr on one line, shown as written (no markup); exit code 2."""
    stderr.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", highlight=False)
    return typer.Exit(code=2)


class Number:
    """A typer ``parser``: a finite number of at least ``low`` (above it when ``above``) and at
    most ``high``, or a usage error that says what is allowed.

    Args:
        low: the smallest value allowed.
        high: the largest value allowed.
        above: refuse ``low`` itself.
    """

    def __init__(self, low: float, high: float = math.inf, *, above: bool = False) -> None:
        self.low, self.high, self.above = low, high, above

    def __call__(self, value: str | float) -> float:
        """``value`` as a float.

        Raises:
            PydanticCustomError: not a number, not finite, or out of range (a ``ValueError``;
                typer validates options with pydantic and shows its message as is).
        """
        try:
            x = float(value)
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and self.low <= x <= self.high) or (self.above and x == self.low):
            allowed = f"{'>' if self.above else '>='} {self.low:g}"
            if self.high < math.inf:
                allowed += f" and <= {self.high:g}"
            message = f"{value!r} is not a finite number {allowed}"
            raise PydanticCustomError("number", "{message}", {"message": message})
        return x


def writable_folder(option: str, folder: Path) -> Path:
    """``folder``, created when missing, once a file could be written in it (else exit 2)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise fail(f"{option} {str(folder)!r}: cannot write files there ({err.strerror or err})") from None
    return folder


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (numpy scalars as floats)."""
    sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")


def load_scenario_option(name: str, option: str = "--scenario") -> Scenario:
    """Load a built-in scenario or a YAML file, or exit 2 naming ``option``."""
    from simulators import ScenarioError, load_scenario

    try:
        return load_scenario(name)
    except ScenarioError as err:
        raise fail(f"{option}: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise fail(f"{option} {name!r}: cannot read the file as UTF-8 YAML ({err})") from None


def named_policy(name: str, sim: Any, seed: int | None, option: str) -> Policy:
    """The policy ``name`` (a policy name or ``models:/NAME@ALIAS``) for ``sim``, or exit 2
    (:func:`serving.registry.resolve_policy`, the one resolver; no policies folder: ``saved:``
    is refused as an unknown name)."""
    from policies import UnknownPolicyError
    from serving.registry import resolve_policy

    try:
        return resolve_policy(name, sim, seed=seed)
    except UnknownPolicyError as err:
        raise fail(f"{option} {name!r}: {err}") from None


def saved_policy(folder: Path, sim: Any, sc: Scenario) -> Policy:
    """The policy saved in ``folder`` (``--policy-path``) for ``sim``, once it could decide for a
    small campaign of ``sc``; or exit 2."""
    from agent import Campaign, CampaignSpec
    from policies import UnknownPolicyError, load_policy
    from simulators import Simulator

    if not (folder / "policy.json").is_file():
        raise fail(f"--policy-path {str(folder)!r}: no saved policy there (expected policy.json)")
    try:
        pol = load_policy(folder, sim)
    except UnknownPolicyError as err:
        raise fail(f"--policy-path: {err}") from None
    n = 200
    trial = CampaignSpec.from_scenario(sc, max_iterations=1, customers_per_iteration=n)
    try:  # a policy saved for another scenario's arms or features fails on its first decision
        Campaign(trial, Simulator(sc, n_customers=n), pol, seed=0).dry_run()
    except (ValueError, IndexError) as err:
        raise fail(
            f"--policy-path {str(folder)!r}: the saved {pol.name} policy cannot decide for scenario "
            f"{sc.name!r} ({err})"
        ) from None
    return pol


def runs_bar(label: str, quiet: bool) -> Progress:
    """The progress bar of a command that runs many campaigns or trials (on stderr; hidden with
    ``--json`` or when stderr is not a terminal): ``label``, a bar, done/total, the ``last``
    field, elapsed time."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=quiet or not stderr.is_terminal,
    )
