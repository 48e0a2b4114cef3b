"""cifarhelpers: train and understand CIFAR-10 image classifiers with PyTorch.

Modules, each named after its job:

Data
  * ``data``: load CIFAR-10 (torchvision or image-folder layout) as uint8 arrays;
    ``decode_cache``: the ``.npz`` cache of a decoded image-folder copy.
  * ``statistics``: per-channel mean/std/min/max/var and class counts; ``subsets``: class-balanced draws.
  * ``transforms``: albumentations pipelines (pad+crop, flip, cutout), previews, the Dataset applying them.
  * ``loaders``: a run's data from its config (``prepare_data``) and the albumentations DataLoader path;
    ``device_loader``: the whole data set on the training device, augmented there in batches.

Training
  * ``config``: ``TrainConfig``, the one validated config object of a run, and the run profiles;
    ``checks``: the validators every settings object uses (type and range, with the fix in the message).
  * ``models``: CustomResNet, ResNet18, DilatedNet and the registry (``build_model``).
  * ``recipes``: optimizers and LR schedules by name (OneCycle by default); ``precision``: bf16, fp16 +
    GradScaler or fp32, chosen by the device.
  * ``engine``: train and test loops; ``train``: ``fit(config)``; ``cli``: the ``cifar-train`` command;
    ``cli_common``: the flag conventions every command shares (``--x`` / ``--no-x``, ``--version``).
  * ``runs``: run folders and their life (metrics.json, status, resume); ``checkpoint``: atomic
    checkpoints and safe loading; ``files``: atomic writes, JSON, figures; ``errors``: the
    exceptions, each message naming the problem and the fix.
  * ``lr_range_test``: the LR range test with torch-lr-finder; ``devices``, ``reproducibility``: the
    device and the seeds.

Sweeps
  * ``sweep``: ``run_sweep`` / ``resume_sweep``, the sweep folder and the sequential backend;
    ``sweep_spec``: ``SweepConfig``, the validated grid / random search and its trial list;
    ``sweep_trials``: one trial run and recorded, and where it stands on disk; ``sweep_results``: the
    results table (CSV, printed); ``sweep_ray``: the Ray Tune backend; ``sweep_cli``: ``cifar-sweep``.

Understanding
  * ``analysis``: predictions and losses, top losses, most confused pairs, confusion matrices, the
    classification report (after fastai's ClassificationInterpretation); ``gradcam``: GradCAM for the
    true and predicted class, and its faithfulness per layer (ROAD); ``evaluation``: ``evaluate_run``
    and ``cifar-eval`` (test accuracy, per class, horizontal-flip TTA, ``eval.json``).
  * ``plots``: figures of data (and the next three's, re-exported); ``training_plots``: loss, accuracy, LR
    schedule; ``lr_plots``: the LR range test; ``sweep_plots``: a sweep; ``plot_style``: colours and
    number formats; ``analysis_plots``: figures of predictions and GradCAM.
  * ``summary``, ``receptive_field``, ``model_state``: torchsummary tables, receptive-field tables,
    restoring a model's modes and gradients after a look at it.

Notebooks
  * ``notebook_setup``: what each notebook calls first; ``handoffs``: the files the notebooks hand
    to each other (the table is in its docstring); ``notebook_runner``: ``cifar-notebooks``, papermill;
    ``colab``: the Colab badge and install cell from pyproject's ``[project.urls]``, outputs on Drive.

The notebooks in ``notebooks/`` call these; see README.md.
"""

__version__ = "0.1.0"
