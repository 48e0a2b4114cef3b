"""The one error a bundle build raises, and the tail of a tool's output that its messages quote."""

from __future__ import annotations


class BundleError(Exception):
    """A bundle cannot be built; the message says why and what to do."""


def output_tail(text: str, lines: int = 25) -> str:
    """The last ``lines`` lines of pip's output (stdout + stderr), without pip's noise about ignored
    ``--find-links`` entries: what a :class:`BundleError` quotes when pip fails."""
    keep = [line for line in text.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join(keep[-lines:])
