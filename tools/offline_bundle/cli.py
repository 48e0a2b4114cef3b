"""The command line of ``tools/bundle.py`` (``make bundle``): flags -> :func:`offline_bundle.build.build_bundle`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __doc__ as OVERVIEW
from .build import DEFAULT_MAX_MIB, build_bundle
from .errors import BundleError
from .paths import DEFAULT_CACHE, DEFAULT_DATA, ROOT
from .targets import TARGETS, make_target


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and build the bundle. Returns the exit status: 0, or 1
    after printing the :class:`BundleError` that stopped it (the message names the fix)."""
    parser = argparse.ArgumentParser(
        prog="tools/bundle.py", description=OVERVIEW.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Presets: " + "; ".join(f"{n}: Python {p['python_version'] or 'this one'}, "
                                       f"{p['platform'] or 'this platform'}, has {', '.join(p['has'])}"
                                       for n, p in TARGETS.items()))
    parser.add_argument("--target", choices=sorted(TARGETS), default=None,
                        help="a preset (default: local, this machine's Python and platform)")
    parser.add_argument("--python-version", help="target Python X.Y, e.g. 3.12")
    parser.add_argument("--platform", help="target platform tag, e.g. manylinux_2_28_x86_64 (older tags follow)")
    parser.add_argument("--has", nargs="*", metavar="NAME", default=None,
                        help="what the target has (names, or name==version); replaces the preset's list")
    parser.add_argument("--force", nargs="*", metavar="NAME", default=None,
                        help="bundle these even though the target has them; replaces the preset's list")
    parser.add_argument("--out", type=Path, help="the bundle folder (default: dist/bundle-<target>)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the CIFAR-10 archive to include (default: %(default)s)")
    parser.add_argument("--no-data", action="store_true", help="leave the archive out (set CIFAR10_ROOT on the node)")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt",
                        help="pip constraints pinning versions, used when the file exists (default: %(default)s)")
    parser.add_argument("--no-constraints", action="store_true", help="ignore the constraints file")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="wheel cache; a subfolder per target tag (default: %(default)s)")
    parser.add_argument("--offline", action="store_true", help="use only wheels already in the cache")
    parser.add_argument("--max-mib", type=float, default=DEFAULT_MAX_MIB,
                        help="fail above this total size in MiB (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        target = make_target(args.target, args.python_version, args.platform, args.has, args.force)
        out = args.out or ROOT / "dist" / f"bundle-{target.name}"
        build_bundle(target, out, data=None if args.no_data else args.data.resolve(), cache=args.cache.resolve(),
                     constraints=None if args.no_constraints else args.constraints.resolve(),
                     max_mib=args.max_mib, offline=args.offline)
    except BundleError as err:
        print(f"tools/bundle.py: error: {err}", file=sys.stderr)
        return 1
    return 0
