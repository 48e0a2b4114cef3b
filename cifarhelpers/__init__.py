"""cifarhelpers: train and understand CIFAR-10 image classifiers with PyTorch.

One subpackage per family, each exporting its public names from its ``__init__`` (timm's style);
imports point one way, checked by import-linter (``pyproject.toml``, ``tests/test_architecture.py``)::

    cli, notebook             the commands (train, eval, sweep, notebooks, colab); what the notebooks call
      sweep, analysis         grid/random searches over seeds (sequential or Ray Tune); predictions, GradCAM, evaluation
        training              TrainConfig, recipes, loops, the run folder, checkpoints, the LR range test: fit(config)
          data, models        CIFAR-10, statistics, subsets, transforms, previews, the device loader; the model zoo
            files, checks, provenance, plot_style, errors     the base every family uses

Example::

    from cifarhelpers.training import TrainConfig, fit
    result = fit(TrainConfig.preset("custom_resnet"))     # the main job: 24 epochs of OneCycle

Each subpackage's docstring lists its modules. The notebooks in ``notebooks/`` call these; see README.md.
"""

__version__ = "0.1.0"
