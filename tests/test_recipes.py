"""Recipes: LR values of the OneCycle schedule, the cadence of every scheduler, and a real step
per model and recipe that lowers the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cifarhelpers.config import TrainConfig
from cifarhelpers.models import MODEL_NAMES, build_model
from cifarhelpers.recipes import RECIPES, build_criterion, build_optimizer, lr_schedule

STEPS = 7  # steps per epoch in these tests


def test_onecycle_starts_at_lrmin_peaks_at_the_end_of_epoch_5_and_ends_at_lrmin():
    cfg = TrainConfig(max_lr=0.02)
    lrs = lr_schedule(cfg, STEPS)
    assert len(lrs) == 24 * STEPS
    assert lrs[0] == pytest.approx(0.002)                 # LRMIN = LRMAX / 10
    assert lrs[5 * STEPS - 1] == pytest.approx(0.02)      # last step of epoch 5
    assert max(lrs) == pytest.approx(0.02) and int(np.argmax(lrs)) == 5 * STEPS - 1
    assert lrs[-1] == pytest.approx(0.002)                # no annihilation below LRMIN
    assert min(lrs) == pytest.approx(0.002)
    rising = np.diff(lrs[: 5 * STEPS])
    assert np.allclose(rising, rising[0]), "linear warm-up"
    falling = np.diff(lrs[5 * STEPS - 1 :])
    assert np.allclose(falling, falling[0]), "linear annealing"


def test_onecycle_uses_an_explicit_lrmin():
    lrs = lr_schedule(TrainConfig(max_lr=0.05, min_lr=0.001, epochs=4, pct_start=0.25), STEPS)
    assert lrs[0] == pytest.approx(0.001) and lrs[-1] == pytest.approx(0.001)
    assert lrs[STEPS - 1] == pytest.approx(0.05)


def test_onecycle_steps_per_batch():
    model = torch.nn.Linear(2, 2)
    optimizer, schedule = build_optimizer(model, TrainConfig(max_lr=0.01, epochs=2), steps_per_epoch=STEPS)
    first = schedule.lr
    optimizer.step()
    schedule.after_batch()
    assert schedule.lr != first, "one batch moves the OneCycle LR"
    lr = schedule.lr
    schedule.after_epoch(test_loss=1.0)
    assert schedule.lr == lr, "the end of an epoch does not"


def test_onecycle_sgd_is_nesterov_sgd_on_the_onecycle_adam_schedule():
    cfg = TrainConfig(recipe="onecycle_sgd", weight_decay=5e-4)
    optimizer, _ = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=STEPS)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] and optimizer.defaults["weight_decay"] == 5e-4
    lrs = lr_schedule(cfg, STEPS)
    assert max(lrs) == pytest.approx(0.4) and lrs[0] == pytest.approx(0.04) and lrs[-1] == pytest.approx(0.04)
    assert lrs == pytest.approx([lr * 80 for lr in lr_schedule(TrainConfig(), STEPS)]), "0.4 / 0.005: the same shape"


@pytest.mark.parametrize("recipe, key", [("onecycle_sgd", "momentum"), ("onecycle_adam", "betas")])
def test_onecycle_cycles_the_momentum_against_the_lr(recipe, key):
    optimizer, schedule = build_optimizer(torch.nn.Linear(2, 2), TrainConfig(recipe=recipe), steps_per_epoch=STEPS)
    seen = []
    for _ in range(24 * STEPS):
        momentum = optimizer.param_groups[0][key]
        seen.append((schedule.lr, momentum[0] if key == "betas" else momentum))
        optimizer.step()
        schedule.after_batch()
    assert seen[0][1] == pytest.approx(0.95) and seen[-1][1] == pytest.approx(0.95), "at LRMIN"
    assert max(seen)[1] == pytest.approx(0.85), "at LRMAX"


def test_step_sgd_steps_per_epoch_and_divides_by_10_every_20_epochs():
    cfg = TrainConfig(recipe="step_sgd", epochs=45)
    optimizer, schedule = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=STEPS)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    seen = []
    for epoch in range(45):
        for _ in range(STEPS):
            optimizer.step()
            schedule.after_batch()
        seen.append(schedule.lr)
        schedule.after_epoch(test_loss=1.0)
    assert seen[0] == pytest.approx(0.01) and seen[19] == pytest.approx(0.01)
    assert schedule.lr == pytest.approx(0.0001) and seen[20] == pytest.approx(0.001)


def test_plateau_sgd_lowers_the_lr_only_when_the_test_loss_stalls():
    cfg = TrainConfig(recipe="plateau_sgd", epochs=20)
    optimizer, schedule = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=STEPS)
    assert schedule.lr == pytest.approx(0.1)
    for _ in range(STEPS):
        optimizer.step()
        schedule.after_batch()
    for loss in (1.0, 0.9, 0.8):
        schedule.after_epoch(loss)
    assert schedule.lr == pytest.approx(0.1), "improving: no change"
    for _ in range(3):
        schedule.after_epoch(0.85)  # patience 2: the third epoch without improvement cuts the LR
    assert schedule.lr == pytest.approx(0.01)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_weight_decay_and_label_smoothing_are_options_of_every_recipe(recipe):
    cfg = TrainConfig(recipe=recipe, weight_decay=5e-4, label_smoothing=0.1)
    optimizer, _ = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=STEPS)
    assert all(group["weight_decay"] == 5e-4 for group in optimizer.param_groups)
    assert build_criterion(cfg).label_smoothing == 0.1


@pytest.fixture(scope="module")
def real_batch(cifar, cifar_stats):
    """32 real training images (a fixed, class-balanced draw), normalized, and their labels."""
    from cifarhelpers import transforms as T
    from cifarhelpers.subsets import stratified_subset

    idx = stratified_subset(cifar.y_train, 32, seed=0)
    tf = T.test_transform(cifar_stats.mean, cifar_stats.std)
    images = torch.stack([tf(image=img)["image"] for img in cifar.x_train[idx]])
    return images, torch.as_tensor(cifar.y_train[idx])


# A step size per model and optimizer family at which 10 full-batch steps on 32 real images
# reliably overfit them (measured with seed 0; larger ones overshoot on so small a batch, e.g.
# SGD at 0.05 sends the custom ResNet's loss from 4.1 to 23 in 5 steps).
OVERFIT_LR = {
    ("custom_resnet", "adam"): 1e-4, ("custom_resnet", "sgd"): 5e-3,
    ("resnet18", "adam"): 1e-4, ("resnet18", "sgd"): 5e-3,
    ("dilated_net", "adam"): 3e-3, ("dilated_net", "sgd"): 0.1,
}


@pytest.mark.data
@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_ten_steps_lower_the_loss_on_a_fixed_real_batch(real_batch, model_name, recipe):
    images, labels = real_batch
    torch.manual_seed(0)
    model = build_model(model_name)
    lr = OVERFIT_LR[model_name, "adam" if recipe.endswith("adam") else "sgd"]
    cfg = TrainConfig(model=model_name, recipe=recipe, max_lr=lr, min_lr=lr, epochs=1)
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=10)
    criterion = build_criterion(cfg)

    def loss_now() -> float:
        torch.manual_seed(1)  # same dropout masks each time
        with torch.no_grad():
            return float(criterion(model.train()(images), labels))

    before = loss_now()
    for _ in range(10):
        optimizer.zero_grad()
        criterion(model.train()(images), labels).backward()
        optimizer.step()
        schedule.after_batch()
    after = loss_now()
    assert after < 0.75 * before, f"{model_name}/{recipe}: loss {before:.3f} -> {after:.3f}"
