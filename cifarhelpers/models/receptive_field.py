"""Receptive-field tables: the spreadsheet students fill in, computed from the model itself.

For each convolution or pooling layer, in forward order:

* ``jump_out = jump_in * stride`` (distance in input pixels between neighbouring outputs);
* ``rf_out = rf_in + (dilation * (kernel - 1)) * jump_in`` (side of the input window one output sees);
* ``size_out`` is read from the real output shape.

Source of the recurrences: Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019, https://distill.pub/2019/computing-receptive-fields/.

The walk runs one forward pass under a ``TorchFunctionMode`` that carries (receptive field, jump)
along with every tensor. Elementwise ops such as a residual ``x + f(x)`` take the larger receptive
field of their inputs, and a projection shortcut is a parallel branch, not an extra layer, so
ResNets come out right without special cases. Values are theoretical: they may exceed the image.

Example::

    rows = receptive_field_table(build_model("custom_resnet"))
    print(format_receptive_field_table(rows))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.overrides import TorchFunctionMode

from cifarhelpers.plot_style import GREY

from .state import preserved


@dataclass(frozen=True)
class RFRow:
    """One convolution or pooling layer. Sizes, jumps and receptive fields are in input pixels
    (sizes in pixels of the layer's own input/output maps)."""

    layer: str
    op: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    size_in: int
    size_out: int
    jump_in: int
    jump_out: int
    rf_in: int
    rf_out: int

    def to_dict(self) -> dict:
        return asdict(self)


_CONV = {torch.conv2d, F.conv2d}
_MAX_POOL = {F.max_pool2d, torch.max_pool2d}
_AVG_POOL = {F.avg_pool2d, torch._C._nn.avg_pool2d}
_ADAPTIVE = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch._C._nn.adaptive_avg_pool2d}


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _arg(args, kwargs, index, name, default):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


class _Tracker(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.info: dict[int, tuple[torch.Tensor, int, int]] = {}  # id -> (tensor kept alive, rf, jump)
        self.rows: list[RFRow] = []
        self.names: list[str] = []

    def set(self, tensor: torch.Tensor, rf: int, jump: int) -> None:
        self.info[id(tensor)] = (tensor, rf, jump)

    def get(self, tensor) -> tuple[int, int] | None:
        entry = self.info.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None
        return None if entry is None or entry[0] is not tensor else entry[1:]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor):
            return out
        inputs = [self.get(a) for a in args if isinstance(a, torch.Tensor)]
        inputs = [i for i in inputs if i is not None]
        if not inputs:
            return out
        x = args[0]
        layer = self.names[-1] if self.names else "(model)"
        if func in _CONV or func in _MAX_POOL or func in _AVG_POOL or func in _ADAPTIVE:
            rf_in, jump_in = self.get(x)
            if func in _CONV:
                weight = args[1]
                kernel = int(weight.shape[-1])
                stride, padding = _first(_arg(args, kwargs, 3, "stride", 1)), _arg(args, kwargs, 4, "padding", 0)
                dilation, groups = _first(_arg(args, kwargs, 5, "dilation", 1)), int(_arg(args, kwargs, 6, "groups", 1))
                padding = padding if isinstance(padding, str) else _first(padding)
                op = "conv (depthwise)" if groups > 1 and groups == x.shape[1] else f"conv {kernel}x{kernel}"
            elif func in _ADAPTIVE:
                kernel = stride = int(x.shape[-1]) // max(1, _first(_arg(args, kwargs, 1, "output_size", 1)))
                padding, dilation, op = 0, 1, "adaptive pool"
            else:
                kernel = _first(_arg(args, kwargs, 1, "kernel_size", None))
                stride_arg = _arg(args, kwargs, 2, "stride", None)
                stride = kernel if stride_arg in (None, [], ()) else _first(stride_arg)
                padding = _first(_arg(args, kwargs, 3, "padding", 0))
                dilation = _first(_arg(args, kwargs, 4, "dilation", 1)) if func in _MAX_POOL else 1
                op = "max pool" if func in _MAX_POOL else "avg pool"
            if func not in _CONV and out.shape[-1] == 1 and kernel >= x.shape[-1]:
                op = "global pool"  # a pool whose window is the whole map, adaptive or not
            rf_out = rf_in + dilation * (kernel - 1) * jump_in
            jump_out = jump_in * stride
            self.rows.append(RFRow(layer, op, kernel, stride, padding if isinstance(padding, int) else -1, dilation,
                                   int(x.shape[-1]), int(out.shape[-1]), jump_in, jump_out, rf_in, rf_out))
            self.set(out, rf_out, jump_out)
        else:  # elementwise / normalization / activation: the widest input decides
            self.set(out, max(i[0] for i in inputs), max(i[1] for i in inputs))
        return out


def receptive_field_table(model: nn.Module, input_size: int = 32, in_channels: int = 3) -> list[RFRow]:
    """The receptive-field table of ``model`` for square (1, in_channels, input_size, input_size) inputs.

    One forward pass in ``eval()`` mode on zeros, on the model's device; the model's mode is
    restored and nothing in it changes.

    Returns:
        :class:`RFRow` per convolution and pooling call, in forward order. ``rows[-1].rf_out`` is
        the receptive field at the last such layer.
    """
    device = next(model.parameters()).device
    tracker = _Tracker()
    handles = []

    def enter(name):
        def hook(module, args):
            tracker.names.append(name)  # returns None: the input is left as it is
        return hook

    def leave(module, args, output):
        tracker.names.pop()  # returns None: a forward hook's return value would replace the output

    for name, module in model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
    try:
        with preserved(model):
            model.eval()
            x = torch.zeros(1, in_channels, input_size, input_size, device=device)
            tracker.set(x, 1, 1)
            with torch.no_grad(), tracker:
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return tracker.rows


def receptive_field_growth(rows: list[RFRow]) -> list[int]:
    """The receptive field (pixels) after each convolution or pooling layer, in forward order, up to
    the feature map that enters global pooling: the one source of the number shown in tables, plots
    and README.

    Entry ``i`` is the largest receptive field reached by row ``i`` or any row before it, so a
    parallel branch with a smaller field (a projection shortcut) does not lower the curve. Rows
    from the first global pool on are left out: global pooling trivially sees the whole image, and
    a head after it (DilatedNet's 1x1 convolution) would otherwise report the pool's field (91 px
    for DilatedNet instead of the 67 px its last convolution sees).

    Args:
        rows: :func:`receptive_field_table` of a model.

    Returns:
        One int per row before the first global pool (all rows when there is none); empty for no rows.
    """
    fields: list[int] = []
    for row in rows:
        if row.op == "global pool":
            break
        fields.append(max(row.rf_out, fields[-1]) if fields else row.rf_out)
    return fields


def output_receptive_field(model: nn.Module, input_size: int = 32) -> int:
    """Receptive field (pixels) of the feature map that enters global pooling (or of the last layer
    when there is none): the last value of :func:`receptive_field_growth`.

    Raises:
        ValueError: the model has no convolution or pooling layer before global pooling.
    """
    growth = receptive_field_growth(receptive_field_table(model, input_size))
    if not growth:
        raise ValueError(f"{type(model).__name__} has no convolution or pooling layer before global pooling: "
                         "it has no receptive field to report")
    return growth[-1]


def format_receptive_field_table(rows: list[RFRow]) -> str:
    """The table as aligned text, one line per layer."""
    header = ("layer", "op", "k", "s", "p", "d", "n_in", "n_out", "j_in", "j_out", "r_in", "r_out")
    lines = [(r.layer, r.op, r.kernel, r.stride, r.padding, r.dilation, r.size_in, r.size_out, r.jump_in,
              r.jump_out, r.rf_in, r.rf_out) for r in rows]
    widths = [max(len(str(v)) for v in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*map(str, line)) for line in (header, *lines))


def plot_receptive_fields(tables: dict[str, Sequence], image_size: int = 32) -> Figure:
    """Receptive field along each model's layers, one line per model.

    Point ``i`` is :func:`cifarhelpers.models.receptive_field.receptive_field_growth`'s entry ``i``: the
    largest receptive field (pixels) reached by the ``i``-th convolution or pooling layer in forward
    order, up to the feature map entering global pooling; the legend's number is its last value,
    :func:`~cifarhelpers.models.receptive_field.output_receptive_field`, as in the notebook's table.

    Args:
        tables: model name -> rows of :func:`cifarhelpers.models.receptive_field.receptive_field_table`.
        image_size: side of the input image in pixels, drawn as a dashed line.
    """
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for name, rows in tables.items():
        fields = receptive_field_growth(rows)
        ax.plot(np.arange(1, len(fields) + 1), fields, "o-", markersize=3, label=f"{name} ({fields[-1]} px)")
    ax.axhline(image_size, color=GREY, linestyle="--", label=f"image side ({image_size} px)")
    ax.set(xlabel="convolution / pooling layer (forward order)", ylabel="receptive field (pixels)",
           title="Receptive field growth, up to global pooling")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
