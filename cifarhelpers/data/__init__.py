"""Data: CIFAR-10 as uint8 arrays, its statistics, class-balanced subsets, augmentation and loading.

Modules, each named after its job:

* ``cifar10``: load CIFAR-10 from torchvision's pickled copy (downloaded when asked) or an image-folder
  copy (``CIFAR10Data``, ``load_cifar10``); ``decode_cache``: the ``.npz`` cache of a decoded image-folder copy.
* ``statistics``: per-channel mean/std/min/max/var and class counts; ``subsets``: class-balanced draws.
* ``transforms``: the albumentations pipelines (pad-4 crop, flip, cutout; the named transform sets) and the
  Dataset applying them; ``previews``: each step alone on the same images, several draws of one image, and checks
  that each step did what its name says.
* ``device_loader``: the whole data set on the training device, augmented there in batches
  (after KellerJordan/cifar10-airbench).
* ``plots``: figures of the data (image grids, class balance, pixel histograms, augmentation steps).

Depends on nothing else in the package but its base modules (``errors``, ``checks``, ``files``, ``plot_style``).
"""

from .cifar10 import (CLASSES, DEFAULT_ROOT, IMAGE_SHAPE, ROOT_ENV, SPLIT_SIZES, CIFAR10Data, DataSource, load_cifar10,
                      resolve_root)
from .decode_cache import CACHE_ENV, CACHE_PREFIX, cache_dirs, listing_key, read_cache, write_cache
from .device_loader import Augmentation, DeviceLoader, apply_augmentation, draw_augmentation
from .plots import plot_augmentation_preview, plot_channel_histograms, plot_class_balance, plot_image_grid
from .previews import augmentation_draws, augmentation_preview, preview_checks, preview_pipelines
from .statistics import ChannelStats, class_counts, class_counts_table, dataset_statistics, statistics_table
from .subsets import balanced_subset, samples_per_class, stratified_subset
from .transforms import (CROP, CUTOUT_SIZE, DEVICE_TRANSFORM_SETS, PAD, PAD_BORDER, TRANSFORM_SETS, AugmentedDataset,
                         Stats, TransformSet, augmentation_steps, check_device_transform_set, cutout, denormalize,
                         mean_fill, normalize_batch, pad_crop, seed_worker, shift_scale_rotate, test_transform,
                         train_transform)

__all__ = ["apply_augmentation", "Augmentation", "augmentation_draws", "augmentation_preview", "augmentation_steps",
           "AugmentedDataset", "balanced_subset", "cache_dirs", "CACHE_ENV", "CACHE_PREFIX", "ChannelStats",
           "check_device_transform_set", "CIFAR10Data", "class_counts", "class_counts_table", "CLASSES", "CROP",
           "cutout", "CUTOUT_SIZE", "dataset_statistics", "DataSource", "DEFAULT_ROOT", "denormalize",
           "DEVICE_TRANSFORM_SETS", "DeviceLoader", "draw_augmentation", "IMAGE_SHAPE", "listing_key", "load_cifar10",
           "mean_fill", "normalize_batch", "PAD", "PAD_BORDER", "pad_crop", "plot_augmentation_preview",
           "plot_channel_histograms", "plot_class_balance", "plot_image_grid", "preview_checks", "preview_pipelines",
           "read_cache", "resolve_root", "ROOT_ENV", "samples_per_class", "seed_worker", "shift_scale_rotate",
           "SPLIT_SIZES", "statistics_table", "Stats", "stratified_subset", "test_transform", "train_transform",
           "TRANSFORM_SETS", "TransformSet", "write_cache"]
