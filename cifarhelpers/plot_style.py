"""What every figure module shares: the train / test colours and number formats that never read
wrong (no ``-0.0``). Imported by :mod:`cifarhelpers.data.plots` and the figure modules beside it, so
none of them imports another's figures to get a colour.
"""

from __future__ import annotations

#: Colour of training curves and of the first bar of a pair; colour of test curves.
TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#d62728"
#: Colour of reference lines (LRMIN, chance, image side).
GREY = "#7f7f7f"


def signed(value: float, digits: int = 1) -> str:
    """``value`` with its sign and ``digits`` decimals, e.g. ``"+22.4"``, ``"-28.0"``; a value that
    rounds to zero is ``"0.0"`` (never ``"-0.0"`` or ``"+0.0"``)."""
    rounded = round(float(value), digits)
    return f"{0.0:.{digits}f}" if rounded == 0 else f"{rounded:+.{digits}f}"
