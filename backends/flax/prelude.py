"""Helpers copied into generated Flax files: PyTorch semantics on channels-last (NHWC) arrays.

This module is real, importable code (so it is linted and doctested), but the Flax generator
never imports it: it reads this file as text and copies the definitions a model needs, with
the helpers they use, into the generated file. Every op lowering that needs more than one
``jax``/``flax`` call lives here, in one place.

>>> x = jnp.arange(25.0).reshape(1, 5, 5, 1)
>>> max_pool2d(x, 2, 2, ceil_mode=True)[0, :, :, 0].tolist()
[[6.0, 8.0, 9.0], [16.0, 18.0, 19.0], [21.0, 23.0, 24.0]]
"""

from __future__ import annotations

import math
from functools import partial  # noqa: F401  (copied into files that use it)

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (the width knob)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _pair(value) -> tuple:
    """``3`` -> ``(3, 3)``; pairs pass through.

    >>> _pair(3), _pair((1, 7))
    ((3, 3), (1, 7))
    """
    return (value, value) if isinstance(value, int) else tuple(value)


def _padding(pad) -> tuple | str:
    """PyTorch conv padding (int, (h, w), (top, bottom, left, right), 'same' or 'valid')
    for ``nnx.Conv``; 'same' is PyTorch's (stride 1), which is XLA's 'SAME' there.

    >>> _padding(1), _padding((0, 3)), _padding("same")
    (((1, 1), (1, 1)), ((0, 0), (3, 3)), 'SAME')
    """
    if isinstance(pad, str):
        return pad.upper()
    if isinstance(pad, int):
        return ((pad, pad), (pad, pad))
    if len(pad) == 4:
        return ((pad[0], pad[1]), (pad[2], pad[3]))
    return ((pad[0], pad[0]), (pad[1], pad[1]))


class Sequential(nnx.List):
    """``nn.Sequential``: children numbered 0, 1, ... at the top level, like PyTorch.

    (``nnx.Sequential`` nests its children under ``.layers``, which breaks the 1:1 mapping of
    PyTorch ``state_dict`` keys.)

    >>> Sequential([nnx.relu, jnp.negative])(jnp.array([-1.0, 2.0])).tolist()
    [-0.0, -2.0]
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self:
            x = layer(x)
        return x


class NamedSequential(nnx.Module):
    """``nn.Sequential(OrderedDict(...))``: children are attributes, called in order.

    >>> NamedSequential({"act": nnx.relu, "0": jnp.negative})(jnp.array([-1.0, 2.0])).tolist()
    [-0.0, -2.0]
    """

    def __init__(self, layers: dict) -> None:
        self.layer_names = tuple(layers)
        for name, layer in layers.items():
            setattr(self, name, layer)

    def __call__(self, x: jax.Array) -> jax.Array:
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x


class BatchNorm(nnx.Module):
    """``nn.BatchNorm1d/2d`` on channels-last input, with PyTorch's statistics exactly.

    The variables are those of ``nnx.BatchNorm`` (``scale``, ``bias``, ``mean``, ``var``) and
    ``momentum`` follows the flax convention (``1 - torch momentum``), but in training the
    running variance is updated with the *unbiased* batch variance, as PyTorch does.
    ``use_running_average`` is the eval switch that ``model.eval()``/``model.train()`` flip.

    >>> bn = BatchNorm(2, use_running_average=False)
    >>> y = bn(jnp.array([[0.0, 1.0], [2.0, 5.0]]))
    >>> bn.var[...].tolist()  # 0.9 * 1 + 0.1 * unbiased variance (2 and 8)
    [1.100000023841858, 1.7000000476837158]
    """

    def __init__(self, num_features: int, *, use_running_average: bool = False,
                 momentum: float = 0.9, epsilon: float = 1e-5, use_scale: bool = True,
                 use_bias: bool = True, track_running_stats: bool = True) -> None:
        shape = (num_features,)
        self.scale = nnx.Param(jnp.ones(shape)) if use_scale else nnx.data(None)
        self.bias = nnx.Param(jnp.zeros(shape)) if use_bias else nnx.data(None)
        self.mean = nnx.BatchStat(jnp.zeros(shape)) if track_running_stats else nnx.data(None)
        self.var = nnx.BatchStat(jnp.ones(shape)) if track_running_stats else nnx.data(None)
        self.num_features = num_features
        self.use_running_average = use_running_average
        self.momentum = momentum
        self.epsilon = epsilon

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.use_running_average and self.mean is not None:
            mean, var = self.mean[...], self.var[...]
        else:
            axes = tuple(range(x.ndim - 1))
            mean = x.mean(axes)
            var = jnp.square(x - mean).mean(axes)
            if self.mean is not None:
                n = x.size // x.shape[-1]
                m = self.momentum
                unbiased = var * (n / max(n - 1, 1))
                self.mean[...] = lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
                self.var[...] = lax.stop_gradient(m * self.var[...] + (1 - m) * unbiased)
        y = (x - mean) * lax.rsqrt(var + self.epsilon)
        if self.scale is not None:
            y = y * self.scale[...]
        if self.bias is not None:
            y = y + self.bias[...]
        return y

    def set_view(self, use_running_average: bool | None = None) -> None:
        """Used by ``nnx.view``: switch between batch and running statistics."""
        if use_running_average is not None:
            self.use_running_average = use_running_average


def _pool_pads(padding, size, kernel, step, dil) -> list[tuple[int, int]]:
    """(before, after) per spatial axis: PyTorch's symmetric int or (h, w), explicit
    ((top, bottom), (left, right)), or TensorFlow's ``"same"`` for this input size.

    >>> _pool_pads("same", (74, 74), (3, 3), (2, 2), (1, 1))
    [(0, 1), (0, 1)]
    """
    if padding == "same":
        pads = []
        for length, k, s, d in zip(size, kernel, step, dil, strict=True):
            total = max((-(-length // s) - 1) * s + (k - 1) * d + 1 - length, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        return [tuple(p) for p in padding]
    return [(p, p) for p in _pair(padding)]


def _pool_window(shape: tuple, kernel_size, stride, padding, dilation, ceil_mode: bool):
    """Window, strides, dilation, explicit padding and output size of a PyTorch pool (NHWC).

    ``ceil_mode`` pads the end by the ceil surplus; as in PyTorch, a last window that would
    start in the right padding is dropped.

    >>> _pool_window((1, 112, 112, 8), 3, 2, 0, 1, True)[3]
    [(0, 0), (0, 1), (0, 1), (0, 0)]
    """
    kernel, dil = _pair(kernel_size), _pair(dilation)
    step = kernel if stride is None else _pair(stride)
    given = _pool_pads(padding, shape[1:3], kernel, step, dil)
    pads, outs = [], []
    for length, k, s, (p0, p1), d in zip(shape[1:3], kernel, step, given, dil, strict=True):
        span = length + p0 + p1 - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= length + p0:
            out -= 1
        needed = (out - 1) * s + d * (k - 1) + 1
        pads.append((p0, max(needed - length - p0, p1)))
        outs.append(out)
    return (1, *kernel, 1), (1, *step, 1), (1, *dil, 1), [(0, 0), *pads, (0, 0)], outs


def max_pool2d(x: jax.Array, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> jax.Array:
    """``F.max_pool2d`` on NHWC: padding with -inf, ``ceil_mode`` as in PyTorch.

    >>> max_pool2d(jnp.ones((1, 112, 112, 2)), 3, stride=2, ceil_mode=True).shape
    (1, 56, 56, 2)
    >>> max_pool2d(jnp.arange(25.0).reshape(1, 5, 5, 1), 2, 1, dilation=2)[0, :, :, 0].tolist()
    [[12.0, 13.0, 14.0], [17.0, 18.0, 19.0], [22.0, 23.0, 24.0]]
    """
    window, strides, dil, pads, outs = _pool_window(x.shape, kernel_size, stride, padding,
                                                    dilation, ceil_mode)
    if dil == (1, 1, 1, 1):
        return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads)
    # reduce_window has no gradient with a window dilation: the max of the shifted views
    x = jnp.pad(x, pads, constant_values=-jnp.inf)
    (kh, kw), (sh, sw), (dh, dw) = window[1:3], strides[1:3], dil[1:3]
    out = None
    for i in range(kh):
        for j in range(kw):
            view = x[:, i * dh:i * dh + sh * (outs[0] - 1) + 1:sh,
                     j * dw:j * dw + sw * (outs[1] - 1) + 1:sw, :]
            out = view if out is None else jnp.maximum(out, view)
    return out


def _window_counts(length: int, k: int, s: int, pad: tuple[int, int], out: int,
                   include_pad: bool):
    """Elements per window along one axis, as PyTorch's ``avg_pool2d`` divides by."""
    starts = np.arange(out) * s - pad[0]
    ends = np.minimum(starts + k, length + pad[1])
    if not include_pad:
        starts, ends = np.maximum(starts, 0), np.minimum(ends, length)
    return ends - starts


def avg_pool2d(x: jax.Array, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> jax.Array:
    """``F.avg_pool2d`` on NHWC, with PyTorch's divisor (``count_include_pad`` both ways).

    >>> avg_pool2d(jnp.ones((1, 4, 4, 1)), 3, 1, 1, count_include_pad=True)[0, 0, 0, 0].item()
    0.4444444477558136
    """
    window, strides, _, pads, outs = _pool_window(x.shape, kernel_size, stride, padding, 1,
                                                  ceil_mode)
    summed = lax.reduce_window(x, 0.0, lax.add, window, strides, pads)
    given = _pool_pads(padding, x.shape[1:3], window[1:3], strides[1:3], (1, 1))
    counts = [_window_counts(length, k, s, pad, out, count_include_pad) for
              length, k, s, pad, out in zip(x.shape[1:3], window[1:3], strides[1:3],
                                            given, outs, strict=True)]
    divisor = np.outer(counts[0], counts[1])[None, :, :, None]
    return summed / jnp.asarray(divisor, x.dtype)


def _adaptive_pool(x: jax.Array, size, reduce) -> jax.Array:
    """Adaptive pooling: output cell i covers floor(i*L/o) to ceil((i+1)*L/o) (PyTorch)."""
    (oh, ow), (h, w) = _pair(size), x.shape[1:3]
    rows = []
    for i in range(oh):
        h0, h1 = i * h // oh, -(-(i + 1) * h // oh)
        cells = [reduce(x[:, h0:h1, j * w // ow:-(-(j + 1) * w // ow)], axis=(1, 2))
                 for j in range(ow)]
        rows.append(jnp.stack(cells, axis=1))
    return jnp.stack(rows, axis=1)


def adaptive_avg_pool2d(x: jax.Array, size) -> jax.Array:
    """``F.adaptive_avg_pool2d`` on NHWC.

    >>> adaptive_avg_pool2d(jnp.arange(5.0).reshape(1, 1, 5, 1), (1, 2))[0, 0, :, 0].tolist()
    [1.0, 3.0]
    """
    return _adaptive_pool(x, size, jnp.mean)


def adaptive_max_pool2d(x: jax.Array, size) -> jax.Array:
    """``F.adaptive_max_pool2d`` on NHWC."""
    return _adaptive_pool(x, size, jnp.max)


class MaxPool2d(nnx.Module):
    """``nn.MaxPool2d`` on NHWC input (see ``max_pool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def __call__(self, x: jax.Array) -> jax.Array:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode)


class AvgPool2d(nnx.Module):
    """``nn.AvgPool2d`` on NHWC input (see ``avg_pool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def __call__(self, x: jax.Array) -> jax.Array:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)


class AdaptiveAvgPool2d(nnx.Module):
    """``nn.AdaptiveAvgPool2d`` on NHWC input."""

    def __init__(self, size) -> None:
        self.size = size

    def __call__(self, x: jax.Array) -> jax.Array:
        return adaptive_avg_pool2d(x, self.size)


class AdaptiveMaxPool2d(nnx.Module):
    """``nn.AdaptiveMaxPool2d`` on NHWC input."""

    def __init__(self, size) -> None:
        self.size = size

    def __call__(self, x: jax.Array) -> jax.Array:
        return adaptive_max_pool2d(x, self.size)


def local_response_norm(x: jax.Array, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> jax.Array:
    """``F.local_response_norm`` on NHWC: ``x / (k + alpha * avg(x^2))^beta``, where the
    average runs over a zero-padded window of ``size`` channels.

    >>> y = local_response_norm(jnp.full((1, 1, 1, 3), 2.0), 3, alpha=3.0, beta=1.0)
    >>> [round(v, 6) for v in y[0, 0, 0].tolist()]  # 2 / (1 + 3 * 8/3), 2 / (1 + 3 * 12/3)
    [0.222222, 0.153846, 0.222222]
    """
    pads = [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)]
    window = (1,) * (x.ndim - 1) + (size,)
    summed = lax.reduce_window(jnp.square(x), 0.0, lax.add, window, (1,) * x.ndim, pads)
    return x / (k + alpha * summed / size) ** beta


class LocalResponseNorm(nnx.Module):
    """``nn.LocalResponseNorm`` on NHWC input."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def __call__(self, x: jax.Array) -> jax.Array:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """``F.normalize(x, p=2, dim=1)``: channels (last axis) divided by max(||x||, eps).

    >>> l2_normalize(jnp.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


class L2Norm(nnx.Module):
    """``F.normalize(x, p=2, dim=1)`` as a module."""

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        return l2_normalize(x, self.eps)


class Scale(nnx.Module):
    """Multiplies its input by a constant factor."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, x: jax.Array) -> jax.Array:
        return x * self.factor


class LayerScale(nnx.Param):
    """A learned per-channel scale held by its module (timm's ``gamma``); ``init`` is kept
    so that an abstractly built model can be filled in."""


class DropPath(nnx.Module):
    """Stochastic depth: zero whole samples with probability p in training; identity once
    ``model.eval()`` has set ``deterministic``."""

    def __init__(self, p: float = 0.0, *, rngs: nnx.Rngs) -> None:
        self.p = p
        self.deterministic = False
        self.rngs = rngs.dropout.fork() if p > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.deterministic or self.p == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = jax.random.bernoulli(self.rngs(), 1.0 - self.p, shape)
        return jnp.where(keep, x / (1.0 - self.p), 0.0)


def split_channels(x: jax.Array, sizes) -> list:
    """``torch.split(x, sizes, dim=1)`` for NHWC: the runs of channels, in order."""
    out, start = [], 0
    for size in sizes:
        out.append(x[..., start:start + size])
        start += size
    return out


def flatten(x: jax.Array) -> jax.Array:
    """``torch.flatten(x, 1)`` of the NCHW tensor: a NHWC map is put in NCHW order first,
    so a following linear layer takes PyTorch's weights unchanged.

    >>> flatten(jnp.arange(4.0).reshape(1, 1, 2, 2)).tolist()  # H=1, W=2, C=2
    [[0.0, 2.0, 1.0, 3.0]]
    """
    if x.ndim == 4:
        x = jnp.transpose(x, (0, 3, 1, 2))
    return x.reshape(x.shape[0], -1)


def identity(x: jax.Array) -> jax.Array:
    """Returns its input."""
    return x


def cross_entropy(logits: jax.Array, target: jax.Array,
                  label_smoothing: float = 0.0) -> jax.Array:
    """``F.cross_entropy`` with class-index targets and mean reduction.

    >>> round(cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 1])).item(), 4)
    1.3863
    """
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, target[:, None], axis=-1)[:, 0]
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * logp.mean(-1)
    return nll.mean()


def _initialize(model: nnx.Module, seed: int = 0) -> None:
    """Concrete values for an abstractly built model (``nnx.eval_shape``), without compiling.

    Conv and linear weights and biases are drawn like PyTorch's default initialisation
    (uniform in +-1/sqrt(fan_in)) with numpy; BatchNorm starts at scale 1, bias 0, mean 0,
    var 1; each dropout gets its own RNG key.
    """
    rng = np.random.default_rng(seed)
    keys = 0
    for _, node in nnx.iter_graph(model):
        if isinstance(node, (nnx.Conv, nnx.Linear)):
            shape = node.kernel.get_value().shape
            bound = 1 / math.sqrt(math.prod(shape[:-1]))
            for var in (node.kernel, node.bias):
                if var is not None:
                    value = rng.uniform(-bound, bound, var.get_value().shape)
                    var.set_value(jnp.asarray(value.astype(np.float32)))
        elif hasattr(node, "use_running_average"):  # BatchNorm
            for var, fill in ((node.scale, 1), (node.bias, 0), (node.mean, 0), (node.var, 1)):
                if var is not None:
                    var.set_value(jnp.asarray(np.full(var.get_value().shape, fill, np.float32)))
        elif isinstance(node, (nnx.LayerNorm, nnx.GroupNorm)):
            for var, fill in ((node.scale, 1), (node.bias, 0)):
                if var is not None:
                    var.set_value(jnp.asarray(np.full(var.get_value().shape, fill, np.float32)))
        elif isinstance(node, nnx.Param) and "init" in node.get_metadata():  # a layer scale
            init = node.get_metadata()["init"]
            node.set_value(jnp.asarray(np.full(node.get_value().shape, init, np.float32)))
        elif isinstance(node, nnx.RngKey):
            node.set_value(jax.random.key(seed + keys))
            keys += 1
        elif isinstance(node, nnx.RngCount):
            node.set_value(jnp.zeros((), jnp.uint32))
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Variable) and isinstance(node.get_value(), jax.ShapeDtypeStruct):
            raise TypeError(f"no initial value for {'.'.join(map(str, path))}")


_TORCH_NAMES = {"weight": ("kernel", "scale"), "bias": ("bias",), "running_mean": ("mean",),
                "running_var": ("var",)}


def _to_numpy(value) -> np.ndarray:
    """A private copy of a torch tensor (without importing torch) or of an array.

    A copy, because jax may alias host memory and torch updates buffers in place.
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def _flax_layout(value: np.ndarray) -> np.ndarray:
    """Conv OIHW -> HWIO (grouped and depthwise alike), linear (out, in) -> (in, out)."""
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 2:
        return value.T
    return value


def load_torch_state_dict(model: nnx.Module, state_dict) -> nnx.Module:
    """Copy a PyTorch ``state_dict`` of the same spec into ``model`` (in place) and return it.

    Values may be torch tensors or numpy arrays. Strict: every key must find its variable
    (``num_batches_tracked`` aside) and every parameter and batch statistic must be set,
    otherwise nothing is changed and ``ValueError`` lists what is missing or unexpected.
    """
    targets = {".".join(map(str, path)): var for path, var in nnx.iter_graph(model)
               if isinstance(var, (nnx.Param, nnx.BatchStat))}
    updates, unexpected, mismatched = {}, [], []
    for key, tensor in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        names = [f"{prefix}.{n}" if prefix else n for n in _TORCH_NAMES.get(leaf, ())]
        names.append(key)  # a tensor held by its module under its own name (layer scale)
        name = next((n for n in names if n in targets), None)
        if name is None or name in updates:
            unexpected.append(key)
            continue
        value = _flax_layout(_to_numpy(tensor))
        if value.shape != targets[name].get_value().shape:
            mismatched.append(f"{key} {value.shape} -> {name} "
                              f"{targets[name].get_value().shape}")
        updates[name] = value
    missing = sorted(set(targets) - set(updates))
    if missing or unexpected or mismatched:
        problems = [f"{title}: {', '.join(items)}" for title, items in (
            ("missing in the state_dict", missing), ("unexpected keys", unexpected),
            ("shape mismatches", mismatched)) if items]
        raise ValueError("state_dict does not fit the model; " + "; ".join(problems))
    for name, value in updates.items():
        var = targets[name]
        var.set_value(jnp.asarray(value, var.get_value().dtype))
    return model
