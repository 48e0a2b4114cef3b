"""Models: the zoo and its registry (build any model by name; each model's own training settings), and
looks inside a model (torchsummary tables, receptive fields).

Example::

    from cifarhelpers.models import MODEL_DEFAULTS, MODEL_NAMES, build_model
    model = build_model("custom_resnet")      # (N, 3, 32, 32) -> (N, 10) logits
    model = build_model("custom_resnet", logit_scale=0.125)   # logits x 0.125, as cifar10-fast's ResNet-9
    MODEL_DEFAULTS["resnet18"]["epochs"]      # 20: what TrainConfig.preset(model="resnet18") trains for

:data:`MODEL_DEFAULTS` gives each model the recipe and epochs its source reports, a batch size, a transform set
and the warm-up it needs (``TrainConfig.preset`` applies them, then the recipe's own settings):

=================  =================  ======  =====  ====================  ===============================
model              recipe             epochs  batch  transform set         warm-up (``warmup_epochs``)
=================  =================  ======  =====  ====================  ===============================
``custom_resnet``  ``onecycle_adam``  24      512    ``cutout8``           none: the main job
``resnet18``       ``plateau_sgd``    20      512    ``cutout8``           5 epochs, linear (Goyal et al.)
``dilated_net``    ``step_sgd``       100     512    ``affine_cutout16``   none
=================  =================  ======  =====  ====================  ===============================

Modules: ``custom_resnet``, ``resnet18``, ``dilated_net`` (the models), ``layers`` (their blocks),
``registry`` (``build_model``, ``MODEL_DEFAULTS``), ``summary`` (torchsummary table), ``receptive_field``
(receptive-field tables and figure), ``state`` (a model's modes and gradients restored after a look at it).
Depends only on the package's base modules.
"""

from .custom_resnet import CustomResNet
from .dilated_net import DilatedNet
from .receptive_field import (RFRow, format_receptive_field_table, output_receptive_field, plot_receptive_fields,
                              receptive_field_growth, receptive_field_table)
from .registry import MODEL_DEFAULTS, MODEL_NAMES, MODELS, build_model, count_parameters, registry_name
from .resnet18 import ResNet18
from .state import preserved
from .summary import model_summary

__all__ = ["build_model", "count_parameters", "CustomResNet", "DilatedNet", "format_receptive_field_table",
           "MODEL_DEFAULTS", "MODEL_NAMES", "model_summary", "MODELS", "output_receptive_field",
           "plot_receptive_fields", "preserved", "receptive_field_growth", "receptive_field_table", "registry_name",
           "ResNet18", "RFRow"]
