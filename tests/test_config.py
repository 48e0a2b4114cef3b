"""TrainConfig: every field validated on entry, with the valid range or choices in the message."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from cifarhelpers.errors import ConfigError
from cifarhelpers.training import PROFILES, TrainConfig, resolve_profile


def test_defaults_are_the_main_job():
    cfg = TrainConfig()
    assert (cfg.model, cfg.recipe, cfg.epochs, cfg.batch_size, cfg.transform_set) == (
        "custom_resnet", "onecycle_adam", 24, 512, "cutout8")
    assert cfg.pct_start == pytest.approx(5 / 24)
    assert cfg.resolved_min_lr == pytest.approx(cfg.resolved_max_lr / 10)


@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, r"epochs=0 \(int\) is invalid: it must be an integer >= 1"),
    ("epochs", -3, r"integer >= 1"),
    ("epochs", 2.5, r"epochs=2.5 \(float\).*integer"),
    ("epochs", "24", r"epochs='24' \(str\).*integer"),
    ("epochs", True, r"epochs=True \(bool\)"),
    ("batch_size", 0, r"batch_size=0.*integer >= 1"),
    ("max_lr", 0.0, r"max_lr=0.0.*finite number > 0.0"),
    ("max_lr", -0.1, r"max_lr=-0.1.*> 0.0"),
    ("max_lr", math.nan, r"max_lr=nan.*finite"),
    ("max_lr", math.inf, r"max_lr=inf.*finite"),
    ("max_lr", "0.01", r"max_lr='0.01' \(str\)"),
    ("min_lr", -0.1, r"min_lr=-0.1 \(float\).*>= 0.0"),
    ("end_lr", -1e-3, r"end_lr=-0.001 \(float\).*>= 0.0 or None"),
    ("end_lr", "0", r"end_lr='0' \(str\)"),
    ("logit_scale", 0, r"logit_scale=0 \(int\).*finite number > 0.0"),
    ("logit_scale", math.inf, r"logit_scale=inf.*finite"),
    ("warmup_epochs", -1, r"warmup_epochs=-1.*integer >= 0"),
    ("warmup_epochs", 1.5, r"warmup_epochs=1.5 \(float\).*integer"),
    ("pct_start", 1.0, r"pct_start=1.0.*< 1.0"),
    ("weight_decay", -1e-4, r"weight_decay.*>= 0.0"),
    ("label_smoothing", 1.0, r"label_smoothing=1.0.*< 1.0"),
    ("seed", -1, r"seed=-1.*>= 0"),
    ("train_subset", 0, r"train_subset=0.*>= 1 or None"),
    ("device", "gpu", r"device='gpu' is not a known device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ("device", "cuda:x", r"not a known device"),
    ("model", "resnet50", r"model='resnet50'.*choose one of \['custom_resnet', 'resnet18', 'dilated_net'\]"),
    ("recipe", "cosine", r"recipe='cosine'.*onecycle_adam"),
    ("transform_set", "randaugment", r"transform_set='randaugment'.*cutout8"),
    ("loader", "ffcv", r"loader='ffcv'.*albumentations.*device"),
    ("compile", "yes", r"compile='yes' \(str\).*True or False"),
    ("output_dir", "", r"output_dir='' \(str\).*non-empty string"),
])
def test_invalid_values_are_refused_with_the_rule(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_min_lr_above_max_lr_is_refused():
    with pytest.raises(ConfigError, match=r"min_lr=0.5 is above max_lr=0.1: min_lr must be <= max_lr"):
        TrainConfig(max_lr=0.1, min_lr=0.5)


def test_end_lr_is_checked_against_max_lr_or_the_recipes_default():
    with pytest.raises(ConfigError, match=r"end_lr=0.2 is above max_lr=0.1: end_lr must be <= max_lr; lower end_lr"):
        TrainConfig(max_lr=0.1, end_lr=0.2)
    with pytest.raises(ConfigError, match=r"end_lr=0.01 is above max_lr=0.005 \(the default of recipe "
                                          r"'onecycle_adam'\)"):
        TrainConfig(end_lr=0.01)
    assert TrainConfig(max_lr=0.1, end_lr=0.1).resolved_end_lr == 0.1
    assert TrainConfig(end_lr=0.0).resolved_end_lr == 0.0
    assert TrainConfig().resolved_end_lr == TrainConfig().resolved_min_lr, "None: LRMIN, today's end"


def test_lrmin_zero_is_refused_where_onecycle_lr_divides_by_it_only():
    with pytest.raises(ConfigError, match=r"min_lr=0 is invalid with recipe='onecycle_adam': PyTorch's OneCycleLR .*"
                                          r"div_factor.*use recipe='onecycle_sgd'"):
        TrainConfig(min_lr=0)
    assert TrainConfig(recipe="onecycle_sgd", min_lr=0.0, end_lr=0.0).resolved_min_lr == 0.0
    assert TrainConfig(recipe="plateau_sgd", min_lr=0.0).recipe == "plateau_sgd", "a recipe that ignores it"


def test_find_takes_lrmin_and_end_lr_none_or_zero_only():
    assert TrainConfig(recipe="onecycle_sgd", max_lr="find", min_lr=0.0, end_lr=0.0).end_lr == 0.0
    with pytest.raises(ConfigError, match=r"end_lr=0.001 with max_lr='find'.*leave end_lr None \(or 0\)"):
        TrainConfig(max_lr="find", end_lr=0.001)


def test_device_loader_only_implements_the_main_augmentations():
    with pytest.raises(ConfigError, match=r"loader='device' implements transform_set in \['cutout8', 'cutout8_p05'\] only"):
        TrainConfig(loader="device", transform_set="affine_cutout16")


def test_paths_are_accepted_and_stored_as_text(tmp_path):
    cfg = TrainConfig(output_dir=tmp_path, data_root=Path("data"))
    assert cfg.output_dir == str(tmp_path) and cfg.data_root == "data"


def test_replace_and_from_dict_validate_too():
    cfg = TrainConfig()
    assert cfg.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="epochs=0"):
        cfg.replace(epochs=0)
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['epoch'\]; valid fields are"):
        cfg.replace(epoch=3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['lr'\]"):
        TrainConfig.from_dict({"lr": 0.1})


def test_profiles_resolve_auto_by_device_and_are_valid_configs():
    assert resolve_profile("auto", "cuda").name == "full" and resolve_profile("auto", "cpu").name == "short"
    assert resolve_profile("auto", "mps").name == "short"
    assert resolve_profile("short", "cuda").overrides == {"epochs": 2, "train_subset": 4096, "test_subset": 2000,
                                                          "batch_size": 128, "lr_test_iterations": 30}
    assert resolve_profile("full", "cpu").overrides == {} and TrainConfig().epochs == 24
    assert TrainConfig().lr_test_iterations == 100, "the full profile's LR range test: the seeds' 100 iterations"
    with pytest.raises(ConfigError, match=r"profile='fast'.*\['auto', 'short', 'full'\]"):
        resolve_profile("fast", "cpu")
    TrainConfig(**PROFILES["short"].overrides)  # the short profile is itself a valid config


def test_every_field_has_help_text_with_its_range_or_meaning():
    helps = TrainConfig.field_help()
    assert set(helps) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(len(text) > 20 for text in helps.values()), [k for k, v in helps.items() if len(v) <= 20]
    assert ">= 1" in helps["epochs"] and "LRMAX" in helps["max_lr"] and "bf16" in helps["amp"]
