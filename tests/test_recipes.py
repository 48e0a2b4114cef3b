"""Recipes: LR and momentum of every step against PyTorch's OneCycleLR and cifar10-fast's formula, the
warm-up, the cadence of every scheduler, and a real step per model and recipe that lowers the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cifarhelpers.models import MODEL_NAMES, build_model
from cifarhelpers.training import RECIPES, TrainConfig, build_criterion, build_optimizer, lr_schedule

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


def _pytorch_onecycle(cfg: TrainConfig, steps: int, **options) -> list[tuple[float, float]]:
    """(LR, beta1) of every step of PyTorch's own OneCycleLR on Adam, built here from ``options``."""
    optimizer = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, epochs=cfg.epochs, steps_per_epoch=steps,
                                                    pct_start=cfg.pct_start, anneal_strategy="linear", **options)
    seen = []
    for _ in range(cfg.epochs * steps):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"][0]))
        optimizer.step()
        scheduler.step()
    return seen


def _recipe_steps(cfg: TrainConfig, steps: int) -> list[tuple[float, float]]:
    """(LR, momentum or beta1) of every step of ``cfg``'s recipe."""
    optimizer, schedule = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=steps)
    key = "betas" if isinstance(optimizer, torch.optim.Adam) else "momentum"
    seen = []
    for epoch in range(cfg.epochs):
        for _ in range(steps):
            value = optimizer.param_groups[0][key]
            seen.append((schedule.lr, value[0] if key == "betas" else value))
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(test_loss=1.0 / (epoch + 1))
    return seen


def test_onecycle_adam_is_pytorchs_onecycle_with_lrmin_and_the_end_lr_as_div_factors():
    # PyTorch's defaults (div_factor 25, final_div_factor 1e4: the course template's), given as LRs
    cfg = TrainConfig(max_lr=0.01, min_lr=0.01 / 25, end_lr=0.01 / 25 / 1e4, epochs=8, pct_start=0.25)
    ours = _recipe_steps(cfg, STEPS)
    theirs = _pytorch_onecycle(cfg, STEPS, max_lr=0.01, div_factor=25.0, final_div_factor=1e4, three_phase=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg="LR and beta1 of every step")
    assert ours[0][0] == pytest.approx(4e-4) and ours[-1][0] < 1e-6, "ends near zero"
    lrs = [lr for lr, _ in ours]
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) == 2 * STEPS - 1
    assert ours[0][1] == pytest.approx(0.95) and min(b for _, b in ours) == pytest.approx(0.85), "beta1 cycled"


@pytest.mark.parametrize("end_lr, final_div_factor", [(None, 1.0), (0.0005, 2.0), (0.0, math.inf)])
def test_onecycle_adam_end_lr_sets_final_div_factor_and_none_keeps_lrmin(end_lr, final_div_factor):
    cfg = TrainConfig(max_lr=0.01, end_lr=end_lr, epochs=3)
    ours = _recipe_steps(cfg, STEPS)
    theirs = _pytorch_onecycle(cfg, STEPS, max_lr=0.01, div_factor=10.0, final_div_factor=final_div_factor)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert cfg.resolved_end_lr == pytest.approx(0.001 if end_lr is None else end_lr)


def _cifar10_fast_lr(step: int, steps_per_epoch: int) -> float:
    """cifar10-fast's 24-epoch LR of 0-based step ``step`` on the mean loss: PiecewiseLinear([0, 5, 24], [0, 0.4, 0])
    at (step + 1) / steps_per_epoch epochs (its optimizer counts the step before reading the LR)."""
    t = (step + 1) / steps_per_epoch
    return 0.4 * t / 5 if t <= 5 else 0.4 * (24 - t) / 19


def test_onecycle_sgd_is_cifar10_fasts_24_epoch_recipe():
    cfg = TrainConfig.preset(recipe="onecycle_sgd")
    assert (cfg.weight_decay, cfg.label_smoothing, cfg.logit_scale, cfg.min_lr, cfg.end_lr) == (5e-4, 0.2, 0.125, 0, 0)
    optimizer, _ = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=STEPS)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] is True and optimizer.defaults["weight_decay"] == 5e-4
    seen = _recipe_steps(cfg, STEPS)
    assert len(seen) == 24 * STEPS
    expected = [_cifar10_fast_lr(i, STEPS) for i in range(24 * STEPS)]
    assert [lr for lr, _ in seen] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(momentum == 0.9 for _, momentum in seen), "no momentum cycling"
    assert seen[0][0] == pytest.approx(0.4 / (5 * STEPS)) and seen[5 * STEPS - 1][0] == pytest.approx(0.4)
    assert seen[-1][0] == 0.0, "annealed to 0 on the last step"


def test_onecycle_sgd_on_the_mean_loss_takes_cifar10_fasts_steps_on_the_summed_loss():
    torch.manual_seed(0)
    batch, x, y = 16, torch.randn(3, 16, 5, dtype=torch.float64), torch.randint(0, 3, (3, 16))
    start = torch.nn.Linear(5, 3).double()
    weights = []
    for reduction, lr, weight_decay in (("mean", 0.4, 5e-4), ("sum", 0.4 / batch, 5e-4 * batch)):
        model = torch.nn.Linear(5, 3).double()
        model.load_state_dict(start.state_dict())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        for step in range(3):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[step]), y[step], reduction=reduction).backward()
            optimizer.step()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.allclose(weights[0], torch.cat([p.detach().flatten() for p in start.parameters()]))
    assert torch.allclose(weights[0], weights[1], rtol=1e-12, atol=1e-14)


def test_onecycle_sgd_takes_lrmin_end_lr_and_the_peak_from_the_config():
    cfg = TrainConfig.preset(recipe="onecycle_sgd", max_lr=0.2, min_lr=0.02, end_lr=0.01, epochs=4, pct_start=0.25)
    lrs = lr_schedule(cfg, STEPS)
    assert lrs[STEPS - 1] == pytest.approx(0.2) and lrs[-1] == pytest.approx(0.01)
    assert lrs[0] == pytest.approx(0.02 + 0.18 / STEPS), "step 0 is at 1/STEPS of the rise"


@pytest.mark.parametrize("recipe", ["onecycle_adam", "onecycle_sgd"])
def test_onecycle_recipes_ignore_the_warmup(recipe):
    cfg = TrainConfig.preset(recipe=recipe, epochs=4)
    assert lr_schedule(cfg.replace(warmup_epochs=2), STEPS) == lr_schedule(cfg, STEPS)


@pytest.mark.parametrize("recipe", ["plateau_sgd", "step_sgd"])
def test_sgd_warmup_rises_linearly_per_step_then_the_recipe_starts(recipe):
    cfg = TrainConfig(recipe=recipe, warmup_epochs=2, epochs=30)
    lr = RECIPES[recipe].default_lr
    lrs = lr_schedule(cfg, STEPS)
    assert lrs[: 2 * STEPS] == pytest.approx([lr * (k + 1) / (2 * STEPS) for k in range(2 * STEPS)], rel=1e-12)
    assert lrs[2 * STEPS] == lr
    if recipe == "step_sgd":  # StepLR counts its 20 epochs from the end of the warm-up
        assert lrs[22 * STEPS - 1] == lr and lrs[22 * STEPS] == pytest.approx(lr / 10)


def test_plateau_does_not_cut_the_lr_during_the_warmup_and_a_resumed_warmup_continues():
    cfg = TrainConfig(recipe="plateau_sgd", warmup_epochs=4, epochs=10)
    optimizer, schedule = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=2)
    for epoch in range(3):  # a test loss that gets worse: no cut while warming up
        for _ in range(2):
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(test_loss=1.0 + epoch)
    assert schedule.lr == pytest.approx(0.1 * 7 / 8)
    optimizer2, schedule2 = build_optimizer(torch.nn.Linear(2, 2), cfg, steps_per_epoch=2)
    optimizer2.load_state_dict(optimizer.state_dict())
    schedule2.load_state_dict(schedule.state_dict())
    for sched, opt in ((schedule, optimizer), (schedule2, optimizer2)):
        opt.step()
        sched.after_batch()
    assert schedule2.lr == schedule.lr == pytest.approx(0.1)


@pytest.mark.parametrize("recipe, key", [("onecycle_adam", "betas")])  # onecycle_sgd keeps 0.9 (test above)
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
    from cifarhelpers.data import stratified_subset
    from cifarhelpers.data import transforms as T

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


#: Every recipe on the smallest model, and every model with the main job's recipe: the optimizer and schedule
#: do not depend on the model, so the full cross product (12 pairs, ResNet-18 the slowest) adds no case.
RECIPE_MODEL_PAIRS = sorted({*(("dilated_net", r) for r in RECIPES), *((m, "onecycle_adam") for m in MODEL_NAMES)})


@pytest.mark.data
@pytest.mark.parametrize("model_name, recipe", RECIPE_MODEL_PAIRS)
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


@pytest.mark.data
def test_resnet18s_warmup_lowers_the_loss_where_lr_0_1_from_the_start_blows_it_up(real_batch):
    images, labels = real_batch  # batch 512 on 50,000 images: 97 steps per epoch, 485 warm-up steps
    losses = {}
    for warmup in (5, 0):
        cfg = TrainConfig.preset(model="resnet18", warmup_epochs=warmup)
        torch.manual_seed(0)
        model = build_model("resnet18", logit_scale=cfg.logit_scale)
        optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=97)
        criterion, losses[warmup] = build_criterion(cfg), []
        for _ in range(4):
            loss = criterion(model(images), labels)
            losses[warmup].append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.after_batch()
    assert losses[5][-1] < losses[5][0], f"with the warm-up: {losses[5]}"
    assert losses[0][-1] > 2 * losses[0][0], f"LR 0.1 from the start: {losses[0]}"


def test_a_warm_up_as_long_as_the_run_is_said_out_loud():
    from torch import nn

    from cifarhelpers.training import TrainConfig, build_optimizer

    short = TrainConfig.preset(model="resnet18", epochs=2)  # its own 5-epoch warm-up in 2 epochs
    with pytest.warns(UserWarning, match=r"warmup_epochs=5 >= epochs=2: .* never reaches 0.1"):
        build_optimizer(nn.Linear(1, 1), short, steps_per_epoch=4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_optimizer(nn.Linear(1, 1), short.replace(warmup_epochs=1), steps_per_epoch=4)
