"""The GPU report's JSON and its summary: the layout of ``gpu_report.json`` with every key present from the start
(:func:`new_report`, :func:`part_template`), the summary table (:func:`summary_rows`, :func:`format_table`) and the
final writes whatever happened (:func:`finish`: the notebooks' archive, the kernel table's note, the JSON).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import peer_airbench  # the sibling module beside this package (benchmarks/, or the bundle's root)

from cifarhelpers.files import atomic_write, write_json

from .budget import Budget, skip_record
from .figures import accuracy_summary
from .parts.notebooks import pack_notebooks
from .settings import (
    CONV_MATMUL,
    LOG_FILE,
    NOT_CONV_MATMUL,
    NOTEBOOKS_TAR,
    OUTPUT_FILES,
    PARTS,
    REPORT_JSON,
    SCHEMA,
    TOP_KERNELS_TXT,
    UNITS,
    Settings,
)


def part_template(name: str) -> dict:
    """Every key of a part's results."""
    common = {"status": "pending", "started_at_elapsed_seconds": None, "seconds": None, "items_run": 0,
              "items_skipped": 0, "notes": [], "error": None}
    specific: dict[str, dict] = {
        "main_job": {"runs": [], "compile_run": None, "summary": accuracy_summary([]),
                     "compile": {"steady_epoch_speedup": None, "wall_ratio_compiled_vs_eager": None,
                                 "warmup_seconds": None}},
        "peer": peer_airbench.part_fields(),
        "lr_sweep": {"range_test": None, "range_test_seconds": None, "suggested_lr": None, "suggestions": None,
                     "grid": [], "order": [], "runs": [], "best": None},
        "variants": {"variants": [], "top_k": None, "finalists": [], "runs": [], "summary": {}, "best": None,
                     "reference": None, "decisions": {}, "adopted": []},
        "albumentations_path": {"num_workers": None, "os_cpu_count": None, "usable_cpus": None, "probe": None,
                                "run": None, "ratios": {"wall_ratio_vs_device_seed0": None,
                                                        "seconds_per_epoch_ratio_vs_device_seed0": None,
                                                        "steady_seconds_per_epoch_ratio_vs_device_seed0": None}},
        "notebooks": {"parameters": None, "notebooks_dir": None, "wall_seconds": None, "per_notebook_seconds": {},
                      "test_accuracy_fraction": None, "test_accuracy_percent": None, "train_run": None,
                      "lr_suggestion": None, "tar": {"file": NOTEBOOKS_TAR, "size_bytes": None, "size_mib": None,
                                                     "files": 0, "excluded": [], "dropped_to_fit": []}},
        "zoo": {"models": {"resnet18": None, "dilated_net": None}, "budgets_seconds": {}},
        "profile": {"source": None, "device_type": None, "steps": None, "warmup_steps": None, "wall_seconds": None,
                    "kernel_seconds": None, "conv_matmul_seconds": None, "other_kernel_seconds": None,
                    "idle_seconds": None, "conv_matmul_percent": None, "other_kernel_percent": None,
                    "idle_percent": None, "kernel_names": None, "top_kernels": [], "table_file": TOP_KERNELS_TXT,
                    "patterns": {"conv_matmul": CONV_MATMUL, "not_conv_matmul": NOT_CONV_MATMUL}},
    }
    return {**common, **specific[name]}


def new_report(settings: Settings, parts_requested: list[str], budget: Budget, argv: list[str]) -> dict:
    """The JSON layout, with every key present from the start (a run cut short keeps the same keys)."""
    return {
        "schema": SCHEMA,
        "status": "running",
        "mode": settings.mode,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished_at": None,
        "command": list(argv),
        "environment": {},
        "data": {},
        "budget": {**budget.to_dict(), "watchdog_fired": False, "calibration": None},
        "settings": {**settings.to_dict(), "parts_requested": list(parts_requested)},
        "parts": {name: part_template(name) for name in PARTS},
        "skipped": [],
        "errors": [],
        "summary": [],
        "files": {"report": REPORT_JSON, "notebooks_tar": NOTEBOOKS_TAR, "profile_top_kernels": TOP_KERNELS_TXT,
                  "log": LOG_FILE, "output_dir": None, "work_dir": None},
        "units": UNITS,
    }


def summary_rows(report: dict) -> list[dict]:
    """One row per run or part for the final table: part, item, status, accuracy, seconds, note."""
    rows = []

    def run_row(part, r):
        if not r:
            return
        rows.append({"part": part, "item": r.get("label"), "status": r.get("status"),
                     "test_accuracy_percent": r.get("test_accuracy_percent"),
                     "test_accuracy_flip_tta_percent": r.get("test_accuracy_flip_tta_percent"),
                     "wall_seconds": r.get("wall_seconds"),
                     "seconds_per_epoch": r.get("seconds_per_epoch"),
                     "note": f"{r.get('epochs_run')}/{r.get('epochs_target')} epochs"
                             + (f", reused from {r['reused_from']}" if r.get("reused_from") else "")})

    parts = report["parts"]
    for r in parts["main_job"]["runs"]:
        run_row("main_job", r)
    run_row("main_job", parts["main_job"]["compile_run"])
    rows += peer_airbench.summary_rows(parts["peer"])
    rt = parts["lr_sweep"]["range_test"]
    if rt:
        rows.append({"part": "lr_sweep", "item": "range test", "status": "completed" if rt.get("max_lr") else "failed",
                     "test_accuracy_percent": None, "wall_seconds": parts["lr_sweep"]["range_test_seconds"],
                     "seconds_per_epoch": None,
                     "note": f"suggested LRMAX {rt['max_lr']:.3g}" if rt.get("max_lr") else str(rt.get("error"))[:80]})
    for r in parts["lr_sweep"]["runs"]:
        run_row("lr_sweep", r)
    for r in parts["variants"]["runs"]:
        run_row("variants", r)
    run_row("albumentations_path", parts["albumentations_path"]["run"])
    nb = parts["notebooks"]
    if nb["status"] not in ("pending", "not_requested", "not_reached", "skipped"):
        ran = sorted(nb["per_notebook_seconds"]) or ["01-06"]
        rows.append({"part": "notebooks", "item": f"{ran[0][:2]}-{ran[-1][:2]}", "status": nb["status"],
                     "test_accuracy_percent": nb["test_accuracy_percent"], "wall_seconds": nb["wall_seconds"],
                     "seconds_per_epoch": None, "note": f"{NOTEBOOKS_TAR} {nb['tar']['size_mib']} MiB"})
    for r in parts["zoo"]["models"].values():
        run_row("zoo", r)
    pr = parts["profile"]
    if pr["status"] not in ("pending", "not_requested", "not_reached", "skipped"):
        rows.append({"part": "profile", "item": "1 epoch", "status": pr["status"], "test_accuracy_percent": None,
                     "wall_seconds": pr["wall_seconds"], "seconds_per_epoch": None,
                     "note": (f"conv/matmul {pr['conv_matmul_percent']:.1f}%, other {pr['other_kernel_percent']:.1f}%, "
                              f"idle {pr['idle_percent']:.1f}%") if pr["conv_matmul_percent"] is not None else ""})
    for s in report["skipped"]:
        rows.append({"part": s["part"], "item": s["item"], "status": "skipped", "test_accuracy_percent": None,
                     "wall_seconds": None, "seconds_per_epoch": None, "note": s["reason"]})
    return rows


def format_table(rows: list[dict]) -> str:
    """:func:`summary_rows` as a fixed-width text table (accuracy in percent, seconds), printed at the end."""

    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    head = (f"{'part':<20} {'item':<22} {'status':<12} {'test acc %':>10} {'flip TTA %':>10} {'wall s':>8} "
            f"{'s/epoch':>8}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['part']:<20} {str(r['item'])[:22]:<22} {str(r['status']):<12} "
                     f"{num(r['test_accuracy_percent'], '.2f'):>10} "
                     f"{num(r.get('test_accuracy_flip_tta_percent'), '.2f'):>10} {num(r['wall_seconds'], '.1f'):>8} "
                     f"{num(r['seconds_per_epoch'], '.2f'):>8}  {r['note']}")
    return "\n".join(lines)


def finish(report: dict, ctx, out_dir: Path, status: str, budget: Budget) -> None:
    """The always-present files, the summary table and the final JSON, whatever happened."""
    requested = report["settings"]["parts_requested"]
    for name, part in report["parts"].items():
        if part["status"] == "running":  # cut short between two of run_parts' writes
            part["status"] = "interrupted"
        elif part["status"] == "pending":  # the loop ended (interrupted, or setup failed) before this part
            part["status"] = "not_reached" if name in requested else "not_requested"
            why_not = f"the report ended ({status}) before this part started" if name in requested else "not in --parts"
            report["skipped"].append(skip_record(name, "whole part", why_not, budget.elapsed()))

    def why(name: str) -> str:
        part = report["parts"][name]
        reasons = [s["reason"] for s in report["skipped"] if s["part"] == name]
        return f"status {part['status']}: " + (part["error"] or (reasons[-1] if reasons else "no run folder"))

    try:
        pack_notebooks(getattr(ctx, "notebook_run_dir", None), out_dir / NOTEBOOKS_TAR, report["parts"]["notebooks"],
                       reason=why("notebooks"))
    except Exception as err:  # the report must still be written
        report["errors"].append({"where": "pack notebooks", "error": f"{type(err).__name__}: {err}", "traceback": None})
    txt = out_dir / TOP_KERNELS_TXT
    if report["parts"]["profile"]["status"] != "completed" or not txt.is_file():
        with contextlib.suppress(OSError):
            atomic_write(txt, lambda f: f.write(f"No kernel table: the profile part did not run ({why('profile')}).\n"
                                                .encode()))
    report["status"] = status
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report["summary"] = summary_rows(report)
    report["budget"].update(budget.to_dict())
    if ctx is not None and ctx.calibration is not None:
        report["budget"]["calibration"] = ctx.calibration.to_dict()
    print(f"\n=== GPU report ({report['mode']}): {status} in {budget.elapsed():.0f} s of {budget.total_seconds:.0f} s "
          f"on {report['environment'].get('device', '?')} ===\n{format_table(report['summary'])}", flush=True)
    ms = report["parts"]["main_job"]["summary"]
    if ms["test_accuracy_percent_mean"] is not None:
        print(f"main job: test accuracy {ms['test_accuracy_percent_mean']:.2f}% mean over {ms['runs_completed']} "
              f"seed(s) (min {ms['test_accuracy_percent_min']:.2f}%, max {ms['test_accuracy_percent_max']:.2f}%)")
    print(f"skipped: {len(report['skipped'])} item(s); errors: {len(report['errors'])}")
    with contextlib.suppress(Exception):
        write_json(out_dir / REPORT_JSON, report)
    sizes = {name: (out_dir / name).stat().st_size if (out_dir / name).is_file() else None for name in OUTPUT_FILES}
    print("files:\n" + "\n".join(f"  {out_dir / n}  ({'missing' if s is None else f'{s:,} bytes'})"
                                  for n, s in sizes.items()), flush=True)
