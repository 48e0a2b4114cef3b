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


class MissingDependencyError(CifarHelpersError, ImportError):
    """An optional dependency (an extra such as ``notebooks``) is not installed; the message names
    the pip command that installs it."""


def require(module: str, extra: str, what: str):
    """Import and return ``module``, or raise :class:`MissingDependencyError` naming ``extra``.

    Args:
        module: the top-level module, e.g. ``"papermill"``.
        extra: the cifarhelpers extra that installs it, e.g. ``"notebooks"``.
        what: what needs it, for the message (e.g. ``"running the notebooks headless"``).

    Raises:
        MissingDependencyError: ``module`` cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{what} needs {module}, which is not installed ({err}): pip install 'cifarhelpers[{extra}]' "
            f"(or pip install {module}); it leaves your torch as it is"
        ) from err
