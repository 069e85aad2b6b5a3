"""``python -m serving --host H --port P [--no-worker]``: the API server without the CLI.

Serves as ``campaign-opt serve`` does (both call :func:`serving.app.serve`); this is what
:class:`serving.process.ServerProcess` runs. A host or port it cannot listen on: one
``error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not in 1..65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and serve until interrupted; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve the campaign owners' API (docs at /docs) and run live campaigns.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback by default).")
    parser.add_argument("--port", type=_port, default=8000, help="Port.")
    parser.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the live runner in this process.",
    )
    args = parser.parse_args(argv)

    from serving.app import serve

    try:
        serve(args.host, args.port, worker=args.worker)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
