"""Model zoo: exact parameter counts, output shapes, logit scale, registry and each model's own settings,
summaries, receptive fields."""

from __future__ import annotations

import pytest
import torch

from cifarhelpers.errors import ConfigError
from cifarhelpers.models import (
    MODEL_DEFAULTS,
    MODEL_NAMES,
    ResNet18,
    build_model,
    count_parameters,
    format_receptive_field_table,
    model_summary,
    output_receptive_field,
    receptive_field_growth,
    receptive_field_table,
)

PARAMETERS = {"custom_resnet": 6_573_130, "resnet18": 11_173_962, "dilated_net": 193_535}


def test_registry_lists_every_model():
    assert set(MODEL_NAMES) == set(PARAMETERS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_count_is_pinned(name):
    assert count_parameters(build_model(name)) == PARAMETERS[name]


def test_dilated_net_stays_under_200k_with_the_required_parts():
    model = build_model("dilated_net")
    modules = list(model.modules())
    assert count_parameters(model) < 200_000
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AdaptiveMaxPool2d)) for m in modules)
    convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
    assert any(m.dilation[0] > 1 for m in convs), "a dilated convolution"
    assert any(m.stride[0] == 2 for m in convs), "strided convolutions downsample"
    assert any(m.groups == m.in_channels > 1 for m in convs), "depthwise convolutions"
    assert any(isinstance(m, torch.nn.Dropout) for m in modules)
    assert any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in modules)
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 10, "1x1 conv head"


@pytest.mark.parametrize("name", sorted(PARAMETERS))
@pytest.mark.parametrize("batch", [1, 7])
def test_forward_gives_logits_for_each_image(name, batch):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 3, 32, 32))
    assert out.shape == (batch, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown model 'resnet50'.*custom_resnet.*resnet18.*dilated_net"):
        build_model("resnet50")
    with pytest.raises(ConfigError, match=r"does not accept \['depth'\]"):
        build_model("custom_resnet", depth=3)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_logit_scale_multiplies_the_logits_and_adds_no_parameter(name):
    x = torch.randn(3, 3, 32, 32)
    outputs = []
    for scale in (1.0, 0.125):
        torch.manual_seed(0)
        model = build_model(name, logit_scale=scale).eval()
        assert count_parameters(model) == PARAMETERS[name]
        with torch.no_grad():
            outputs.append(model(x))
    assert torch.allclose(outputs[1], 0.125 * outputs[0], rtol=1e-6, atol=1e-7)
    assert not torch.allclose(outputs[1], outputs[0])


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), True])
def test_a_logit_scale_that_is_not_positive_and_finite_is_refused(scale):
    with pytest.raises(ConfigError, match=r"model 'custom_resnet': logit_scale=.* must be a finite number > 0"):
        build_model("custom_resnet", logit_scale=scale)


def test_every_model_has_its_own_settings_beside_the_registry():
    assert set(MODEL_DEFAULTS) == set(MODEL_NAMES)
    assert {name: (d["recipe"], d["epochs"]) for name, d in MODEL_DEFAULTS.items()} == {
        "custom_resnet": ("onecycle_adam", 24), "resnet18": ("plateau_sgd", 20), "dilated_net": ("step_sgd", 100)}
    assert MODEL_DEFAULTS["dilated_net"]["transform_set"] == "affine_cutout16"
    assert MODEL_DEFAULTS["resnet18"]["warmup_epochs"] == 5
    with pytest.raises(TypeError):
        MODEL_DEFAULTS["resnet18"]["epochs"] = 3  # read-only


def test_resnet18_groups_are_a_parameter():
    model = ResNet18(num_groups=8)
    assert {m.num_groups for m in model.modules() if isinstance(m, torch.nn.GroupNorm)} == {8}
    assert count_parameters(model) == PARAMETERS["resnet18"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with pytest.raises(ValueError, match="divisor of 64"):
        ResNet18(num_groups=3)


def test_summary_is_torchsummarys_table_and_changes_nothing():
    model = build_model("custom_resnet").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = model_summary(model, device="cpu")
    assert "Total params: 6,573,130" in text and "Linear-31" in text and "[-1, 10]" in text
    assert model.training, "train/eval mode restored"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "BN statistics untouched"
    with pytest.raises(ValueError, match="parameters are on cpu"):
        model_summary(model, device="cuda")


# -- receptive fields -----------------------------------------------------------------------

def test_receptive_field_of_a_small_stack_by_hand():
    # conv3 s1 -> conv3 s2 -> maxpool2 s2 -> conv3 dilation 2: computed on paper
    stack = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, stride=2, padding=1),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2))
    rows = receptive_field_table(stack, input_size=32)
    assert [(r.size_out, r.jump_out, r.rf_out) for r in rows] == [(32, 1, 3), (16, 2, 5), (8, 4, 7), (8, 4, 23)]
    assert [r.layer for r in rows] == ["0", "1", "2", "3"]
    assert rows[3].dilation == 2 and rows[3].rf_in == 7 and rows[3].jump_in == 4


def test_receptive_field_of_custom_resnet_by_hand():
    rows = receptive_field_table(build_model("custom_resnet"))
    # prep 3; layer1: conv 5, pool 6 (jump 2), res 10, 14; layer2: conv 18, pool 20 (jump 4);
    # layer3: conv 28, pool 32 (jump 8), res 48, 64; global max pool 4x4 -> 88 (jump 32)
    assert [r.rf_out for r in rows] == [3, 5, 6, 10, 14, 18, 20, 28, 32, 48, 64, 88]
    assert [r.jump_out for r in rows] == [1, 1, 2, 2, 2, 2, 4, 4, 8, 8, 8, 32]
    assert [r.size_out for r in rows] == [32, 32, 16, 16, 16, 16, 8, 8, 4, 4, 4, 1]
    assert rows[-1].op == "global pool" and output_receptive_field(build_model("custom_resnet")) == 64


def test_projection_shortcuts_are_parallel_branches_not_extra_layers():
    rows = {r.layer: r for r in receptive_field_table(build_model("resnet18"))}
    shortcut = rows["layer2.0.shortcut.0"]
    assert shortcut.rf_in == rows["layer1.1.conv2"].rf_out == 11 and shortcut.jump_in == 1
    assert rows["layer2.1.conv1"].jump_in == 2, "the stride counts once, not twice"
    assert rows["layer2.1.conv1"].rf_in == rows["layer2.0.conv2"].rf_out == 17


def test_dilated_net_sees_more_than_44_pixels():
    assert output_receptive_field(build_model("dilated_net")) == 67 > 44


def test_the_growth_curve_stops_at_global_pooling_so_a_head_after_it_adds_nothing():
    rows = receptive_field_table(build_model("dilated_net"))
    assert [r.op for r in rows[-2:]] == ["global pool", "conv 1x1"], "DilatedNet: pool, then a 1x1 conv head"
    growth = receptive_field_growth(rows)
    assert len(growth) == len(rows) - 2 and growth[-1] == 67, "not 91, the pool's field that the head inherits"
    assert growth == sorted(growth), "a running maximum"
    # without global pooling: every layer counts
    stack = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 1))
    assert receptive_field_growth(receptive_field_table(stack)) == [3, 3]


def test_the_receptive_field_plot_labels_each_model_with_the_tables_number():
    from cifarhelpers.models import plot_receptive_fields

    zoo = {name: build_model(name) for name in MODEL_NAMES}
    fig = plot_receptive_fields({name: receptive_field_table(model) for name, model in zoo.items()})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    for name, model in zoo.items():
        assert f"{name} ({output_receptive_field(model)} px)" in labels
    assert "dilated_net (67 px)" in labels and not any("91 px" in label for label in labels)
    line = next(line for line in fig.axes[0].get_lines() if line.get_label().startswith("dilated_net"))
    assert max(line.get_ydata()) == 67, "the curve ends where the label says"


def test_receptive_field_walk_changes_nothing_and_formats():
    model = build_model("dilated_net").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = format_receptive_field_table(receptive_field_table(model))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert text.splitlines()[0].split()[:3] == ["layer", "op", "k"] and "block3.0.0" in text


@pytest.mark.data
def test_a_run_trains_and_reloads_its_model_with_its_logit_scale(small_data, tmp_path):
    from cifarhelpers.training import TrainConfig, fit, load_run_model

    cfg = TrainConfig(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=1,
                      logit_scale=0.125, output_dir=str(tmp_path))
    result = fit(cfg, data=small_data, progress=False)
    assert result.model.logit_scale == 0.125
    model, metrics = load_run_model(result.run_dir)
    assert model.logit_scale == 0.125 and metrics["config"]["logit_scale"] == 0.125
