"""Precision chosen by the device: bf16 on Ampere and newer, fp16 + GradScaler on older CUDA GPUs,
fp32 on CPU and MPS; the scaler's state saved in the checkpoint and restored on resume."""

from __future__ import annotations

import json

import pytest
import torch

from cifarhelpers import train as train_module
from cifarhelpers.checkpoint import load_checkpoint
from cifarhelpers.config import TrainConfig
from cifarhelpers.engine import train_one_epoch
from cifarhelpers.models import build_model
from cifarhelpers.precision import Precision, select_precision
from cifarhelpers.recipes import build_criterion, build_optimizer
from cifarhelpers.runs import METRICS_FILE, resume_config
from cifarhelpers.train import fit


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
