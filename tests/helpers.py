"""Helpers shared by the tests, one per concern: numeric comparison, golden files, the
no-framework check, generated-code checks, the reference models, the IR interpreter."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
import warnings
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


# ---------------------------------------------------------------------- numbers


def randomize_bn(model) -> None:
    """Non-trivial BN statistics and affine parameters, so BN mistakes show up."""
    import torch

    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            if m.track_running_stats:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.weight is not None:  # None for a shift-only BN (scale=false)
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def relative_diff(a, b) -> float:
    """Largest absolute difference relative to the largest magnitude of ``a``.

    Works for torch tensors, jax and numpy arrays alike (compared in float64).

    >>> relative_diff([1.0, -2.0], [1.0, -2.5])
    0.25
    """
    import numpy as np

    a, b = (np.asarray(v.detach() if hasattr(v, "detach") else v, np.float64) for v in (a, b))
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    return float(np.abs(a - b).max() / np.abs(a).max())


# ---------------------------------------------------------------------- golden files


def assert_matches_golden(text: str, name: str) -> None:
    """``text`` equals ``tests/golden/NAME``. With ``INCEPTDSL_UPDATE_GOLDEN=1`` a differing
    file is rewritten, and the test still fails: a rewrite is never a pass."""
    path = GOLDEN / name
    old = path.read_text() if path.exists() else None
    if text == old:
        return
    if os.environ.get("INCEPTDSL_UPDATE_GOLDEN"):
        path.write_text(text)
        raise AssertionError(f"{path} rewritten: review the diff and rerun")
    raise AssertionError(f"{path} differs from the output: run with INCEPTDSL_UPDATE_GOLDEN=1 "
                         "to rewrite it, review the diff, rerun")


# ---------------------------------------------------------------------- no frameworks

FRAMEWORKS = ("torch", "torchvision", "jax", "jaxlib", "flax")
_BLOCKER = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {FRAMEWORKS!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, _Block())
"""
CLI_MAIN = "from inceptdsl.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"


def run_without_frameworks(*argv: str, code: str = CLI_MAIN) -> subprocess.CompletedProcess:
    """Run ``inceptdsl ARGV`` (or Python ``code``) in a fresh interpreter where importing
    torch, torchvision, jax or flax raises ImportError: it must exit 0."""
    proc = subprocess.run([sys.executable, "-c", _BLOCKER + code, *argv], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# ---------------------------------------------------------------------- generated code


def ruff_report(source: str, path) -> str:
    """``ruff check --isolated`` on generated source: empty when clean, else its report."""
    path = Path(path)
    path.write_text(source)
    ruff = Path(sys.executable).parent / "ruff"
    cmd = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    proc = subprocess.run([*cmd, "check", "--isolated", "--no-cache", str(path)],
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr


def top_level_imports(source: str) -> set[str]:
    """The root packages a generated file imports.

    >>> sorted(top_level_imports("import torch.nn as nn\\nfrom typing import Any\\nx = 1"))
    ['torch', 'typing']
    """
    return {line.split()[1].split(".")[0] for line in source.splitlines()
            if line.startswith(("import ", "from "))}


def compiled_with_hash_seeds(backend: str, tmp_path, seeds=("1", "2")) -> list[bytes]:
    """``inceptdsl compile inception_v3`` once per PYTHONHASHSEED: the bytes of each file."""
    outputs = []
    for seed in seeds:
        out = tmp_path / f"v3_{backend}_{seed}.py"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "inceptdsl.cli", "compile", "inception_v3",
                        "--backend", backend, "-o", str(out)], check=True, env=env)
        outputs.append(out.read_bytes())
    return outputs


# ---------------------------------------------------------------------- reference models


def _torchvision(name: str, **kwargs):
    import torchvision

    return getattr(torchvision.models, name)(weights=None, init_weights=False, **kwargs)


def _timm(name: str):
    import timm

    return timm.create_model(name, pretrained=False)


def _bninception():
    import pretrainedmodels

    return pretrainedmodels.bninception(pretrained=None)


def _facenet():
    import facenet_pytorch

    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False)


def _inception_resnet_v1_paper():
    """The paper's Inception-ResNet-v1 assembled from facenet_pytorch's modules (the same
    stem and blocks): its five Inception-ResNet-C blocks, then average pooling, dropout
    (keep 0.8) and a 1000-way linear layer; an independent check of the derived figures."""
    import torch
    from torch import nn

    trunk = _facenet()
    names = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
             "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3"]

    class Paper(nn.Module):
        def __init__(self):
            super().__init__()
            for name in names:
                setattr(self, name, getattr(trunk, name))
            self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(0.2)
            self.logits = nn.Linear(1792, 1000)

        def forward(self, x):
            for name in names:
                x = getattr(self, name)(x)
            return self.logits(torch.flatten(self.dropout(self.avgpool_1a(x)), 1))

    return Paper()


# bvlc_googlenet/train_val.prototxt: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
# pool proj), as in the paper's table 1
CAFFE_INCEPTION = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


def _caffe_googlenet(aux_logits: bool = True):
    """GoogLeNet as released in Caffe (``bvlc_googlenet/train_val.prototxt``), written
    layer by layer from that prototxt with torch modules: convolutions with a bias, each
    followed by ReLU, no BN; LRN (size 5, alpha 1e-4, beta 0.75) after pool1 and conv2;
    Caffe pooling rounds output sizes up (``ceil_mode=True``); the third branch is 5x5;
    each auxiliary classifier is 5x5/3 average pooling, 1x1 conv 128 + ReLU, fc 1024 +
    ReLU, dropout 0.7, fc 1000. Modules are named like the spec's nodes, so the state_dict
    keys can be compared as well."""
    import torch
    from torch import nn

    class Conv(nn.Module):  # a Caffe convolution layer and its in-place ReLU
        def __init__(self, cin, cout, kernel, stride=1, pad=0):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, bias=True)

        def forward(self, x):
            return torch.relu(self.conv(x))

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, proj):
            super().__init__()
            self.branch1 = Conv(cin, c1, 1)
            self.branch2 = nn.Sequential(Conv(cin, c3r, 1), Conv(c3r, c3, 3, pad=1))
            self.branch3 = nn.Sequential(Conv(cin, c5r, 1), Conv(c5r, c5, 5, pad=2))
            self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                         Conv(cin, proj, 1))

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                              self.branch4(x)], 1)

    class Aux(nn.Module):  # loss1/* and loss2/*
        def __init__(self, cin):
            super().__init__()
            self.conv = Conv(cin, 128, 1)
            self.fc1 = nn.Linear(128 * 4 * 4, 1024)
            self.fc2 = nn.Linear(1024, 1000)

        def forward(self, x):
            x = self.conv(nn.functional.avg_pool2d(x, 5, 3, ceil_mode=True))
            x = torch.relu(self.fc1(torch.flatten(x, 1)))
            return self.fc2(nn.functional.dropout(x, 0.7, self.training))

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = Conv(3, 64, 7, stride=2, pad=3)
            self.conv2 = Conv(64, 64, 1)
            self.conv3 = Conv(64, 192, 3, pad=1)
            for name, args in CAFFE_INCEPTION.items():
                setattr(self, name, Inception(*args))
            if aux_logits:
                self.aux1, self.aux2 = Aux(512), Aux(528)
            self.fc = nn.Linear(1024, 1000)

        def forward(self, x):
            pool = functools.partial(nn.functional.max_pool2d, kernel_size=3, stride=2,
                                     ceil_mode=True)
            lrn = functools.partial(nn.functional.local_response_norm, size=5, alpha=1e-4,
                                    beta=0.75, k=1.0)
            x = lrn(pool(self.conv1(x)))
            x = pool(lrn(self.conv3(self.conv2(x))))
            x = pool(self.inception3b(self.inception3a(x)))
            x = self.inception4a(x)
            aux1 = self.aux1(x) if aux_logits and self.training else None
            x = self.inception4d(self.inception4c(self.inception4b(x)))
            aux2 = self.aux2(x) if aux_logits and self.training else None
            x = pool(self.inception4e(x))
            x = self.inception5b(self.inception5a(x))
            x = nn.functional.avg_pool2d(x, 7, 1, ceil_mode=True)
            x = self.fc(torch.flatten(nn.functional.dropout(x, 0.4, self.training), 1))
            return (x, aux1, aux2) if aux1 is not None else x

    return GoogLeNet()


BUILDERS = {
    "tv_googlenet_aux": lambda: _torchvision("googlenet", aux_logits=True),
    "tv_googlenet": lambda: _torchvision("googlenet", aux_logits=False),
    "tv_inception_v3_aux": lambda: _torchvision("inception_v3", aux_logits=True),
    "tv_inception_v3": lambda: _torchvision("inception_v3", aux_logits=False),
    "timm_inception_v3": lambda: _timm("inception_v3"),
    "timm_inception_v4": lambda: _timm("inception_v4"),
    "timm_inception_resnet_v2": lambda: _timm("inception_resnet_v2"),
    "timm_legacy_xception": lambda: _timm("legacy_xception"),
    "pretrainedmodels_bninception": _bninception,
    "facenet_inception_resnet_v1": _facenet,
    "paper_inception_resnet_v1": _inception_resnet_v1_paper,
    "caffe_googlenet_aux": lambda: _caffe_googlenet(aux_logits=True),
    "caffe_googlenet": lambda: _caffe_googlenet(aux_logits=False),
    **{f"timm_{n}": functools.partial(_timm, n) for n in (
        "inception_next_atto", "inception_next_tiny", "inception_next_small",
        "inception_next_base")},
}


@functools.cache
def _built(name: str):
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BUILDERS[name]().eval()


def reference(name: str):
    """A fresh copy of reference model ``name`` (a key of :data:`BUILDERS`), in eval mode,
    with seeded random weights (nothing is downloaded). Built once per process; every
    caller gets its own copy, so a test that changes it cannot affect another."""
    return copy.deepcopy(_built(name))


# ---------------------------------------------------------------------- IR interpreter


def _functional(op: str):
    """``(inputs, attrs, weight, bias, state) -> output`` for every op of the language,
    written from torch.nn.functional and the op's documented semantics (eval mode)."""
    import torch
    import torch.nn.functional as F

    from inceptdsl.ops import _pool_geometry, conv_out, conv_padding, pool_padding

    def conv(ins, a, w, b, s):
        p = conv_padding(a, tuple(ins[0].shape[2:]))
        return F.conv2d(F.pad(ins[0], (p[2], p[3], p[0], p[1])), w, b, a["stride"], 0,
                        a["dilation"], a["groups"])

    def padded(x, a, value: float):
        """``x`` padded explicitly (pool_padding: numbers, 4 sides, or 'same'), the output
        size by PyTorch's rule (ceil windows must start inside the input or left pad)."""
        p = pool_padding(a, tuple(x.shape[2:]))
        kernel, stride, _, dilation = _pool_geometry(a)
        size = [conv_out(n, k, st, d, p[2 * i], p[2 * i + 1], a["ceil"]) for i, (n, k, st, d)
                in enumerate(zip(x.shape[2:], kernel, stride, dilation, strict=True))]
        return F.pad(x, (p[2], p[3], p[0], p[1]), value=value), kernel, stride, dilation, size

    def maxpool(ins, a, w, b, s):
        x, kernel, stride, dilation, (h, w_) = padded(ins[0], a, float("-inf"))
        return F.max_pool2d(x, kernel, stride, 0, dilation, ceil_mode=True)[:, :, :h, :w_]

    def avgpool(ins, a, w, b, s):
        """Window sums over the padded input divided by the number of elements counted:
        the input, and the explicit padding when ``count_include_pad`` (never the ceil
        overflow)."""
        x, kernel, stride, _, (h, w_) = padded(ins[0], a, 0.0)
        inside = torch.ones_like(ins[0][:1, :1])
        mask, *_ = padded(inside, a, 1.0 if a["count_include_pad"] else 0.0)
        total = F.avg_pool2d(x, kernel, stride, 0, ceil_mode=True, divisor_override=1)
        count = F.avg_pool2d(mask, kernel, stride, 0, ceil_mode=True, divisor_override=1)
        return (total / count)[:, :, :h, :w_]

    def batchnorm(ins, a, w, b, s):
        tracked = a["track_running_stats"]
        return F.batch_norm(ins[0], s.get("running_mean"), s.get("running_var"), w, b,
                            not tracked, 0.0, a["eps"])

    return {
        "input": lambda ins, a, w, b, s: ins[0],
        "conv2d": conv,
        "batchnorm": batchnorm,
        "lrn": lambda ins, a, w, b, s: F.local_response_norm(ins[0], a["size"], a["alpha"],
                                                             a["beta"], a["k"]),
        "relu": lambda ins, a, w, b, s: F.relu(ins[0]),
        "relu6": lambda ins, a, w, b, s: ins[0].clamp(0, 6),
        "gelu": lambda ins, a, w, b, s: F.gelu(ins[0], approximate=a["approximate"]),
        "silu": lambda ins, a, w, b, s: ins[0] * torch.sigmoid(ins[0]),
        "sigmoid": lambda ins, a, w, b, s: 1 / (1 + torch.exp(-ins[0])),
        "hardsigmoid": lambda ins, a, w, b, s: (ins[0] + 3).clamp(0, 6) / 6,
        "softmax": lambda ins, a, w, b, s: torch.softmax(ins[0], 1),
        "layernorm": lambda ins, a, w, b, s: F.layer_norm(
            ins[0].movedim(1, -1), ins[0].shape[1:2], w, b, a["eps"]).movedim(-1, 1),
        "groupnorm": lambda ins, a, w, b, s: F.group_norm(ins[0], a["groups"], w, b, a["eps"]),
        "layer_scale": lambda ins, a, w, b, s: ins[0] * w.reshape(
            (1, -1) + (1,) * (ins[0].dim() - 2)),
        "drop_path": lambda ins, a, w, b, s: ins[0],
        "slice": lambda ins, a, w, b, s: ins[0][:, a["start"]:a["stop"]],
        "mul": lambda ins, a, w, b, s: torch.prod(torch.stack(torch.broadcast_tensors(*ins)),
                                                  0),
        "tanh": lambda ins, a, w, b, s: torch.tanh(ins[0]),
        "elu": lambda ins, a, w, b, s: torch.where(ins[0] > 0, ins[0], torch.expm1(ins[0])),
        "hardswish": lambda ins, a, w, b, s: ins[0] * (ins[0] + 3).clamp(0, 6) / 6,
        "leaky_relu": lambda ins, a, w, b, s: torch.maximum(ins[0], a["slope"] * ins[0]),
        "maxpool": maxpool,
        "avgpool": avgpool,
        "adaptive_avgpool": lambda ins, a, w, b, s: F.adaptive_avg_pool2d(ins[0], a["size"]),
        "adaptive_maxpool": lambda ins, a, w, b, s: F.adaptive_max_pool2d(ins[0], a["size"]),
        "global_avgpool": lambda ins, a, w, b, s: ins[0].mean((2, 3), keepdim=True),
        "dropout": lambda ins, a, w, b, s: ins[0],
        "identity": lambda ins, a, w, b, s: ins[0],
        "flatten": lambda ins, a, w, b, s: torch.flatten(ins[0], 1),
        "linear": lambda ins, a, w, b, s: F.linear(ins[0], w, b),
        "concat": lambda ins, a, w, b, s: torch.cat(ins, 1),
        "add": lambda ins, a, w, b, s: sum(ins[1:], ins[0]),
        "scale": lambda ins, a, w, b, s: ins[0] * a["factor"],
        "l2norm": lambda ins, a, w, b, s: ins[0] / ins[0].norm(dim=1, keepdim=True).clamp_min(
            a["eps"]),
    }[op]


def interpreted_ops() -> set[str]:
    """The op names :func:`interpret` knows."""
    from inceptdsl.ops import OP_LIST

    known = set()
    for op in OP_LIST:
        try:
            _functional(op.name)
        except KeyError:
            continue
        known.add(op.name)
    return known


def interpret(net, state: dict, x):
    """Run the expanded IR ``net`` (eval mode: no side outputs) with torch functionals and
    the ``state_dict`` ``state``: a check of the spec's computation (branch order, padding,
    pools, scales, activations) that depends on no code generator."""
    g, values, by_node = net.graph, {}, {}
    for key, value in state.items():
        node_id, _, leaf = key.rpartition(".")
        by_node.setdefault(node_id, {})[leaf] = value
    for node_id in g.nodes():
        node = g.node(node_id)
        if node["side"]:
            continue
        op = node["op"]
        ins = [values[i] for i in g.inputs(node_id)] if op != "input" else [x]
        # a layer scale is a bare parameter: its key is the node's own id
        mine = {"weight": state[node_id]} if node_id in state else by_node.get(node_id, {})
        values[node_id] = _functional(op)(ins, node["attrs"], mine.get("weight"),
                                          mine.get("bias"), mine)
    return values[g.output]


def randomized_state(model, seed: int = 0) -> dict:
    """``model.state_dict()`` with non-trivial BN statistics, BN affine parameters and
    biases (random in a range that keeps activations well scaled)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith(("running_var", "gamma")) or (key.endswith("weight")
                                                       and value.dim() == 1):
            value = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith(("running_mean", "bias")):
            value = 0.2 * torch.rand(value.shape, generator=gen) - 0.1
        state[key] = value
    return state
