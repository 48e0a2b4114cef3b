"""Building the bundle: resolve and fetch the wheels, add the project's wheel, the data, the notebooks,
the GPU report and run.sh, write MANIFEST.json, check the size, and move it into place when complete."""

from __future__ import annotations

import json
import os
import platform as platform_module
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .contents import (REPORT_SIBLINGS, build_project_wheel, copy_data, copy_gpu_report, copy_run_sh, git_state,
                       module_owner)
from .errors import BundleError
from .packaging_compat import Requirement, canonicalize_name, tomllib
from .paths import DEFAULT_CACHE, DEFAULT_DATA, ROOT
from .pip_fetch import PipFetcher
from .requirements import installed_closure, project_requirements
from .resolution import resolve
from .targets import Target
from .wheels import sha256_of

DEFAULT_MAX_MIB = 60.0
MIB = 1024 * 1024


def check_size(sizes: Mapping[str, int], max_mib: float, show: int = 8) -> float:
    """Total size in MiB of ``{relative path: bytes}``; above ``max_mib`` a BundleError lists the largest."""
    total = sum(sizes.values()) / MIB
    if total > max_mib:
        largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:show]
        lines = "\n".join(f"  {size / MIB:8.2f} MiB  {path}" for path, size in largest)
        raise BundleError(f"the bundle would be {total:.2f} MiB, above the limit of {max_mib:g} MiB "
                          f"(--max-mib). Largest files:\n{lines}\nAdd what the target already has to --has, "
                          f"or raise --max-mib if the target allows it.")
    return total


def build_bundle(target: Target, out: Path, *, data: Path | None = DEFAULT_DATA, cache: Path = DEFAULT_CACHE,
                 constraints: Path | None = None, max_mib: float = DEFAULT_MAX_MIB, offline: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """Build the bundle for ``target`` into ``out`` (replaced only when the new one is complete).

    Returns the manifest (also written to ``out/MANIFEST.json``).
    """
    started = time.time()
    env = target.environment()
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots, skipped = project_requirements(pyproject)
    force = {canonicalize_name(Requirement(n).name) for n in target.force}
    has_reqs = [Requirement(h) for h in target.has]
    closure, unknown = installed_closure(target.has, env)
    exclude = {n: via for n, via in closure.items() if n not in force}
    notes: list[str] = []
    log(f"target {target.name}: CPython {target.python_version}, {target.platform} "
        f"(+{len(target.platforms) - 1} older tags); markers: python_version={env['python_version']} "
        f"sys_platform={env['sys_platform']} platform_machine={env['platform_machine']}")
    log(f"the target has {len(has_reqs)} packages, {len(exclude)} with their dependencies "
        f"(computed from {sys.prefix}); not bundled: {', '.join(sorted(exclude))}")
    if unknown:
        notes.append(f"not installed in {sys.prefix}, so their dependencies are unknown here and assumed "
                     f"present on the target only if also reached otherwise: {', '.join(unknown)}")
        log("note: " + notes[-1])
    if force:
        log(f"bundled even though the target has them (--force): {', '.join(sorted(force))}")
    if skipped:
        log(f"interactive-only names in the notebooks extra, not bundled: {', '.join(skipped)}")
    for has in has_reqs:  # the project's pins vs the versions the target is said to have
        for root in roots:
            if canonicalize_name(root.name) == canonicalize_name(has.name) and has.specifier and root.specifier:
                stated = [s.version for s in has.specifier if s.operator == "=="]
                if stated and not root.specifier.contains(stated[0].rstrip(".*"), prereleases=True):
                    notes.append(f"the project pins {root}; the target has {has}: the bundle uses the target's "
                                 f"(wheels install with --no-deps)")
                    log("note: " + notes[-1])
    if constraints is not None and constraints.is_file():
        log(f"versions pinned by {constraints}")
    else:
        constraints = None
        log("no constraints file: the newest versions that fit the specifiers (pass --constraints)")
    if data is not None and not data.is_file():
        raise BundleError(f"the CIFAR-10 archive {data} is missing: pass --data PATH, or --no-data to leave it out")

    tag_cache = cache / target.tag
    final_name = out.name
    work = Path(tempfile.mkdtemp(prefix=f".{final_name}.partial-", dir=out.parent))
    try:
        wheels_dir = work / "wheels"
        wheels_dir.mkdir()
        fetcher = PipFetcher(target, tag_cache, constraints, offline=offline, log=log)
        resolution = resolve(roots, env, exclude, fetcher, log=log)
        notes += fetcher.notes
        for w in resolution.wheels.values():
            shutil.copy2(w.path, wheels_dir / w.path.name)
            w.path = wheels_dir / w.path.name
        project = build_project_wheel(wheels_dir, log=log)
        wheels = [*resolution.wheels.values(), project]

        data_entry = None if data is None else copy_data(data, work, log=log)
        shutil.copytree(ROOT / "notebooks", work / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if not copy_gpu_report(work):
            notes.append("benchmarks/gpu_report/ did not exist: `run.sh gpu-report` is unavailable in this bundle")
            log("note: " + notes[-1])
        copy_run_sh(work)

        sizes = {str(p.relative_to(work)): p.stat().st_size for p in work.rglob("*") if p.is_file()}
        manifest = {
            "bundle": final_name,
            "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "project": {"name": project.name, "version": project.version, "git": git_state()},
            "target": {"name": target.name, "python_version": target.python_version, "platform": target.platform,
                       "platforms": target.platforms, "abis": target.abis, "markers": env},
            "has": list(target.has),
            "force": sorted(force),
            "has_closure": {n: exclude[n] for n in sorted(exclude)},
            "has_closure_source": f"importlib.metadata of {sys.executable} (Python {platform_module.python_version()})",
            "has_unknown_dependencies": unknown,
            "requirements": [str(r) for r in roots],
            "skipped_interactive": skipped,
            "constraints": ({"file": str(constraints), "sha256": sha256_of(constraints)} if constraints else None),
            "wheels": [{"file": f"wheels/{w.path.name}", "name": w.name, "version": w.version,
                        "size": w.path.stat().st_size, "sha256": sha256_of(w.path), "source": w.source,
                        "required_by": sorted(resolution.required_by.get(w.name, {"<project>"}))}
                       for w in wheels],
            "target_provided": {n: resolution.provided[n] for n in sorted(resolution.provided)},
            "modules": module_owner(wheels),
            "data": data_entry,
            "notebooks": sorted(str(p.relative_to(work)) for p in (work / "notebooks").rglob("*") if p.is_file()),
            "gpu_report": (work / "gpu_report" / "__main__.py").is_file(),
            "gpu_report_siblings": sorted(n for n in REPORT_SIBLINGS if (work / n).is_file()),
            "notes": notes,
        }
        manifest_text = json.dumps(manifest, indent=1)
        sizes["MANIFEST.json"] = len(manifest_text.encode()) + 200
        total_mib = check_size(sizes, max_mib)
        manifest["total_bytes"] = sum(sizes.values())
        manifest["total_mib"] = round(total_mib, 2)
        manifest["max_mib"] = max_mib
        (work / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")

        old = None
        if out.exists():
            old = out.parent / f".{final_name}.old-{os.getpid()}"
            out.rename(old)
        work.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    wheel_bytes = sum(w["size"] for w in manifest["wheels"])
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
    log(f"\nbundle {out}: {len(manifest['wheels'])} wheels ({wheel_bytes / MIB:.2f} MiB), data "
        f"({(data_entry or {}).get('size', 0) / MIB:.2f} MiB), notebooks, run.sh")
    log("largest: " + ", ".join(f"{Path(p).name} {s / MIB:.2f} MiB" for p, s in largest))
    log(f"total size: {total_mib:.2f} MiB (limit {max_mib:g} MiB), built in {time.time() - started:.0f} s")
    log(f"run it: bash {os.path.relpath(out / 'run.sh')} check")
    return manifest
