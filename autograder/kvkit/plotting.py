"""matplotlib for the benches' plots, without a display, or one line saying how to install it."""

from __future__ import annotations

from .errors import UsageError


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend; :class:`UsageError` when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError as err:
        raise UsageError("--plot needs matplotlib: pip install -e '.[bench]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
