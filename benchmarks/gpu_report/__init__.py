"""GPU report: everything the project wants measured on a GPU, in one command and one short visit.

Run (a folder with ``__main__.py``: the same from the repository root, or from a copy of this folder with
``peer_airbench.py`` beside it, as the offline bundle has)::

    python benchmarks/gpu_report                              # on the GPU node: writes into $OUT
    python benchmarks/gpu_report --budget-minutes 9 --out /tmp/report --commit <sha>
    python benchmarks/gpu_report --parts main_job profile     # only some parts
    python benchmarks/gpu_report --parts variants --variant default --variant lrmin5e-6 min_lr=5e-6
    python benchmarks/gpu_report --smoke --out /tmp/gr-smoke  # every part, tiny, on the CPU (a few minutes)
    python benchmarks/gpu_report --smoke --budget-minutes 1   # the same, with most parts skipped by the budget
    python benchmarks/gpu_report --plan round2 --show-plan    # a planned visit: its steps and estimates
    python benchmarks/gpu_report --plan round2 --step 1       # its first command (--smoke: the CPU rehearsal)

Modules: ``settings`` (every hyperparameter, file name and unit), ``budget`` (the clock, decisions, estimates),
``figures`` (a run's figures, accuracy over seeds, the comparison with the default), ``probes`` (step-time and
loader probes), ``context`` (what every part needs, its decisions), ``runs`` (training runs: ``fit``, and sweep
trials through ``cifarhelpers.sweep``), ``parts/`` (one module per part), ``runner`` (the parts in order, each
isolated), ``report`` (the JSON layout, the summary table, the final writes), ``session`` (environment, log,
watchdog, SIGTERM), ``plans`` (planned visits), ``cli`` (flags and ``main``), ``__main__``.

Parts, in order of priority (each part's results are written to ``gpu_report.json`` as soon as each of
its runs ends, atomically, so a run cut short keeps what it measured):

1. ``main_job``: the main job (custom ResNet, OneCycle + Adam, 24 epochs, batch 512, cutout8) on the
   device loader, channels-last, bf16 autocast, all 50,000 training and 10,000 test images, seeds
   0, 1, 2 without ``torch.compile``, then one seed with ``compile=True`` if time allows (and unless
   ``--no-compile-run``).
1b. ``peer`` (``peer_airbench.py`` beside this folder, the ``benchmark`` extra): airbench94 from PyPI ``airbench``
   (94.01% published on the original CIFAR-10 in 3.83 s on an A100) on the same JPEG copy and card, 5 runs:
   test accuracy plain / flip TTA / full TTA (mean, spread), its time beside the main job's, and
   ``drop_points`` = 94.01 minus its full-TTA mean. On a CPU: the import and its files only.
2. ``lr_sweep``: the LR range test (100 iterations, batch 512, whole training set), then the main job
   at each LRMAX of ``--lr-grid`` (24 epochs, seed 0); the recipe's default LRMAX reuses part 1's seed-0
   run. The grid runs in order of information: the default, its neighbours, the range test's suggestion, then
   the rest by distance from the default (log scale). The grid is a ``cifarhelpers.sweep`` sweep over ``max_lr``.
3. ``variants``: the main job under named changes of its config (``--variant NAME FIELD=VALUE ...``:
   optimizer, weight decay, label smoothing, ...), each on the first seed in the order given; then the
   best ``--variant-top-k`` of them by that seed's test accuracy on the other seeds. A variant that
   changes nothing reuses part 1's runs, on every seed part 1 ran. Each variant is compared with the
   default: the difference in points, Welch's t, and whether it is adopted (at least 3 seeds each, its mean
   beyond the spread of the default's seeds). Each variant is a ``cifarhelpers.sweep`` sweep over the seeds.
4. ``albumentations_path``: the main job with the albumentations DataLoader (one worker per core),
   seed 0; fewer epochs if 24 do not fit (said so in the JSON).
5. ``notebooks``: notebooks 01-06 with the full profile (papermill), packed into ``notebooks.tar.gz``.
6. ``zoo``: ResNet18-GN (plateau_sgd, 20 epochs, device loader) and DilatedNet (step_sgd,
   affine_cutout16, albumentations loader, 100 epochs or as many as fit).
7. ``profile``: ``torch.profiler`` over one epoch of the main job: share of device time in
   convolution/matmul kernels, in other kernels and idle; the top 10 kernels.

Budget: the whole command keeps to ``--budget-minutes`` (default 9). Before each run the script
estimates its cost from figures measured earlier in this report (the main job's seconds per step
and per epoch, its data and warm-up seconds, short probes of a model's step time or of a
DataLoader's images/s) and skips what no longer fits, recording the item, the reason, the estimate
and the time left in ``skipped`` (and printing it). The cheap ``profile`` part's estimate is held
back from the earlier parts so that it still runs. A watchdog interrupts whatever runs when the
budget is spent; that run is recorded as ``interrupted`` with the epochs it finished.

Outputs (in ``--out``, default ``$OUT``, else ``benchmarks/out/gpu-report``), always the same four files:

* ``gpu_report.json``: environment (device, versions, git commit), data (source and SHA-256),
  budget, settings, every part's results, skipped items, errors, a summary table, units;
* ``notebooks.tar.gz``: the executed notebooks and the PNG/JSON files they wrote (no ``*.pt``);
  a note saying why when the part did not run;
* ``profile_top_kernels.txt``: the top-kernel table of part 7 (or why it is missing);
* ``gpu_report.log``: everything printed.

Run folders of the trainings (checkpoints, weights) go to ``--work-dir`` (default: a temporary
folder, removed at the end), never to the output folder.

Figures and units (key suffixes in the JSON; ``units`` in the JSON repeats this):

* ``*_seconds``: wall-clock seconds, with ``torch.cuda.synchronize()`` before every clock read on a GPU.
  A run's ``wall_seconds`` = ``data_seconds`` (subsets, statistics, loaders, data to the device)
  + ``warmup_seconds`` (first epoch's training seconds minus the median of the other epochs': cuDNN
  autotuning, ``torch.compile``) + ``training_seconds`` (the rest of the training passes)
  + ``evaluation_seconds`` (test passes, the last one's flip-TTA pass included: ``flip_tta_seconds``) + ``other_seconds`` (model build, per-epoch checkpoints
  and metrics writes, the final plot).
* ``seconds_per_epoch``: mean of (train + test) seconds over all epochs (fit's figure);
  ``steady_seconds_per_epoch``: median over epochs 2..N (no warm-up).
* ``*_accuracy_fraction``: in [0, 1]; ``*_accuracy_percent``: the same x 100. ``history`` entries are
  ``fit()``'s own: accuracies as fractions, losses as mean cross-entropy per image, ``lr`` the LR of the
  epoch's last step.
* ``*_percent`` (profile): percent of the profiled epoch's device time, 0-100.
* ``*_per_second``: images per wall-clock second; ``*_mib``: mebibytes (2**20 bytes); ``*_bytes``: bytes.

Exit status: 0 all requested parts ran (some items may have been skipped by the budget: see
``skipped``), 1 the report could not start (device, data; the files are still written), 3 interrupted
(budget watchdog, SIGTERM, Ctrl-C; the files hold what was measured). Progress bars are off
(``TQDM_DISABLE=1`` unless set; the notebooks' kernels inherit it): one line per finished run instead.

Dependencies: the standard library, torch, numpy and cifarhelpers (papermill for the notebooks, airbench
for the peer part: the ``benchmark`` extra).
Works with torch 2.11-2.14 and Python 3.10-3.12.
"""

import os

# No progress bars (torch-lr-finder draws one even when asked for none): one line per finished run instead. Read by
# tqdm at import, so set before any module of the report imports it; the notebooks' kernels inherit it.
os.environ.setdefault("TQDM_DISABLE", "1")
