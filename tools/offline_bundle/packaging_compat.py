"""packaging's names from the running Python, else from pip's vendored copy; tomllib likewise.

The project's ``.venv`` has ``packaging``; a bare Python (a node's, a fresh venv) still has pip's copy.
"""

from __future__ import annotations

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    from pip._vendor import tomli as tomllib

try:  # the project's .venv has packaging; a bare Python still has pip's vendored copy
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.tags import sys_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version
except ImportError:  # pragma: no cover - depends on the interpreter
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename
    from pip._vendor.packaging.version import Version

__all__ = ["Requirement", "SpecifierSet", "Version", "canonicalize_name", "default_environment",
           "parse_wheel_filename", "sys_tags", "tomllib"]
