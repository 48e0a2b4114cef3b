"""The flag conventions every command shares, defined once: ``cifar-train``, ``cifar-sweep``,
``cifar-eval``, ``cifar-notebooks`` and ``python -m cifarhelpers.cli.colab``.

* A boolean is a pair of flags, ``--x`` / ``--no-x`` (:class:`BooleanFlag`, argparse's
  ``BooleanOptionalAction``): ``cifar-train --no-amp``, ``cifar-eval RUN_DIR --no-tta``.
* ``--version`` prints ``cifarhelpers.__version__`` (:func:`add_version`).
* A setting with a fixed set of values shows them in the usage line, e.g. ``--lr-rule {valley,steepest,min_loss}``.
* Defaults and help read as typed on a command line (:func:`format_default`, :func:`command_line_help`):
  ``none`` rather than Python's ``None``, ``on`` / ``off``, ``5/24 ≈ 0.208`` rather than ``0.20833333333333334``.

Deprecated: ``cifar-train`` and ``cifar-sweep`` once spelled booleans ``--amp true`` / ``--amp false``.
:func:`upgrade_old_booleans` still accepts that spelling (and ``--amp=false``), turns it into ``--amp`` /
``--no-amp`` and prints a note saying so (another word there, ``--amp maybe``, is refused, naming both
flags); the old spelling will be removed in a later release.
"""

from __future__ import annotations

import argparse
import re
import sys
from fractions import Fraction
from typing import Any

from cifarhelpers import __version__

#: Words the deprecated ``--flag VALUE`` spelling of a boolean accepted.
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """``true`` / ``false`` (also 1/0, yes/no, on/off; any case) as a bool, for values inside other
    settings (``cifar-sweep --grid amp=true,false``), not for flags (those are ``--x`` / ``--no-x``).

    Raises:
        argparse.ArgumentTypeError: any other text (the message says what is expected).
    """
    lowered = text.strip().lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class BooleanFlag(argparse.BooleanOptionalAction):
    """``--x`` sets True, ``--no-x`` sets False. Unlike ``BooleanOptionalAction`` on Python 3.10 it
    leaves the help text as given (:func:`add_boolean` writes the default as ``on`` / ``off``)."""

    def __init__(self, option_strings, dest, default=None, required=False, help=None):  # noqa: A002 - argparse's word
        super().__init__(option_strings, dest, default=default, required=required, help=help)
        self.help = help


def add_boolean(parser, flag: str, *, default: Any, help: str, shown: bool | None = None) -> None:  # noqa: A002
    """Add the pair ``--flag`` / ``--no-flag`` to ``parser`` (a parser or an argument group).

    Args:
        flag: the positive flag, e.g. ``"--amp"``.
        default: the value when neither is given (a sentinel is fine: see ``shown``).
        help: what ``--flag`` does; `` (default: on)`` or `` (default: off)`` is appended.
        shown: the default to show in the help when ``default`` is a sentinel.
    """
    shown = default if shown is None else shown
    parser.add_argument(flag, action=BooleanFlag, default=default,
                        help=f"{help} (default: {format_default(shown)})".replace("%", "%%"))


def add_version(parser: argparse.ArgumentParser) -> None:
    """Add ``--version``: prints ``<prog> <cifarhelpers.__version__>`` and exits with status 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the cifarhelpers version and exit")


def format_default(value: Any) -> str:
    """A default as a user would type or read it: ``none``, ``on`` / ``off``, a float with a short
    fraction as ``5/24 ≈ 0.208``, other floats in at most 6 significant digits, anything else as ``str``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        short = f"{value:.6g}"
        fraction = Fraction(value).limit_denominator(1000)
        if float(short) != value and fraction.denominator > 1 and float(fraction) == value:
            return f"{fraction} ≈ {value:.3g}"
        return short
    return str(value)


def command_line_help(text: str, flag: str | None = None) -> str:
    """Help written for Python (a config field's text) worded for a command line: ``None`` becomes
    ``none`` (what the flag takes), a Python list of choices (``one of ['a', 'b']``, already in the
    usage line) is dropped, and for a boolean ``flag`` a leading ``False:`` / ``True:`` becomes
    ``--no-x:`` / ``--x:``."""
    text = re.sub(r",? one of \[[^\]]*\]", "", text)
    text = re.sub(r"\bNone\b", "none", text)
    if flag is not None:
        text = re.sub(r"\bFalse:", f"--no-{flag[2:]}:", text)
        text = re.sub(r"\bTrue:", f"{flag}:", text)
    return text


def upgrade_old_booleans(parser: argparse.ArgumentParser, argv: list[str] | None) -> list[str]:
    """``argv`` with the deprecated ``--x true`` / ``--x false`` / ``--x=false`` spelling of the
    parser's boolean flags rewritten as ``--x`` / ``--no-x``, printing a note to stderr for each.

    Only for parsers without positional arguments (``cifar-train``, ``cifar-sweep``), where a word
    after a boolean flag can mean nothing else. ``argv`` None means ``sys.argv[1:]``.

    Raises:
        SystemExit: (status 2, through ``parser.error``) another word after a boolean flag, e.g.
            ``--amp maybe``: the message says to write ``--amp`` or ``--no-amp``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {option for action in parser._actions if isinstance(action, BooleanFlag)
             for option in action.option_strings if not option.startswith("--no-")}
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out += argv[i:]
            break
        name, sep, value = token.partition("=")
        used = 1
        if name in flags and not sep and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            value, used = argv[i + 1], 2
        if name not in flags or (used == 1 and not sep):
            out.append(token)
            i += 1
            continue
        if value.strip().lower() not in _TRUE_WORDS + _FALSE_WORDS:
            parser.error(f"argument {name}: takes no value, got {value!r}: write {name} or --no-{name[2:]}")
        new = name if parse_bool(value) else "--no-" + name[2:]
        print(f"{parser.prog}: note: '{' '.join(argv[i:i + used])}' is deprecated: write {new}", file=sys.stderr)
        out.append(new)
        i += used
    return out
