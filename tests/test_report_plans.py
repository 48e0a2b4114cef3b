"""The GPU report's planned visits (benchmarks/gpu_report/plans.py) through its command line: a planned visit's
steps expand to arguments the report accepts (every variant a valid config), flags given on the command line win,
and the zoo part trains each model at its own settings. No training here: the smoke rehearsal of a plan is the
bundle test's and a slow test's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from cifarhelpers.data import DEVICE_TRANSFORM_SETS
from cifarhelpers.training import PROFILES, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the package gpu_report and its sibling peer_airbench

from gpu_report import budget, cli, context, plans, report, settings
from gpu_report.parts import notebooks, zoo


@pytest.mark.parametrize(("plan", "step"), [(p.name, n + 1) for p in plans.PLANS.values() for n in range(len(p.steps))])
def test_every_planned_step_is_a_command_the_report_accepts(plan, step):
    args = cli.parse_args(["--plan", plan, "--step", str(step)])
    planned = plans.get_step(plan, step)
    assert (args.plan, args.step) == (plan, step), "the report records the plan and step it ran"
    assert args.parts == list(planned.parts) and args.budget_minutes == planned.budget_minutes
    assert [name for name, _ in (args.variants or [])] == [name for name, _ in planned.variants]
    assert args.notebooks == planned.notebooks and args.zoo_budgets == dict(planned.zoo_budgets)
    assert args.notebook_parameters == dict(planned.notebook_parameters)


def test_round2_settles_the_recipe_questions_on_three_seeds_beside_the_default():
    args = cli.parse_args(["--plan", "round2", "--step", "1"])
    variants = dict(args.variants)
    assert variants["default"] == {} and args.variant_top_k == len(variants) - 1
    assert sorted(v["end_lr"] for n, v in variants.items() if n.startswith("end_lr")) == sorted(plans.END_LRS)
    sgd = settings.main_config(settings.FULL).replace(**variants["onecycle_sgd"])
    assert (sgd.recipe, sgd.resolved_max_lr, sgd.logit_scale, sgd.weight_decay) == ("onecycle_sgd", 0.4, 0.125, 5e-4)
    assert "peer" in args.parts and "main_job" in args.parts and args.no_compile_run
    step2 = cli.parse_args(["--plan", "round2", "--step", "2"])
    assert step2.notebooks == "01-07" and settings.NOTEBOOK_CHAINS["01-07"][-1].startswith("07")


def test_flags_given_after_a_plan_win_and_a_variant_given_replaces_the_plans():
    args = cli.parse_args(["--plan", "round2", "--step", "1", "--budget-minutes", "5", "--seeds", "0"])
    assert args.budget_minutes == 5 and args.seeds == [0] and len(args.variants) == 5
    args = cli.parse_args(["--plan", "round2", "--variant", "ls0", "label_smoothing=0"])
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
        cli.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_show_plan_prints_each_steps_command_and_estimates_and_runs_nothing(capsys, tmp_path):
    assert cli.main(["--plan", "round2", "--show-plan", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "--plan round2 --step 1" in text and "--plan round2 --step 2" in text
    assert "peer" in text and "not measured" in text and "do not all fit one visit" in text
    assert not list(tmp_path.iterdir()), "showing the plan writes nothing"


def test_notebook_parameters_are_read_as_papermill_values():
    args = cli.parse_args(["--notebook-parameter", "num_seeds=1", "--notebook-parameter", "max_lrs=0.002,0.005",
                          "--notebook-parameter", "download=false"])
    assert args.notebook_parameters == {"num_seeds": 1, "max_lrs": "0.002,0.005", "download": False}


def test_notebook_07_counts_its_grid_only_when_the_chain_runs_it():
    full = PROFILES["full"]
    assert notebooks.notebook_07_runs(settings.NOTEBOOK_CHAINS["01-06"], {"num_seeds": 1}, full) == 0
    chain = settings.NOTEBOOK_CHAINS["01-07"]
    assert notebooks.notebook_07_runs(chain, {"max_lrs": "0.002,0.005,0.01", "num_seeds": 1}, full) == 3
    assert notebooks.notebook_07_runs(chain, {}, full) == len(full.sweep["max_lrs"]) * full.sweep["seeds"]


def test_the_zoo_trains_each_model_at_its_own_settings(tmp_path):
    layout = report.new_report(settings.FULL, list(settings.PARTS), budget.Budget(100.0, start=0.0), ["test"])
    ctx = context.Context(settings=settings.FULL, report=layout, budget=budget.Budget(100.0, start=0.0),
                          out_dir=tmp_path, work_dir=tmp_path / "work", device=torch.device("cpu"), save=False)
    for model in ("resnet18", "dilated_net"):
        preset = TrainConfig.preset(model=model)
        cfg, note = zoo.zoo_config(ctx, model, preset.epochs)
        assert (cfg.model, cfg.recipe, cfg.epochs, cfg.transform_set, cfg.warmup_epochs) == (
            model, preset.recipe, preset.epochs, preset.transform_set, preset.warmup_epochs)
        on_device = preset.transform_set in DEVICE_TRANSFORM_SETS
        assert cfg.loader == ("device" if on_device else "albumentations")
        assert ("device loader" if on_device else "albumentations loader") in note
