"""Measure which GradCAM layer explains a trained model more faithfully: the measurement behind
``cifarhelpers.analysis.gradcam.DEFAULT_GRADCAM_LAYERS``.

For a finished run folder it takes the run's own test images (its class-balanced ``test_subset``
draw), picks ``--images`` of them per group, computes GradCAM at each offered layer
(``GRADCAM_LAYER_CHOICES``, e.g. layer2 8x8 and layer3 4x4 for the custom ResNet) and scores the
maps with pytorch-grad-cam's faithfulness metrics (:func:`cifarhelpers.analysis.gradcam.cam_faithfulness`):
ROAD (Rong et al. 2022) most- and least-relevant-first and combined, and the confidence change when
only the map's region is kept; uniform random maps are scored too, as the chance level. Groups:

* ``correct``: correctly classified images, target = their class;
* ``mistakes``: misclassified images, target = the predicted (wrong) class: where the evidence for
  the model's mistake lies.

Run::

    python benchmarks/gradcam_layers.py runs/20261125-101500-custom_resnet --images 256 \\
        --json results/gradcam-layers-cpu.json

Prints a table and writes the numbers (probability changes in [-1, 1]) with the run's details as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cifarhelpers.analysis import (
    GRADCAM_LAYER_CHOICES,
    ROAD_PERCENTILES,
    compare_gradcam_layers,
    evaluate_model,
    faithfulness_table,
)
from cifarhelpers.data import load_cifar10, normalize_batch
from cifarhelpers.files import write_json
from cifarhelpers.training import device_name, load_run_model, resolve_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished run folder (metrics.json, model.pt)")
    parser.add_argument("--images", type=int, default=256, help="images per group (default 256)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the image draw, the ROAD noise, the random maps")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    model, metrics = load_run_model(args.run_dir, device)
    data = load_cifar10(args.data_root or metrics["config"].get("data_root"), progress=False)
    evaluation, preds = evaluate_model(model, metrics, data, device=device, tta=False, progress=False)
    name = metrics["config"]["model"]
    layers = GRADCAM_LAYER_CHOICES[name]
    rng = np.random.default_rng(args.seed)
    groups = {"correct": np.flatnonzero(preds.predicted == preds.labels),
              "mistakes": np.flatnonzero(preds.predicted != preds.labels)}
    results: dict = {}
    start = time.perf_counter()
    for group, pool in groups.items():
        picked = np.sort(rng.choice(pool, size=min(args.images, len(pool)), replace=False))
        inputs = normalize_batch(preds.images[picked], metrics["data"]["mean"], metrics["data"]["std"])
        targets = preds.predicted[picked].tolist()  # = the true class for the correct group
        values: dict = {}
        results[group] = compare_gradcam_layers(model, inputs, targets, layers, device=device, seed=args.seed,
                                                per_image=values)
        # the second layer minus the first on the same images: mean and standard error of the paired difference
        diffs = {m: values[layers[1]][m] - values[layers[0]][m] for m in values[layers[0]]}
        results[group][f"{layers[1]} - {layers[0]}"] = {
            m: {"mean": float(d.mean()), "sem": float(d.std(ddof=1) / np.sqrt(len(d))),
                "share_higher": float((d > 0).mean())} for m, d in diffs.items()}
    seconds = time.perf_counter() - start

    print(f"{name}, run {Path(args.run_dir).name}: test accuracy {100 * evaluation['accuracy']:.2f}% on "
          f"{evaluation['test_images']:,} images, {len(metrics['history'])} epochs on "
          f"{metrics['data']['train_images']:,} training images; {device_name(device)}; {seconds:.0f} s")
    print("changes of p(target) in percentage points; road_combined, road_lerf, keep_cam_change: higher is "
          "more faithful; road_morf: lower is")
    for group, by_layer in results.items():
        print(f"\n{group}: " + ("target = the true (and predicted) class" if group == "correct"
                                 else "target = the predicted (wrong) class"))
        maps = {k: v for k, v in by_layer.items() if " - " not in k}
        print(faithfulness_table(maps))
        for key, paired in by_layer.items():
            if " - " in key:
                print(f"paired {key}: " + "; ".join(
                    f"{m} {100 * d['mean']:+.2f} +- {100 * d['sem']:.2f} (higher on {100 * d['share_higher']:.0f}% of images)"
                    for m, d in paired.items()))
    if args.json:
        write_json(args.json, {
            "run": Path(args.run_dir).name, "model": name, "epochs": len(metrics["history"]),
            "train_images": metrics["data"]["train_images"], "test_accuracy": evaluation["accuracy"],
            "test_images": evaluation["test_images"], "device": device_name(device), "torch_version": torch.__version__,
            "road_percentiles": list(ROAD_PERCENTILES), "seed": args.seed, "seconds": seconds,
            "units": "change of the target's softmax probability, in [-1, 1]", "results": results,
            "command": "python benchmarks/gradcam_layers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
