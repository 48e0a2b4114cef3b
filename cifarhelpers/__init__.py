"""cifarhelpers: train and understand CIFAR-10 image classifiers with PyTorch.

Modules, each named after its job:

* ``data``: load CIFAR-10 (torchvision or image-folder layout) as uint8 arrays; statistics; subsets.
* ``transforms``: albumentations pipelines (pad+crop, flip, cutout), previews, the Dataset applying them.
* ``loaders``, ``device_loader``: the albumentations DataLoader path and the device-resident loader.
* ``models``: CustomResNet, ResNet18, DilatedNet and the registry (``build_model``).
* ``config``: ``TrainConfig``, the one validated config object of a run, and the run profiles.
* ``recipes``: optimizers and LR schedules by name (OneCycle by default).
* ``engine``: train and test loops; ``train``: ``fit(config)`` and the ``cifar-train`` command.
* ``checkpoint``, ``runs``: atomic checkpoints, safe loading, run folders.
* ``lr_range_test``: the LR range test with torch-lr-finder.
* ``analysis``, ``plots``: predictions, mistakes, confusion matrix, per-class metrics, GradCAM; figures.
* ``summary``, ``receptive_field``, ``model_state``: torchsummary tables, receptive-field tables,
  restoring a model's modes and gradients after a look at it.
* ``notebooks``: what each notebook calls first, and the papermill runner (``cifar-notebooks``).

The notebooks in ``notebooks/`` call these; see README.md.
"""

__version__ = "0.1.0"
