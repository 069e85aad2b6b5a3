"""What every ``campaign-opt`` command shares: one-line errors with exit code 2, finite numbers,
writable folders.

Bad input exits with code 2 and one line naming the option and what it allows: typer's ranges
and :class:`Number` for values, then :func:`fail` for what only the command can check (files,
names, policies).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import typer
from pydantic_core import PydanticCustomError
from rich.console import Console
from rich.markup import escape

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
