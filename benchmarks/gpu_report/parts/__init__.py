"""The GPU report's parts, one module each, every one a function ``run(ctx, part)`` that fills its part of the
report (``part``: its dict in ``gpu_report.json``) and decides item by item what fits the budget:

* :mod:`.main_job`: the main job on its seeds, then once with ``torch.compile``;
* :mod:`.lr_sweep`: the LR range test, then the main job over a grid of LRMAX (a ``cifarhelpers.sweep`` sweep);
* :mod:`.variants`: the main job under named config changes, each a sweep over the seeds, compared with the
  default;
* :mod:`.albumentations_path`: the main job on the albumentations DataLoader;
* :mod:`.notebooks`: notebooks 01-06 (or 01-07) with papermill, packed into ``notebooks.tar.gz``;
* :mod:`.zoo`: ResNet18-GN and DilatedNet at their own settings, as many epochs as fit;
* :mod:`.profiling`: ``torch.profiler`` over one epoch of the main job.

The ``peer`` part (airbench94) is the sibling module ``peer_airbench`` beside the ``gpu_report`` folder. The
order the parts run in and their isolation from each other are :mod:`gpu_report.runner`'s.
"""
