"""Helpers copied into generated PyTorch files: the layers that ``torch.nn`` lacks.

This module is real, importable code (so it is linted, doctested and scripted), but the
torch generator never imports it: it reads this file as text and copies the definitions a
model needs, with the helpers they use, into the generated file (see
:func:`inceptdsl.backends.base.read_prelude`). Definitions stand in name order (classes,
then functions; ``same_padding`` just before its user), the order they take in a generated
file. ``BatchNorm1dNoScale`` is written from ``BatchNorm2dNoScale``'s source with ``1d``
for ``2d``, so the two never drift apart.

Every module here compiles with TorchScript, as generated models must:

>>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> pool2d_padded(x, "max", [3, 3], [2, 2])[0, 0].tolist()  # TensorFlow's 'same'
[[10.0, 11.0], [14.0, 15.0]]
>>> layers = nn.Sequential(
...     PaddedConv2d(1, 4, 2, pad=(0, 1, 0, 1)), BatchNorm2dNoScale(4), LayerNorm2d(4),
...     Pool2dPadded("avg", 3, 2, count_include_pad=False), DropPath(0.1),
...     ChannelSlice(0, 2), Scale(0.5), L2Norm())
>>> torch.jit.script(layers.eval())(x).shape
torch.Size([1, 2, 2, 2])
>>> sorted(BatchNorm2dNoScale(4).state_dict())  # a shift, no scale
['bias', 'num_batches_tracked', 'running_mean', 'running_var']
>>> make_divisible(64 * 0.75), drop_path(x, 0.5, training=False) is x
(48, True)
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchNorm2dNoScale(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that learns a shift (``bias``) but no scale, like Keras's
    ``BatchNormalization(scale=False)``: its state_dict has no ``weight``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        del self.weight
        self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class ChannelSlice(nn.Module):
    """Channels start..stop-1 of the input."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.start:self.stop]


class DropPath(nn.Module):
    """Stochastic depth as a module (timm's DropPath)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)


class L2Norm(nn.Module):
    """``F.normalize(x, p=2, dim=1)`` as a module."""

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=self.eps)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (timm's LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PaddedConv2d(nn.Conv2d):
    """A Conv2d that zero-pads its input first, by (left, right, top, bottom).

    Asymmetric padding (e.g. TensorFlow's 'same' at stride 2); the parameters are those of
    nn.Conv2d, so state_dicts are interchangeable.
    """

    def __init__(self, *args, pad: tuple[int, int, int, int] = (0, 0, 0, 0), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pad = list(pad)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(F.pad(x, self.pad), self.weight, self.bias)


class Pool2dPadded(nn.Module):
    """``pool2d_padded`` as a module: pooling with asymmetric or TensorFlow 'same' padding."""

    def __init__(self, kind: str, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int], pad: tuple[int, int, int, int] | None = None,
                 dilation: tuple[int, int] = (1, 1), count_include_pad: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self.kernel_size = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        self.stride = [stride] * 2 if isinstance(stride, int) else list(stride)
        self.pad: list[int] | None = None if pad is None else list(pad)
        self.dilation: list[int] = list(dilation)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return pool2d_padded(x, self.kind, self.kernel_size, self.stride, self.pad,
                             self.dilation, self.count_include_pad)


class Scale(nn.Module):
    """Multiplies its input by a constant factor."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples with probability p in training (identity in eval)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (the width knob)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def same_padding(size: list[int], kernel_size: list[int], stride: list[int],
                 dilation: list[int]) -> list[int]:
    """TensorFlow's 'same' padding for ``F.pad`` (left, right, top, bottom): the output
    size is ceil(size / stride) and the odd pixel of padding goes to the end."""
    pads: list[int] = []
    for i in [1, 0]:
        out = (size[i] + stride[i] - 1) // stride[i]
        total = max((out - 1) * stride[i] + (kernel_size[i] - 1) * dilation[i] + 1 - size[i], 0)
        pads += [total // 2, total - total // 2]
    return pads


def pool2d_padded(x: Tensor, kind: str, kernel_size: list[int], stride: list[int],
                  pad: list[int] | None = None, dilation: list[int] | None = None,
                  count_include_pad: bool = True) -> Tensor:
    """Max or average pooling after padding by ``pad`` (left, right, top, bottom), or by
    TensorFlow's 'same' padding for this input size when ``pad`` is None.

    Max pooling pads with -inf; the average leaves the padding out of its divisor unless
    ``count_include_pad`` (TensorFlow's 'same' average pooling leaves it out).
    """
    dil = [1, 1] if dilation is None else dilation
    pads = same_padding(list(x.shape[-2:]), kernel_size, stride, dil) if pad is None else pad
    if kind == "max":
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel_size, stride, 0, dil)
    out = F.avg_pool2d(F.pad(x, pads), kernel_size, stride)
    if count_include_pad:
        return out
    counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), kernel_size, stride)
    return out / counts
