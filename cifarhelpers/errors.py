"""The exceptions cifarhelpers raises on bad input.

Every message names the problem (the path, field or value at fault) and the fix. Each class also
derives from the built-in exception a caller would expect (``ValueError``, ``FileNotFoundError``,
``RuntimeError``), so ``except ValueError`` keeps working for code that does not know this package.
"""

from __future__ import annotations


class CifarHelpersError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CifarHelpersError, ValueError):
    """A configuration value (config field, CLI flag, notebook parameter) is invalid."""


class DataError(CifarHelpersError, ValueError):
    """The data set on disk is malformed: wrong layout, bad image, failed checksum."""


class DataNotFoundError(DataError, FileNotFoundError):
    """No CIFAR-10 copy was found where one was expected."""


class CheckpointError(CifarHelpersError, RuntimeError):
    """A checkpoint or weights file cannot be loaded safely or does not match the model."""


class DivergenceError(CifarHelpersError, RuntimeError):
    """The training loss became NaN or infinite."""


class RunWriteError(CifarHelpersError, OSError):
    """Writing a run artifact (checkpoint, metrics, figure) failed; earlier artifacts are intact."""
