"""Commit the outputs of notebooks executed elsewhere (the GPU report's ``notebooks.tar.gz``) into ``notebooks/``.

The committed notebooks are the project's face, and their outputs should come from the best real run
at hand: on a GPU node, ``benchmarks/gpu_report`` executes notebooks 01-06 with the full profile
and packs them into ``notebooks.tar.gz``. This script moves those outputs into the committed
notebooks, and nothing else::

    .venv/bin/python tools/publish_notebooks.py results/gpu-nvidia-h200/notebooks.tar.gz \\
        --report results/gpu-nvidia-h200/gpu_report.json          # writes notebooks/01..06
    .venv/bin/python tools/publish_notebooks.py <folder or .tar.gz> --report <json> --dry-run

For each executed notebook it

* keeps the committed notebook's cells (sources, markdown, ids, tags) and takes each code cell's
  outputs and execution count from the executed copy, matched by cell id; a code cell whose source
  differs is an error (the run used other code: run it again), nothing is written;
* leaves out the cell papermill injected (its parameters stay in the notebook's ``papermill``
  metadata, and the first markdown cell names the profile);
* leaves out progress bars drawn as text on stderr (tqdm without ipywidgets: hundreds of frames
  and cursor-up escapes per bar) and tqdm's "IProgress not found" warning; every other output,
  stderr included, is kept as it came;
* shows the run's temporary folders as ``…``: the parent folders of its ``output_dir`` and ``data_root``
  (papermill's parameters, e.g. ``/tmp/gpu-report-work-x/notebooks``) in every text output and in the
  parameters kept in the metadata (``output: …/20261126-165256-notebooks``);
* rewrites the provenance line (the italic last paragraph) of the first markdown cell to say which
  device, profile, commit and date produced the outputs, and where the run's figures are.

Errors (``SystemExit`` with the problem and the fix; nothing is written unless every notebook passes):
an executed notebook without a committed counterpart, two executed notebooks of one name, a cell id
missing on either side, a code cell whose source differs, an executed cell with an error output, a
merged notebook that nbformat does not validate, a report without a device or commit, a first output
line naming another commit than the report's.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
from pathlib import Path

import nbformat

from cifarhelpers.notebook import parse_setup_line

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE_START = "*The outputs committed with this notebook come from"
# A text progress bar frame (tqdm's "  37%|███▋      | 36/97 [...]"), tqdm's cursor-up escape between
# nested bars, or a frame that is only whitespace (a bar cleared with leave=False).
_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\x1b\[A")
_IPROGRESS = "TqdmWarning: IProgress not found"


def is_progress_output(output: dict) -> bool:
    """Whether an output is a text progress bar frame or tqdm's IProgress warning (stderr streams only)."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    text = "".join(output.get("text", ""))
    return bool(_BAR.search(text)) or _IPROGRESS in text or not text.strip()


def read_executed(source: Path) -> dict[str, nbformat.NotebookNode]:
    """The executed notebooks by file name, from a folder or a ``.tar.gz`` (any depth inside it)."""
    found: dict[str, nbformat.NotebookNode] = {}

    def add(name: str, text: str) -> None:
        if name in found:
            raise SystemExit(f"publish_notebooks: two notebooks named {name} in {source}: pass the folder of one run")
        found[name] = nbformat.reads(text, as_version=4)

    if source.is_dir():
        for path in sorted(source.rglob("*.ipynb")):
            add(path.name, path.read_text(encoding="utf-8"))
    elif source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".ipynb"):
                    add(Path(member.name).name, tar.extractfile(member).read().decode("utf-8"))
    else:
        raise SystemExit(f"publish_notebooks: {source} is neither a folder nor a .tar.gz of executed notebooks")
    if not found:
        raise SystemExit(f"publish_notebooks: no .ipynb in {source}")
    return found


def run_line(nb: nbformat.NotebookNode, name: str) -> str:
    """An executed notebook's first output line: ``device: .. | profile: .. | data: .. | output: .. | code: ..``
    (start_notebook's)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            if parse_setup_line(text):
                return next(line for line in text.splitlines() if parse_setup_line(line))
    raise SystemExit(f"publish_notebooks: {name}: no output line 'device: .. | profile: ..' (start_notebook's): "
                     "was it executed?")


def run_profile(nb: nbformat.NotebookNode, name: str) -> str:
    """The profile an executed notebook ran with, from its first output line (``device: .. | profile: ..``)."""
    return parse_setup_line(run_line(nb, name))[1]


def line_commit(line: str) -> str | None:
    """The commit a first output line names (``code: cifarhelpers 0.1.0, git 75fa3463628b``), or None."""
    found = re.search(r"\| code: [^|]*\bgit ([0-9a-f]{7,40})", line)
    return found and found.group(1)


def temporary_folders(executed: nbformat.NotebookNode) -> list[str]:
    """The run's temporary folders, which the committed outputs show as ``…``: the parent folders of its
    absolute ``output_dir`` and ``data_root`` (papermill's parameters) and of the copy of the repository it
    ran (papermill's ``input_path`` is ``<copy>/notebooks/<name>``)."""
    meta = executed.metadata.get("papermill", {})
    params = meta.get("parameters", {})
    parents = [Path(p).parent for p in (params.get("output_dir"), params.get("data_root")) if isinstance(p, str)]
    if isinstance(meta.get("input_path"), str):
        parents.append(Path(meta["input_path"]).parent.parent)
    return sorted({str(p) for p in parents if p.is_absolute() and p != Path("/")}, key=len, reverse=True)


def shorten_paths(nb: nbformat.NotebookNode, folders: list[str]) -> None:
    """Write each of ``folders`` as ``…`` (in place) in the text outputs and the papermill metadata of ``nb``
    (its paths and parameters)."""
    def short(text):
        if isinstance(text, list):
            return [short(t) for t in text]
        for folder in folders:
            text = text.replace(folder.rstrip("/") + "/", "…/")
        return text

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = short(output["text"])
            if "text/plain" in output.get("data", {}):
                output["data"]["text/plain"] = short(output["data"]["text/plain"])
    meta = nb.metadata.get("papermill", {})
    for values in (meta, meta.get("parameters", {})):
        for key, value in values.items():
            if isinstance(value, str):
                values[key] = short(value)


def provenance(report: dict, profile: str, where: str, line: str | None = None) -> str:
    """The first markdown cell's provenance line for outputs of the GPU report ``report`` (its JSON),
    whose files are in the folder ``where`` (as the reader should see it, e.g. ``results/gpu-nvidia-h200/``);
    ``line`` is the notebooks' first output line (does it name the commit?)."""
    env = report.get("environment") or {}
    device, commit = env.get("device"), env.get("git_commit")
    if not device or not commit:
        raise SystemExit("publish_notebooks: the report names no device or no git commit (environment.device, "
                         "environment.git_commit): pass the report of the run that executed these notebooks")
    date = str(report.get("started_at", ""))[:10]
    dirty = commit.endswith("-dirty") or env.get("git_dirty") is True
    code = f"code at commit `{commit.removesuffix('-dirty')[:7]}`" + (" with uncommitted changes" if dirty else "")
    names = ("device, profile, data copy and commit" if line is None or line_commit(line)
             else "device, profile and data copy (that run's code did not print its commit there yet)")
    return (f"{PROVENANCE_START} a real run on an **{device}** with the **{profile} profile** "
            f"(`benchmarks/gpu_report`, {code}, {date}; that run's files are in `{where}`). The first output "
            f"line names the {names}; text progress bars were left out, and the run's temporary folders are "
            "shown as `…`.*")


def merge(committed: nbformat.NotebookNode, executed: nbformat.NotebookNode, name: str,
          line: str) -> tuple[nbformat.NotebookNode, int]:
    """The committed notebook with the executed copy's outputs; returns it and the outputs left out."""
    by_id = {c.get("id"): c for c in executed.cells
             if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])}
    out = nbformat.from_dict(json.loads(json.dumps(committed)))
    dropped = 0
    for index, cell in enumerate(out.cells):
        if cell.cell_type != "code":
            continue
        ran = by_id.get(cell.get("id"))
        if ran is None:
            raise SystemExit(f"publish_notebooks: {name}: cell {index} (id {cell.get('id')!r}) is not in the "
                             "executed copy: it was run from other code; run it again from this commit")
        if ran.source != cell.source:
            raise SystemExit(f"publish_notebooks: {name}: the source of cell {index} (id {cell.id!r}) differs from "
                             "the executed copy's: it was run from other code; run it again from this commit")
        if any(o.get("output_type") == "error" for o in ran.outputs):
            raise SystemExit(f"publish_notebooks: {name}: cell {index} ended with an error in the executed copy")
        kept = [o for o in ran.outputs if not is_progress_output(o)]
        dropped += len(ran.outputs) - len(kept)
        cell.outputs, cell.execution_count = kept, ran.execution_count
        cell.metadata = {**cell.metadata, **{k: v for k, v in ran.metadata.items() if k in ("execution", "papermill")}}
    extra = set(by_id) - {c.get("id") for c in out.cells if c.cell_type == "code"}
    if extra:
        raise SystemExit(f"publish_notebooks: {name}: the executed copy has code cells {sorted(extra)} that the "
                         "committed notebook lacks: it was run from other code; run it again from this commit")
    first = out.cells[0]
    paragraphs = first.source.split("\n\n")
    if first.cell_type != "markdown" or not paragraphs[-1].startswith(PROVENANCE_START):
        raise SystemExit(f"publish_notebooks: {name}: the first cell has no provenance paragraph starting with "
                         f"{PROVENANCE_START!r}; add one")
    first.source = "\n\n".join(paragraphs[:-1] + [line])
    out.metadata.pop("widgets", None)
    if "papermill" in executed.metadata:
        out.metadata["papermill"] = json.loads(json.dumps(executed.metadata["papermill"]))
    shorten_paths(out, temporary_folders(executed))
    return out, dropped


def publish(source: Path, report_path: Path, notebooks_dir: Path, *, dry_run: bool = False) -> list[Path]:
    """Merge every executed notebook of ``source`` into ``notebooks_dir``; returns the files written."""
    report = json.loads(report_path.read_text())
    folder = report_path.resolve().parent
    where = f"{folder.relative_to(ROOT)}/" if folder.is_relative_to(ROOT) else f"{folder}/"
    executed = read_executed(source)
    merged = {}
    for name, nb in sorted(executed.items()):
        target = notebooks_dir / name
        if not target.exists():
            raise SystemExit(f"publish_notebooks: {name} has no committed counterpart in {notebooks_dir}")
        line = run_line(nb, name)
        ran, reported = line_commit(line), str((report.get("environment") or {}).get("git_commit", ""))
        if ran and not reported.startswith(ran):
            raise SystemExit(f"publish_notebooks: {name} ran code at commit {ran} (its first output line), the report "
                             f"names {reported[:12]}: pass the report of the run that executed these notebooks")
        profile = parse_setup_line(line)[1]
        merged[target], dropped = merge(nbformat.read(target, as_version=4), nb, name,
                                        provenance(report, profile, where, line))
        print(f"{name}: outputs from the executed copy ({profile} profile), {dropped} progress-bar outputs left out")
    texts = {}
    for target, nb in merged.items():  # every notebook checked before any is written
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as err:
            raise SystemExit(f"publish_notebooks: {target.name}: the merged notebook is not valid: {err.message}")
        buf = io.StringIO()
        nbformat.write(nb, buf)
        texts[target] = buf.getvalue()
    if dry_run:
        return []
    for target, text in texts.items():
        target.write_text(text)
    return list(texts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="folder or .tar.gz with the executed notebooks")
    p.add_argument("--report", type=Path, required=True, help="gpu_report.json of the run that executed them")
    p.add_argument("--notebooks-dir", type=Path, default=ROOT / "notebooks")
    p.add_argument("--dry-run", action="store_true", help="check and say what would change; write nothing")
    args = p.parse_args(argv)
    written = publish(args.source, args.report, args.notebooks_dir, dry_run=args.dry_run)
    for path in written:
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
