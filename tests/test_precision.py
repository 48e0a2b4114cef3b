"""Precision chosen by the device: bf16 on Ampere and newer, fp16 + GradScaler on older CUDA GPUs,
fp32 on CPU and MPS; the scaler's state saved in the checkpoint and restored on resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from cifarhelpers.models import build_model
from cifarhelpers.training import (
    METRICS_FILE,
    Precision,
    TrainConfig,
    build_criterion,
    build_optimizer,
    fit,
    load_checkpoint,
    resume_config,
    select_precision,
    train_one_epoch,
)
from cifarhelpers.training import train as train_module


@pytest.mark.parametrize(("capability", "name", "scaler"), [
    ((7, 5), "fp16", True),   # T4
    ((7, 0), "fp16", True),   # V100
    ((6, 1), "fp16", True),   # P100-class
    ((8, 0), "bf16", False),  # A100
    ((8, 9), "bf16", False),  # L4
    ((9, 0), "bf16", False),  # H100, H200
])
def test_cuda_precision_follows_the_compute_capability(capability, name, scaler):
    precision = select_precision(torch.device("cuda"), amp=True, capability=capability)
    assert (precision.name, precision.uses_grad_scaler) == (name, scaler)
    assert precision.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[name]
    assert f"{capability[0]}.{capability[1]}" in precision.describe()


def test_capability_is_read_from_the_device_when_not_given(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert select_precision("cuda:0").name == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert select_precision("cuda:0").name == "bf16"


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_cpu_and_mps_train_in_fp32(device):
    precision = select_precision(torch.device(device), amp=True)
    assert precision.name == "fp32" and precision.dtype is None and precision.grad_scaler() is None


def test_amp_false_is_fp32_on_every_device():
    for device, capability in (("cuda", (9, 0)), ("cuda", (7, 5)), ("cpu", None)):
        assert select_precision(device, amp=False, capability=capability).name == "fp32"


def test_to_dict_is_json_ready_and_unknown_names_are_refused():
    as_dict = select_precision("cuda", capability=(7, 5)).to_dict()
    assert json.loads(json.dumps(as_dict)) == {"name": "fp16", "device_type": "cuda", "autocast_dtype": "float16",
                                               "grad_scaler": True, "reason": as_dict["reason"]}
    with pytest.raises(ValueError, match="choose one of"):
        Precision("fp8", "cuda")


def _cpu_fp16_supported() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            return torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float16
    except (RuntimeError, AssertionError):
        return False


FP16_ON_CPU = Precision("fp16", "cpu", "test: fp16 + GradScaler on the CPU")
needs_cpu_fp16 = pytest.mark.skipif(not _cpu_fp16_supported(), reason="this torch build has no CPU fp16 autocast")


@needs_cpu_fp16
@pytest.mark.data
def test_an_fp16_step_with_grad_scaler_scales_the_loss_and_updates_the_weights(small_data, one_thread):
    torch.manual_seed(0)
    model = build_model("dilated_net")
    cfg = TrainConfig(model="dilated_net", epochs=1, batch_size=32, max_lr=0.005)
    loader = [(torch.from_numpy(small_data.x_train[:32]).permute(0, 3, 1, 2).float().div(255),
               torch.from_numpy(small_data.y_train[:32]))]
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=1)
    before = [p.detach().clone() for p in model.parameters()]
    scaler = FP16_ON_CPU.grad_scaler()
    seen = []
    scale = scaler.scale
    scaler.scale = lambda loss: seen.append(loss.dtype) or scale(loss)
    result = train_one_epoch(model, loader, build_criterion(cfg), optimizer, schedule, device=torch.device("cpu"),
                             precision=FP16_ON_CPU, scaler=scaler, progress=False)
    assert seen == [torch.float32], "the loss is scaled once, in fp32"
    assert scaler.get_scale() == 65536.0, "one finite step keeps the initial scale"
    assert torch.isfinite(torch.tensor(result.loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the step updated the weights"


@needs_cpu_fp16
@pytest.mark.data
def test_scaler_state_is_checkpointed_and_restored_on_resume(small_data, tmp_path, monkeypatch, one_thread):
    """fit() on a device whose precision is fp16 (faked on the CPU): the checkpoint holds the
    GradScaler's state, metrics.json records the precision, and a resumed run loads the scale the
    interrupted one had reached (not a fresh 65536) and completes."""
    monkeypatch.setattr(train_module, "select_precision", lambda device, amp: FP16_ON_CPU)
    cfg = dict(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=2,
               max_lr=0.005, seed=3)
    alone = fit(TrainConfig(**cfg, output_dir=str(tmp_path / "alone")), data=small_data, progress=False)
    state = load_checkpoint(alone.run_dir)
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0
    assert json.loads((alone.run_dir / METRICS_FILE).read_text())["precision"]["name"] == "fp16"

    # the same run, interrupted during epoch 2, with a scale already changed from its default
    real_epoch = train_module.train_one_epoch

    def stop_in_epoch_2(*args, epoch, scaler, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        result = real_epoch(*args, epoch=epoch, scaler=scaler, **kwargs)
        scaler.update(new_scale=1024.0)  # as if some fp16 gradients had overflowed
        return result

    monkeypatch.setattr(train_module, "train_one_epoch", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(**cfg, output_dir=str(tmp_path / "killed")), data=small_data, progress=False)
    run_dir = next((tmp_path / "killed").iterdir())
    assert load_checkpoint(run_dir)["scaler"]["scale"] == 1024.0

    loaded = []
    real_load = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict",
                        lambda self, s: loaded.append(s["scale"]) or real_load(self, s))
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    resumed = fit(resume_config(run_dir), data=small_data, progress=False)
    assert loaded == [1024.0], "the resumed run starts from the saved scale"
    assert resumed.metrics["status"] == "completed" and len(resumed.history) == 2
    assert load_checkpoint(run_dir)["scaler"]["scale"] > 0


class _Hooked(list):
    """Records, at every optimizer step that really runs, the loss scale the GradScaler had then."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler):
        super().__init__()
        optimizer.register_step_post_hook(lambda *_: self.append(scaler.get_scale()))


@needs_cpu_fp16
def test_fp16_gradients_that_overflow_skip_the_step_lower_the_scale_and_training_continues():
    """fp16 autocast with precision.grad_scaler(), through train_one_epoch: gradients that overflow
    fp16 at the scaler's own loss scale skip the optimizer step and halve the scale, until they fit.

    All-zero weights and 4 identical images of value 8 in class 0 (mean loss, batch 4): the fp16
    gradient of the true class's weights is 0.9 x 8 x 4 / 4 x scale (max fp16 is 65504), so it
    overflows at 65536, 32768 and 16384 and fits at 8192: three skipped steps, then a real one."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    cfg = TrainConfig(model="dilated_net", recipe="step_sgd", epochs=1, max_lr=0.01)
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=5)
    scaler = FP16_ON_CPU.grad_scaler()
    assert scaler.get_scale() == 65536.0
    steps_taken = _Hooked(optimizer, scaler)
    batch = (torch.full((4, 3, 4, 4), 8.0), torch.zeros(4, dtype=torch.long))
    result = train_one_epoch(model, [batch] * 5, nn.CrossEntropyLoss(), optimizer, schedule,
                             device=torch.device("cpu"), precision=FP16_ON_CPU, scaler=scaler, progress=False)
    assert steps_taken == [8192.0, 8192.0], "steps 1-3 skipped (65536, 32768, 16384 overflow); 4 and 5 taken"
    assert scaler.get_scale() == 8192.0, "halved once per overflow, kept once the gradients fit"
    losses = result.step_losses
    assert losses[:4] == pytest.approx([math.log(10)] * 4, abs=1e-6), "weights unchanged by the skipped steps"
    assert losses[4] < losses[3], "the step taken trained the model"
    assert all(torch.isfinite(p).all() for p in model.parameters()), "no inf or NaN reached the weights"
    assert any(p.abs().sum() > 0 for p in model.parameters())
