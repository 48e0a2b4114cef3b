#!/usr/bin/env bash
# Offline runner of a cifarhelpers bundle (tools/offline_bundle/template/run.sh; MANIFEST.json lists the contents).
#
#   bash run.sh gpu-report [args...]   python gpu_report --notebooks-dir <bundle>/notebooks args...
#   bash run.sh train [args...]        python -m cifarhelpers.cli.train args...
#   bash run.sh notebooks [args...]    python -m cifarhelpers.cli.notebooks run --notebooks-dir <bundle>/notebooks args...
#   bash run.sh python [args...]       python args...   (e.g. run.sh python -c 'import cifarhelpers')
#   bash run.sh check                  install, import check and kernel check only (no data, no job)
#
# Works from any folder; relative paths in the arguments are taken from the folder it is run in.
# It installs every wheel in wheels/ offline (no index, no dependency resolution) into a new temporary
# folder and puts that on PYTHONPATH, writes a Jupyter kernel spec `python3` for this interpreter
# (papermill asks for that name; the kernel inherits PYTHONPATH), imports every bundled top-level module
# (a missing or broken one stops it here, named) and, for notebook jobs, starts that kernel once; then
# it unpacks the CIFAR-10 archive there (unless $CIFAR10_ROOT is an existing copy) and runs the job.
# The temporary folder is removed at exit.
#
# Environment:
#   PYTHON            the interpreter (default python3): the node's Python with torch
#   CIFAR10_ROOT      an unpacked CIFAR-10 copy to use instead of the bundled archive
#   TMPDIR            where the temporary folder goes (default /tmp)
#   BUNDLE_INSTALLER  pip | zipfile | auto (default): pip when `$PYTHON -m pip` works, else Python's zipfile
#                     (unpacks each wheel's files; wheels need nothing else to be importable)
#   BUNDLE_KEEP_TMP   1: keep the temporary folder (its path is printed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
usage() { sed -n '3,8p' "$here/run.sh" | sed 's/^# \{0,1\}//' >&2; }

job="${1:-}"
case "$job" in
  gpu-report|train|notebooks|python|check) shift ;;
  -h|--help|help) usage; exit 0 ;;
  *) say "unknown job '${job}'"; usage; exit 2 ;;
esac
command -v "$PYTHON" >/dev/null 2>&1 || { say "no interpreter '$PYTHON' (set PYTHON=/path/to/python3)"; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cifarhelpers-bundle.XXXXXX")"
unpack_pid=""
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap below: it is reached, though shellcheck 0.9 says not
cleanup() {
  if [ -n "$unpack_pid" ]; then kill "$unpack_pid" 2>/dev/null || true; wait "$unpack_pid" 2>/dev/null || true; fi
  if [ "${BUNDLE_KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
site="$tmp/site"
mkdir -p "$site"
say "bundle $here; python $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

# The data archive unpacks in the background while the wheels install and the checks run.
archives=("$here"/data/*.tar.gz)
archive="${archives[0]}"
if [ -n "${CIFAR10_ROOT:-}" ] && [ -d "$CIFAR10_ROOT" ]; then
  archive=""
  say "data: CIFAR10_ROOT=$CIFAR10_ROOT (given)"
elif [ "$job" != check ] && [ -f "$archive" ]; then
  if [ -n "${CIFAR10_ROOT:-}" ]; then say "CIFAR10_ROOT=$CIFAR10_ROOT does not exist: using the bundled copy"; fi
  say "data: unpacking $(basename "$archive") into $tmp/data (in the background)"
  mkdir -p "$tmp/data"
  tar -xzf "$archive" -C "$tmp/data" &
  unpack_pid=$!
fi

# -- install -------------------------------------------------------------------------------
wheels=("$here"/wheels/*.whl)
installer="${BUNDLE_INSTALLER:-auto}"
if [ "$installer" = auto ]; then
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then installer=pip; else installer=zipfile; fi
fi
t0=$SECONDS
case "$installer" in
  pip)
    say "installing ${#wheels[@]} wheels with pip into $site (--no-index --no-deps)"
    PIP_CONFIG_FILE=/dev/null PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --no-index --no-deps --no-compile --quiet \
      --disable-pip-version-check --target "$site" "${wheels[@]}"
    ;;
  zipfile)
    say "installing ${#wheels[@]} wheels by unpacking them with zipfile into $site (no pip)"
    "$PYTHON" - "$site" "${wheels[@]}" <<'PY'
import pathlib, shutil, sys, zipfile
site = pathlib.Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if info.is_dir() or ".." in parts or info.filename.startswith("/"):
                continue
            if parts[0].endswith(".data"):          # <name>.data/purelib|platlib/... go to the top
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue                         # scripts, headers, data files: not needed to import
                parts = parts[2:]
            dest = site.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                dest.chmod(mode | 0o600)
PY
    ;;
  *) say "BUNDLE_INSTALLER=$installer: expected pip, zipfile or auto"; exit 2 ;;
esac
say "installed in $((SECONDS - t0)) s"

export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export NO_ALBUMENTATIONS_UPDATE=1 MPLBACKEND=Agg JUPYTER_PLATFORM_DIRS=1
export JUPYTER_RUNTIME_DIR="$tmp/jupyter-runtime" IPYTHONDIR="$tmp/ipython"
# papermill starts the kernel named python3: this spec comes first on JUPYTER_PATH (before any
# python3 spec of the machine or the user) and runs this very interpreter, which inherits PYTHONPATH.
mkdir -p "$tmp/jupyter/kernels/python3"
"$PYTHON" - "$tmp/jupyter/kernels/python3/kernel.json" <<'PY'
import json, sys
json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
           "display_name": "Python 3 (bundle)", "language": "python", "metadata": {"debugger": False}},
          open(sys.argv[1], "w"), indent=1)
PY
export JUPYTER_PATH="$tmp/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
[ -w "${HOME:-/nonexistent}" ] || export MPLCONFIGDIR="$tmp/matplotlib"

# -- checks: Python version, what the target was said to have, every bundled module, the kernel --
t0=$SECONDS
kernel_check=0
case "$job" in gpu-report|notebooks|check) kernel_check=1 ;; esac
"$PYTHON" - "$here/MANIFEST.json" "$site" "$kernel_check" <<'PY'
import importlib, importlib.metadata as md, json, os, sys, traceback
manifest, site, kernel_check = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3] == "1"
want = manifest["target"]["python_version"]
have = "%d.%d" % sys.version_info[:2]
if have != want:
    sys.exit(f"run.sh: this bundle is for Python {want} (its compiled wheels are cp{want.replace('.', '')}); "
             f"{sys.executable} is Python {have}. Set PYTHON, or build a bundle for {have}.")
try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
except ImportError:
    Requirement = SpecifierSet = None
bundled = {w["name"] for w in manifest["wheels"]}
for has in manifest["has"]:
    name = Requirement(has).name if Requirement else has.split("=")[0].split("<")[0].split(">")[0]
    try:
        print(f"  target has {name} {md.version(name)}", file=sys.stderr)
    except md.PackageNotFoundError:
        print(f"  WARNING: the bundle assumed this Python has {name}, but it is not installed", file=sys.stderr)
for name, needs in manifest["target_provided"].items():
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        print(f"  WARNING: {name} is needed by {needs[0]['required_by']} and assumed present (with "
              f"{needs[0]['via']}), but it is not installed", file=sys.stderr)
        continue
    if SpecifierSet is None:
        continue
    for need in needs:
        if need["specifier"] and not SpecifierSet(need["specifier"]).contains(version, prereleases=True):
            print(f"  WARNING: {need['required_by']} needs {name}{need['specifier']}; this Python has {version} "
                  f"(rebuild the bundle with --force {name} to bring a copy)", file=sys.stderr)
failed = []
for module, wheel in manifest["modules"]:
    try:
        importlib.import_module(module)
    except BaseException as err:  # noqa: BLE001 - SystemExit from a module counts too
        failed.append((module, wheel, f"{type(err).__name__}: {err}"))
for module, wheel, why in failed:
    print(f"  IMPORT FAILED: {module} (from {wheel}): {why}", file=sys.stderr)
if failed:
    sys.exit(f"run.sh: {len(failed)} of {len(manifest['modules'])} bundled modules do not import, first: "
             f"{failed[0][0]} ({failed[0][2]}); the job did not start")
print(f"  all {len(manifest['modules'])} bundled top-level modules import", file=sys.stderr)
try:
    import torch
    print(f"  torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""), file=sys.stderr)
except Exception as err:  # noqa: BLE001
    print(f"  WARNING: torch does not import: {err}", file=sys.stderr)
if kernel_check:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel
    spec = KernelSpecManager().get_kernel_spec("python3")
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    # Only the kernel's stdout stream counts, and in it only the lines with our marker: importing
    # albumentations & co. in a kernel may print anything (on the node tqdm warned on stderr that
    # IProgress was not found), which must neither pass for nor break the answer. stderr is kept
    # apart, for the message when the check fails.
    marker = "CIFARHELPERS_KERNEL_CHECK"
    out, err = [], []

    def collect(msg):
        if msg["msg_type"] == "stream":
            (out if msg["content"]["name"] == "stdout" else err).append(msg["content"]["text"])

    try:
        reply = kc.execute_interactive(
            "import sys, cifarhelpers, albumentations\n"
            f"print('{marker} executable=' + sys.executable)\n"
            f"print('{marker} cifarhelpers=' + cifarhelpers.__file__)\n",
            timeout=120, output_hook=collect)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    stdout, seen = "".join(out), {}  # seen: {"executable": ..., "cifarhelpers": <its __file__>}
    for line in stdout.splitlines():
        _, hit, rest = line.partition(marker + " ")  # after noise printed without a newline, too
        if hit:
            key, _, value = rest.partition("=")
            seen[key] = value
    found = seen.get("cifarhelpers", "")
    if reply["content"]["status"] != "ok" or not found.startswith(os.path.join(site, "")):
        content = reply["content"]
        if content["status"] != "ok":
            why = f"{content['status']}: {content.get('ename', '')}: {content.get('evalue', '')}"
        else:
            why = f"cifarhelpers from {found}" if found else f"no {marker} line in its stdout: {stdout[-500:]!r}"
        stderr = "".join(err).strip()
        sys.exit(f"run.sh: the Jupyter kernel python3 ({spec.argv[0]}) did not see the bundle in {site} ({why}); "
                 f"its stderr: {stderr[-2000:] or '(none)'}")
    print(f"  kernel python3 ({seen.get('executable', '?')}) imports cifarhelpers from the bundle", file=sys.stderr)
PY
say "checks passed in $((SECONDS - t0)) s"

if [ "$job" = check ]; then say "bundle OK (install, imports and kernel checked; data not unpacked)"; exit 0; fi

# -- data ----------------------------------------------------------------------------------
if [ -n "$unpack_pid" ]; then
  t0=$SECONDS
  if ! wait "$unpack_pid"; then unpack_pid=""; say "data: unpacking $archive failed"; exit 1; fi
  unpack_pid=""
  tops=("$tmp"/data/*)
  if [ "${#tops[@]}" -ne 1 ] || [ ! -d "${tops[0]}" ]; then
    say "data: $(basename "$archive") should unpack into one folder; got: ${tops[*]}"; exit 1
  fi
  export CIFAR10_ROOT="${tops[0]}"
  say "data: CIFAR10_ROOT=$CIFAR10_ROOT (unpacked; waited $((SECONDS - t0)) s for it)"
elif [ -z "${CIFAR10_ROOT:-}" ] || [ ! -d "${CIFAR10_ROOT:-}" ]; then
  say "data: none bundled and CIFAR10_ROOT unset: jobs that need CIFAR-10 will fail"
fi

# -- the job -------------------------------------------------------------------------------
# The commit the bundle was built from (the bundle is no git checkout): every job's code_version (the
# notebooks' first output line) names it through $CIFARHELPERS_GIT_COMMIT; the bundle's own code is that
# commit's, so a value inherited from the caller's environment is replaced (gpu-report's --commit wins).
c="$("$PYTHON" -c 'import json, sys; g = json.load(open(sys.argv[1]))["project"]["git"]; print((g["commit"] or "") + ("-dirty" if g["commit"] and g["dirty"] else ""))' "$here/MANIFEST.json")"
if [ -n "$c" ]; then export CIFARHELPERS_GIT_COMMIT="$c"; else unset CIFARHELPERS_GIT_COMMIT; fi
case "$job" in
  gpu-report)
    [ -f "$here/gpu_report/__main__.py" ] || { say "this bundle has no gpu_report/ (benchmarks/gpu_report/ did not exist when it was built)"; exit 1; }
    commit=()  # a later --commit wins
    if [ -n "$c" ]; then commit=(--commit "$c"); fi
    cmd=("$PYTHON" "$here/gpu_report" --notebooks-dir "$here/notebooks" ${commit[@]+"${commit[@]}"} "$@") ;;
  train) cmd=("$PYTHON" -m cifarhelpers.cli.train "$@") ;;
  notebooks) cmd=("$PYTHON" -m cifarhelpers.cli.notebooks run --notebooks-dir "$here/notebooks" "$@") ;;
  python) cmd=("$PYTHON" "$@") ;;
esac
say "set-up took $SECONDS s; running: ${cmd[*]}"
t0=$SECONDS
set +e
"${cmd[@]}"
rc=$?
set -e
say "$job exited with $rc after $((SECONDS - t0)) s"
exit "$rc"
