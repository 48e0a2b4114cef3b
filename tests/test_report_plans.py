"""benchmarks/report_plans.py through gpu_report.py's command line: a planned visit's steps expand to
arguments the report accepts (every variant a valid config), flags given on the command line win, and
the zoo part trains each model at its own settings. No training here: the smoke rehearsal of a plan is
the bundle test's and a slow test's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if "gpu_report" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "benchmarks" / "gpu_report.py")
    sys.modules["gpu_report"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["gpu_report"])
gr = sys.modules["gpu_report"]
plans = gr.report_plans


@pytest.mark.parametrize(("plan", "step"), [(p.name, n + 1) for p in plans.PLANS.values() for n in range(len(p.steps))])
def test_every_planned_step_is_a_command_the_report_accepts(plan, step):
    args = gr.parse_args(["--plan", plan, "--step", str(step)])
    planned = plans.get_step(plan, step)
    assert (args.plan, args.step) == (plan, step), "the report records the plan and step it ran"
    assert args.parts == list(planned.parts) and args.budget_minutes == planned.budget_minutes
    assert [name for name, _ in (args.variants or [])] == [name for name, _ in planned.variants]
    assert args.notebooks == planned.notebooks and args.zoo_budgets == dict(planned.zoo_budgets)
    assert args.notebook_parameters == dict(planned.notebook_parameters)


def test_round2_settles_the_recipe_questions_on_three_seeds_beside_the_default():
    args = gr.parse_args(["--plan", "round2", "--step", "1"])
    variants = dict(args.variants)
    assert variants["default"] == {} and args.variant_top_k == len(variants) - 1
    assert sorted(v["end_lr"] for n, v in variants.items() if n.startswith("end_lr")) == sorted(plans.END_LRS)
    sgd = gr.main_config(gr.FULL).replace(**variants["onecycle_sgd"])
    assert (sgd.recipe, sgd.resolved_max_lr, sgd.logit_scale, sgd.weight_decay) == ("onecycle_sgd", 0.4, 0.125, 5e-4)
    assert "peer" in args.parts and "main_job" in args.parts and args.no_compile_run
    step2 = gr.parse_args(["--plan", "round2", "--step", "2"])
    assert step2.notebooks == "01-07" and gr.NOTEBOOK_CHAINS["01-07"][-1].startswith("07")


def test_flags_given_after_a_plan_win_and_a_variant_given_replaces_the_plans():
    args = gr.parse_args(["--plan", "round2", "--step", "1", "--budget-minutes", "5", "--seeds", "0"])
    assert args.budget_minutes == 5 and args.seeds == [0] and len(args.variants) == 5
    args = gr.parse_args(["--plan", "round2", "--variant", "ls0", "label_smoothing=0"])
    assert args.variants == [("ls0", {"label_smoothing": 0.0})] and args.variant_top_k is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--plan", "round2", "--step", "3"], "steps 1 to 2"),
    (["--step", "1"], "need --plan"),
    (["--plan", "round9"], "not a planned visit"),
    (["--zoo-budget", "vgg=10"], "--zoo-budget takes"),
    (["--notebook-parameter", "num_seeds"], "is not NAME=VALUE"),
])
def test_a_bad_plan_or_share_is_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gr.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_show_plan_prints_each_steps_command_and_estimates_and_runs_nothing(capsys, tmp_path):
    assert gr.main(["--plan", "round2", "--show-plan", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "--plan round2 --step 1" in text and "--plan round2 --step 2" in text
    assert "peer" in text and "not measured" in text and "do not all fit one visit" in text
    assert not list(tmp_path.iterdir()), "showing the plan writes nothing"


def test_notebook_parameters_are_read_as_papermill_values():
    args = gr.parse_args(["--notebook-parameter", "num_seeds=1", "--notebook-parameter", "max_lrs=0.002,0.005",
                          "--notebook-parameter", "download=false"])
    assert args.notebook_parameters == {"num_seeds": 1, "max_lrs": "0.002,0.005", "download": False}


def test_notebook_07_counts_its_grid_only_when_the_chain_runs_it():
    full = gr.PROFILES["full"]
    assert gr.notebook_07_runs(gr.NOTEBOOK_CHAINS["01-06"], {"num_seeds": 1}, full) == 0
    assert gr.notebook_07_runs(gr.NOTEBOOK_CHAINS["01-07"], {"max_lrs": "0.002,0.005,0.01", "num_seeds": 1}, full) == 3
    assert gr.notebook_07_runs(gr.NOTEBOOK_CHAINS["01-07"], {}, full) == len(full.sweep["max_lrs"]) * full.sweep["seeds"]


def test_the_zoo_trains_each_model_at_its_own_settings(tmp_path):
    report = gr.new_report(gr.FULL, list(gr.PARTS), gr.Budget(100.0, start=0.0), ["test"])
    ctx = gr.Context(settings=gr.FULL, report=report, budget=gr.Budget(100.0, start=0.0), out_dir=tmp_path,
                     work_dir=tmp_path / "work", device=gr.torch.device("cpu"), save=False)
    for model in ("resnet18", "dilated_net"):
        preset = gr.TrainConfig.preset(model=model)
        cfg, note = gr.zoo_config(ctx, model, preset.epochs)
        assert (cfg.model, cfg.recipe, cfg.epochs, cfg.transform_set, cfg.warmup_epochs) == (
            model, preset.recipe, preset.epochs, preset.transform_set, preset.warmup_epochs)
        on_device = preset.transform_set in gr.DEVICE_TRANSFORM_SETS
        assert cfg.loader == ("device" if on_device else "albumentations")
        assert ("device loader" if on_device else "albumentations loader") in note
