"""Understanding a trained model: predictions, misclassifications, GradCAM and evaluation.

* ``predictions``: predictions and losses, top losses, most confused pairs, confusion matrices and the
  classification report (after fastai's ClassificationInterpretation).
* ``gradcam``: GradCAM (pytorch-grad-cam) for the true and the predicted class, and its faithfulness
  per layer (ROAD).
* ``evaluation``: ``evaluate_run``: test accuracy, per class, with horizontal-flip TTA, into ``eval.json``.
* ``plots``: figures of predictions and GradCAM.

Built on :mod:`cifarhelpers.training` (loaders, loops, checkpoints).
"""

from .evaluation import EVAL_FILE, TTA_METHOD, evaluate_model, evaluate_run, format_evaluation, predict_with_flip_tta
from .gradcam import (DEFAULT_GRADCAM_LAYERS, GRADCAM_LAYER_CHOICES, ROAD_PERCENTILES, cam_faithfulness,
                      compare_gradcam_layers, default_gradcam_layer, faithfulness_table, gradcam,
                      gradcam_true_and_predicted, overlay_cams, resolve_layer)
from .plots import (METRIC_LABELS, plot_confusion_matrices, plot_confusion_matrix, plot_gradcam_grid,
                    plot_gradcam_true_vs_predicted, plot_layer_comparison, plot_per_class_metrics)
from .predictions import (Predictions, classification_report, confusion_matrix, correct_examples, gradcam_captions,
                          mistake_titles, most_confident_mistakes, most_confused, per_class_metrics, predict_images,
                          summarize, top_losses, top_losses_table)

__all__ = ["cam_faithfulness", "classification_report", "compare_gradcam_layers", "confusion_matrix",
           "correct_examples", "default_gradcam_layer", "DEFAULT_GRADCAM_LAYERS", "EVAL_FILE", "evaluate_model",
           "evaluate_run", "faithfulness_table", "format_evaluation", "gradcam", "gradcam_captions",
           "GRADCAM_LAYER_CHOICES", "gradcam_true_and_predicted", "METRIC_LABELS", "mistake_titles",
           "most_confident_mistakes", "most_confused", "overlay_cams", "per_class_metrics", "plot_confusion_matrices",
           "plot_confusion_matrix", "plot_gradcam_grid", "plot_gradcam_true_vs_predicted", "plot_layer_comparison",
           "plot_per_class_metrics", "predict_images", "predict_with_flip_tta", "Predictions", "resolve_layer",
           "ROAD_PERCENTILES", "summarize", "top_losses", "top_losses_table", "TTA_METHOD"]
