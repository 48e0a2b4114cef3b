"""The commands, one module each; each has ``main(argv) -> exit status`` and runs as ``python -m``:

* ``train``: ``cifar-train``, one training run (``fit``) from flags;
* ``eval``: ``cifar-eval RUN_DIR``, a finished run folder evaluated again, with flip TTA;
* ``sweep``: ``cifar-sweep``, a grid or random search over seeds (sequential or Ray Tune);
* ``notebooks``: ``cifar-notebooks``, notebooks 01-07 headless with papermill;
* ``colab``: ``python -m cifarhelpers.cli.colab``, the notebooks' Colab badge and install cell;
* ``common``: the conventions every command shares (``--x`` / ``--no-x``, ``--version``, error hints).

The top of the package: it may import every family; nothing imports it.
"""
