"""cifarhelpers: train and understand CIFAR-10 image classifiers with PyTorch.

Modules, each named after its job:

* ``data``: load CIFAR-10 (torchvision or image-folder layout) as uint8 arrays; statistics.
* ``transforms``: albumentations pipelines (pad+crop, flip, cutout) and the Dataset applying them.
* ``models``: CustomResNet and the model registry (``build_model``).
* ``config``: ``TrainConfig``, the one validated config object of a run.
* ``recipes``: optimizers and LR schedules by name (OneCycle by default).
* ``engine``: train and test loops; ``train``: ``fit(config)`` and the ``cifar-train`` command.

The notebooks in ``notebooks/`` call these; see README.md.
"""

__version__ = "0.1.0"
