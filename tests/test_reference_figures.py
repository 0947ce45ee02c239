"""Every shipped spec with a reference implementation matches it exactly.

For each (spec, reference) pair the reference is built live with random weights (nothing is
downloaded) and compared with ``inceptdsl summary --json``:

- ``params`` = ``sum(p.numel() for p in model.parameters())``;
- ``buffers`` = ``sum(b.numel() for b in model.buffers())``;
- ``macs`` = ``FlopCounterMode`` total // 2 for one eval forward of one image at the spec's
  input size;
- the ``state_dict`` keys that the expanded IR implies (``<id>.weight``, ``<id>.bias``,
  BN buffers) equal the reference's, so a generated model loads its ``state_dict`` with
  ``strict=True``.

The figures of ``/work/shared/reference-figures.md`` (when present) and a hard-coded copy
of them are checked against the specs as well, without building anything.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import run_cli


@dataclass(frozen=True)
class Ref:
    """A spec (with ``--set`` overrides) and how to build its reference."""

    id: str
    spec: str
    build: str  # key into BUILDERS
    overrides: tuple[tuple[str, object], ...] = field(default=())

    def set_args(self) -> list[str]:
        out = []
        for key, value in self.overrides:
            out += ["--set", f"{key}={json.dumps(value)}"]
        return out


def _torchvision(name: str, **kwargs):
    import torchvision

    return getattr(torchvision.models, name)(weights=None, init_weights=False, **kwargs)


def _timm(name: str):
    import timm

    return timm.create_model(name, pretrained=False)


def _bninception():
    pretrainedmodels = pytest.importorskip("pretrainedmodels")
    return pretrainedmodels.bninception(pretrained=None)


def _facenet():
    pytest.importorskip("requests")
    facenet = pytest.importorskip("facenet_pytorch")
    return facenet.InceptionResnetV1(pretrained=None, classify=False)


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
    **{f"timm_{n}": functools.partial(_timm, n) for n in (
        "inception_next_atto", "inception_next_tiny", "inception_next_small",
        "inception_next_base")},
}

REFS = [
    Ref("googlenet_torchvision-aux", "googlenet_torchvision", "tv_googlenet_aux"),
    Ref("googlenet_torchvision-noaux", "googlenet_torchvision", "tv_googlenet",
        (("aux_logits", False),)),
    Ref("inception_v3-aux", "inception_v3", "tv_inception_v3_aux"),
    Ref("inception_v3-noaux", "inception_v3", "tv_inception_v3", (("aux_logits", False),)),
    Ref("inception_v3-timm", "inception_v3", "timm_inception_v3", (("aux_logits", False),)),
    Ref("bn_inception", "bn_inception", "pretrainedmodels_bninception"),
    Ref("inception_v4", "inception_v4", "timm_inception_v4"),
    Ref("inception_resnet_v2", "inception_resnet_v2", "timm_inception_resnet_v2"),
    Ref("xception", "xception", "timm_legacy_xception"),
    Ref("inception_resnet_v1_facenet", "inception_resnet_v1_facenet",
        "facenet_inception_resnet_v1"),
    Ref("inception_resnet_v1", "inception_resnet_v1", "paper_inception_resnet_v1"),
    *(Ref(n, n, f"timm_{n}") for n in ("inception_next_atto", "inception_next_tiny",
                                       "inception_next_small", "inception_next_base")),
]

# The figures of /work/shared/reference-figures.md, a second check that needs no torch.
EXPECTED = {
    "googlenet_torchvision-aux": (13_004_888, 15_131, 1_498_376_192),
    "googlenet_torchvision-noaux": (6_624_904, 14_617, 1_498_376_192),
    "inception_v3-aux": (27_161_264, 36_320, 5_713_216_096),
    "inception_v3-noaux": (23_834_568, 34_526, 5_713_216_096),
    "inception_v3-timm": (23_834_568, 34_526, 5_713_216_096),
    "bn_inception": (11_295_240, 20_101, 2_032_600_064),
    "inception_v4": (42_679_816, 63_317, 12_253_974_624),
    "inception_resnet_v2": (55_843_464, 60_748, 13_155_794_016),
    "xception": (22_855_952, 54_568, 8_357_403_496),
    "inception_resnet_v1_facenet": (23_482_624, 29_712, 1_417_662_304),
    # derived in docs/inception_resnet_v1.md (no library reference)
    "inception_resnet_v1": (22_756_328, 27_147, 6_206_361_696),
    # timm.create_model(name, pretrained=False), measured for issue 14
    "inception_next_atto": (4_156_520, 4_336, 503_035_040),
    "inception_next_tiny": (28_055_680, 14_806, 4_188_634_272),
    "inception_next_small": (49_374_016, 28_648, 8_355_682_080),
    "inception_next_base": (86_672_136, 38_184, 14_841_072_000),
}

# Row titles of reference-figures.md -> REFS ids.
FIGURE_ROWS = {
    "torchvision `googlenet(aux_logits=False)`": "googlenet_torchvision-noaux",
    "torchvision `googlenet(aux_logits=True)`": "googlenet_torchvision-aux",
    "torchvision `inception_v3(aux_logits=False)`": "inception_v3-noaux",
    "torchvision `inception_v3(aux_logits=True)`": "inception_v3-aux",
    "timm `inception_v3`": "inception_v3-timm",
    "timm `inception_v4`": "inception_v4",
    "timm `inception_resnet_v2`": "inception_resnet_v2",
    "timm `legacy_xception`": "xception",
    "pretrainedmodels `bninception`": "bn_inception",
    "facenet_pytorch `InceptionResnetV1(classify=False)`": "inception_resnet_v1_facenet",
}
FIGURES_MD = Path("/work/shared/reference-figures.md")

BY_ID = {r.id: r for r in REFS}


# ---------------------------------------------------------------------------- helpers


@functools.cache
def summary(ref: Ref) -> dict:
    result = run_cli("summary", ref.spec, "--json", *ref.set_args())
    assert result.code == 0, result.err
    return json.loads(result.out)


def spec_keys(ref: Ref) -> set[str]:
    """The state_dict keys implied by the expanded IR's stateful nodes."""
    from inceptdsl.expand import expand
    from inceptdsl.loader import load

    net = expand(load(ref.spec, overrides=dict(ref.overrides)))
    keys: set[str] = set()
    for node_id in net.graph.nodes():
        node = net.graph.node(node_id)
        op, attrs = node["op"], node["attrs"]
        if op == "layer_scale":
            keys.add(node_id)
        elif op in ("layernorm", "groupnorm") and attrs["affine"]:
            keys |= {f"{node_id}.weight", f"{node_id}.bias"}
        elif op in ("conv2d", "linear"):
            keys.add(f"{node_id}.weight")
            if attrs["bias"]:
                keys.add(f"{node_id}.bias")
        elif op == "batchnorm":
            if attrs["affine"]:
                keys |= {f"{node_id}.weight", f"{node_id}.bias"}
            if attrs["track_running_stats"]:
                keys |= {f"{node_id}.{b}" for b in
                         ("running_mean", "running_var", "num_batches_tracked")}
    return keys


@functools.cache
def reference(build: str):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BUILDERS[build]()
    return model.eval()


@functools.cache
def reference_macs(build: str, input_shape: tuple[int, ...]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = reference(build)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, *input_shape))
    return counter.get_total_flops() // 2


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_params_and_buffers(ref: Ref):
    model = reference(ref.build)
    got = summary(ref)
    assert got["params"] == sum(p.numel() for p in model.parameters())
    assert got["buffers"] == sum(b.numel() for b in model.buffers())


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_state_dict_keys(ref: Ref):
    model = reference(ref.build)
    expected = set(model.state_dict())
    got = spec_keys(ref)
    assert sorted(got - expected) == [], "keys the reference lacks"
    assert sorted(expected - got) == [], "reference keys the spec lacks"


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_macs(ref: Ref):
    got = summary(ref)
    assert got["macs"] == reference_macs(ref.build, tuple(got["input"]))


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_hard_coded_figures(ref: Ref):
    got = summary(ref)
    assert (got["params"], got["buffers"], got["macs"]) == EXPECTED[ref.id]


def _md_rows(text: str) -> dict[str, tuple[int, int, int]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in FIGURE_ROWS:
            params, buffers, macs = (int(re.sub(r"[,_ ]", "", c)) for c in cells[3:6])
            rows[FIGURE_ROWS[cells[0]]] = (params, buffers, macs)
    return rows


@pytest.mark.skipif(not FIGURES_MD.exists(), reason="reference-figures.md not present")
def test_reference_figures_document():
    rows = _md_rows(FIGURES_MD.read_text(encoding="utf-8"))
    assert set(rows) == set(FIGURE_ROWS.values())
    for ref_id, figures in rows.items():
        assert figures == EXPECTED[ref_id], ref_id
        got = summary(BY_ID[ref_id])
        assert (got["params"], got["buffers"], got["macs"]) == figures, ref_id


def test_inception_resnet_v1_derivation_document():
    """docs/inception_resnet_v1.md states the figures that the spec computes."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "inception_resnet_v1.md")
    text = doc.read_text(encoding="utf-8")
    report = summary(BY_ID["inception_resnet_v1"])
    assert report["input"] == [3, 299, 299] and report["output"] == [1000]
    for key in ("params", "buffers", "macs"):
        assert f"**{report[key]:,}**" in text, key


def test_bn_inception_alias():
    assert run_cli("summary", "inception_v2", "--json").out == run_cli(
        "summary", "bn_inception", "--json").out



# ---------------------------------------------------------------------------- semantics


def _functional(op: str):
    """``(inputs, attrs, weight, bias) -> output`` for the ops of the shipped specs."""
    import torch
    import torch.nn.functional as F

    from inceptdsl.ops import conv_padding

    def conv(ins, a, w, b):
        p = conv_padding(a, tuple(ins[0].shape[2:]))
        return F.conv2d(F.pad(ins[0], (p[2], p[3], p[0], p[1])), w, b, a["stride"], 0,
                        a["dilation"], a["groups"])

    return {
        "input": lambda ins, a, w, b: ins[0],
        "conv2d": conv,
        "batchnorm": lambda ins, a, w, b: F.batch_norm(ins[0], a["running_mean"],
                                                       a["running_var"], w, b, False, 0.0,
                                                       a["eps"]),
        "maxpool": lambda ins, a, w, b: F.max_pool2d(
            ins[0], a["kernel"], a["stride"] or a["kernel"], a["pad"], a["dilation"],
            ceil_mode=a["ceil"]),
        "avgpool": lambda ins, a, w, b: F.avg_pool2d(
            ins[0], a["kernel"], a["stride"] or a["kernel"], a["pad"], ceil_mode=a["ceil"],
            count_include_pad=a["count_include_pad"]),
        "relu": lambda ins, a, w, b: F.relu(ins[0]),
        "adaptive_avgpool": lambda ins, a, w, b: F.adaptive_avg_pool2d(ins[0], a["size"]),
        "global_avgpool": lambda ins, a, w, b: ins[0].mean((2, 3), keepdim=True),
        "dropout": lambda ins, a, w, b: ins[0],
        "identity": lambda ins, a, w, b: ins[0],
        "flatten": lambda ins, a, w, b: torch.flatten(ins[0], 1),
        "linear": lambda ins, a, w, b: F.linear(ins[0], w, b),
        "concat": lambda ins, a, w, b: torch.cat(ins, 1),
        "add": lambda ins, a, w, b: sum(ins[1:], ins[0]),
        "mul": lambda ins, a, w, b: torch.prod(torch.stack(torch.broadcast_tensors(*ins)), 0),
        "slice": lambda ins, a, w, b: ins[0][:, a["start"]:a["stop"]],
        "gelu": lambda ins, a, w, b: F.gelu(ins[0], approximate=a["approximate"]),
        "layernorm": lambda ins, a, w, b: F.layer_norm(
            ins[0].movedim(1, -1), ins[0].shape[1:2], w, b, a["eps"]).movedim(-1, 1),
        "layer_scale": lambda ins, a, w, b: ins[0] * w.reshape(
            (1, -1) + (1,) * (ins[0].dim() - 2)),
        "drop_path": lambda ins, a, w, b: ins[0],
        "scale": lambda ins, a, w, b: ins[0] * a["factor"],
        "l2norm": lambda ins, a, w, b: F.normalize(ins[0], p=2, dim=1, eps=a["eps"]),
    }[op]


def _interpret(net, state: dict, x):
    """Run the expanded IR with torch functionals and the reference's weights: a check of
    the spec's computation (branch order, padding, pools, scales, activations) that does not
    depend on any code generator."""
    g, values = net.graph, {}
    for node_id in g.nodes():
        node = g.node(node_id)
        if node["side"]:
            continue
        op = node["op"]
        ins = [values[i] for i in g.inputs(node_id)] if op != "input" else [x]
        attrs = dict(node["attrs"])
        if op == "batchnorm":
            attrs["running_mean"] = state[f"{node_id}.running_mean"]
            attrs["running_var"] = state[f"{node_id}.running_var"]
        weight = state.get(node_id) if op == "layer_scale" else state.get(f"{node_id}.weight")
        values[node_id] = _functional(op)(ins, attrs, weight,
                                          state.get(f"{node_id}.bias"))
    return values[g.output]


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_ir_computes_the_reference(ref: Ref):
    import torch

    from inceptdsl.expand import expand
    from inceptdsl.loader import load

    model = reference(ref.build)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in model.state_dict().items():  # non-trivial BN statistics and biases
        if key.endswith(("running_var", "gamma")) or (key.endswith("weight")
                                                       and value.dim() == 1):
            value = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith(("running_mean", "bias")):
            value = 0.2 * torch.rand(value.shape, generator=gen) - 0.1
        state[key] = value
    model.load_state_dict(state)
    net = expand(load(ref.spec, overrides=dict(ref.overrides)))
    x = torch.randn(1, *net.spec.input, generator=gen)
    with torch.no_grad():
        expected, got = model(x), _interpret(net, state, x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
