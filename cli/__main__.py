"""``python -m cli``: the ``campaign-opt`` command line."""

from cli.app import main

main()
