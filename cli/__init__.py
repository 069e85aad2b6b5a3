"""``campaign-opt``: the product's command line (typer), thin wrappers over the packages below it.

The application is :data:`cli.app.app` (entry point :func:`cli.app.main`, or ``python -m cli``);
each command group has its module: ``simulate``, ``train``, ``benchmark``, ``scenario``
(``scenarios``, ``scenario perturb``, ``calibration``), ``serve`` (``serve``, ``keys``, ``demo``),
``experiment`` and ``policies``. What they share (one-line errors with exit code 2, number parsing,
scenario and policy options) is in :mod:`cli.common`. Nothing imports this package; ``serving``
starts it as a subprocess.
"""
