"""TrainConfig.preset: each model's own settings, then its recipe's, then the changes given; and the builders of
cifar-train, cifar-sweep and the notebooks that use it."""

from __future__ import annotations

import pytest
import torch

from cifarhelpers.cli.train import build_parser, config_from_args
from cifarhelpers.errors import ConfigError
from cifarhelpers.models import MODEL_DEFAULTS, MODEL_NAMES
from cifarhelpers.training import FIELD_NAMES, PROFILES, RECIPE_SETTINGS, RECIPES, TrainConfig, lr_schedule


def test_the_preset_of_the_main_job_is_trainconfig_itself():
    assert TrainConfig.preset() == TrainConfig()
    assert TrainConfig.preset(model="custom_resnet", recipe="onecycle_adam") == TrainConfig()


def test_every_recipe_names_each_of_its_settings_and_no_model_sets_one():
    for recipe in RECIPES.values():
        assert set(recipe.defaults) == set(RECIPE_SETTINGS), recipe.name
        with pytest.raises(TypeError):
            recipe.defaults["weight_decay"] = 1.0  # read-only
    for name, own in MODEL_DEFAULTS.items():
        assert not set(own) & set(RECIPE_SETTINGS), f"{name}: a recipe's setting would be overwritten by the recipe"
        assert set(own) <= set(FIELD_NAMES)


def test_onecycle_adams_settings_are_todays_defaults():
    main = TrainConfig()
    assert dict(RECIPES["onecycle_adam"].defaults) == {k: getattr(main, k) for k in RECIPE_SETTINGS}
    assert (main.weight_decay, main.label_smoothing, main.logit_scale, main.min_lr, main.end_lr) == (
        0, 0.2, 1, None, None)


@pytest.mark.parametrize("model", MODEL_NAMES)
@pytest.mark.parametrize("recipe", [None, *RECIPES])
def test_every_model_and_recipe_gives_a_valid_preset(model, recipe):
    cfg = TrainConfig.preset(model=model, recipe=recipe)
    own = MODEL_DEFAULTS[model]
    assert cfg.model == model and cfg.recipe == (recipe or own["recipe"])
    assert (cfg.epochs, cfg.batch_size, cfg.transform_set) == (own["epochs"], own["batch_size"], own["transform_set"])
    assert {k: getattr(cfg, k) for k in RECIPE_SETTINGS} == dict(RECIPES[cfg.recipe].defaults)


def test_resnet18_gets_its_own_recipe_epochs_and_warmup():
    cfg = TrainConfig.preset(model="resnet18")
    assert (cfg.recipe, cfg.epochs, cfg.batch_size, cfg.warmup_epochs) == ("plateau_sgd", 20, 512, 5)
    lrs = lr_schedule(cfg, 4)
    assert lrs[0] == pytest.approx(0.1 / 20) and lrs[19] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.1)


def test_dilated_net_gets_its_100_epochs_and_its_augmentations():
    cfg = TrainConfig.preset(model="dilated_net")
    assert (cfg.recipe, cfg.epochs, cfg.transform_set) == ("step_sgd", 100, "affine_cutout16")


def test_explicit_changes_win_over_the_model_and_the_recipe():
    cfg = TrainConfig.preset(model="resnet18", recipe="onecycle_sgd", epochs=3, weight_decay=1e-4, logit_scale=1.0)
    assert (cfg.recipe, cfg.epochs, cfg.weight_decay, cfg.logit_scale) == ("onecycle_sgd", 3, 1e-4, 1.0)
    assert (cfg.min_lr, cfg.end_lr, cfg.label_smoothing) == (0.0, 0.0, 0.2), "the rest from onecycle_sgd"


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="resnet50"), r"model='resnet50' \(str\) is invalid: choose one of \['custom_resnet', 'resnet18'"),
    (dict(recipe="cosine"), r"recipe='cosine' \(str\) is invalid: choose one of \['onecycle_adam'"),
    (dict(epoch=3), r"unknown config field\(s\) \['epoch'\]; valid fields are"),
    (dict(model="resnet18", epochs=0), r"epochs=0 \(int\) is invalid"),
])
def test_bad_names_and_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.preset(**kwargs)


def test_cifar_train_builds_through_the_preset_with_flags_and_the_profile_on_top():
    parse = build_parser().parse_args
    cfg, profile = config_from_args(parse(["--model", "resnet18"]), "cuda")
    assert profile == "full" and (cfg.recipe, cfg.epochs, cfg.warmup_epochs) == ("plateau_sgd", 20, 5)
    cfg, _ = config_from_args(parse(["--model", "resnet18", "--epochs", "7", "--recipe", "onecycle_sgd"]), "cuda")
    assert (cfg.epochs, cfg.recipe, cfg.logit_scale, cfg.weight_decay) == (7, "onecycle_sgd", 0.125, 5e-4)
    cfg, profile = config_from_args(parse(["--model", "dilated_net"]), "cpu")
    assert profile == "short" and (cfg.epochs, cfg.batch_size, cfg.train_subset) == (2, 128, 4096), "short profile"
    assert (cfg.recipe, cfg.transform_set) == ("step_sgd", "affine_cutout16")
    assert config_from_args(parse([]), "cuda")[0] == TrainConfig(), "no flags: the main job"


def test_cifar_sweep_and_the_notebooks_build_through_the_preset_too(tmp_path):
    from cifarhelpers.cli.sweep import build_parser as sweep_parser
    from cifarhelpers.cli.sweep import spec_from_args
    from cifarhelpers.notebook import NotebookSetup, notebook_config, sweep_config

    spec = spec_from_args(sweep_parser().parse_args(["--model", "resnet18", "--grid", "max_lr=0.01,0.1",
                                                     "--device", "cpu", "--output-dir", str(tmp_path)]))
    assert (spec.base.recipe, spec.base.warmup_epochs, spec.base.epochs) == ("plateau_sgd", 5, 2)
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["full"], output_dir=tmp_path, data=None)
    cfg = notebook_config(setup, model="resnet18", recipe=None, epochs=None)
    assert (cfg.recipe, cfg.epochs, cfg.warmup_epochs) == ("plateau_sgd", 20, 5)
    short = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None)
    base = sweep_config(short).base  # notebook 07's short sweep: the main job's recipe on the DilatedNet
    assert (base.model, base.recipe, base.transform_set, base.epochs) == ("dilated_net", "onecycle_adam", "cutout8", 2)
