"""Every shipped spec with a reference implementation matches it exactly.

For each (spec, reference) pair the reference is built live with random weights (nothing is
downloaded; see ``helpers.BUILDERS``) and compared with ``inceptdsl summary --json``:

- ``params`` = ``sum(p.numel() for p in model.parameters())``;
- ``buffers`` = ``sum(b.numel() for b in model.buffers())``;
- ``macs`` = ``FlopCounterMode`` total // 2 for one eval forward of one image at the spec's
  input size;
- the ``state_dict`` keys that the expanded IR implies (``<id>.weight``, ``<id>.bias``,
  BN buffers) equal the reference's, so a generated model loads its ``state_dict`` with
  ``strict=True``;
- the expanded IR, run by the interpreter of ``helpers.interpret`` with the reference's
  weights, computes the reference's outputs.

The paper GoogLeNet's reference is a Caffe-equivalent network written from the BVLC
prototxt with torch modules; the paper Inception-ResNet-v1's is assembled from facenet's
modules. The figures of ``tests/data/reference-figures.md`` (a copy of the project's
measured reference figures) and a hard-coded copy of them are checked against the specs as
well, without building anything.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field

import pytest
import torch
from conftest import ROOT, run_cli, summary
from helpers import interpret, randomized_state, reference
from torch.utils.flop_counter import FlopCounterMode

from inceptdsl.expand import expand
from inceptdsl.loader import load


@dataclass(frozen=True)
class Ref:
    """A spec (with ``--set`` overrides) and how to build its reference."""

    id: str
    spec: str
    build: str  # key into helpers.BUILDERS
    overrides: tuple[tuple[str, object], ...] = field(default=())

    def set_args(self) -> list[str]:
        out = []
        for key, value in self.overrides:
            out += ["--set", f"{key}={json.dumps(value)}"]
        return out


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
    Ref("googlenet-aux", "googlenet", "caffe_googlenet_aux"),
    Ref("googlenet-noaux", "googlenet", "caffe_googlenet", (("aux_logits", False),)),
    *(Ref(n, n, f"timm_{n}") for n in ("inception_next_atto", "inception_next_tiny",
                                       "inception_next_small", "inception_next_base")),
]

# The figures of tests/data/reference-figures.md, a second check that needs no torch.
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
    # the paper's parameter counts; MACs measured on the Caffe-equivalent reference
    "googlenet-aux": (13_378_280, 0, 1_582_671_872),
    "googlenet-noaux": (6_998_552, 0, 1_582_671_872),
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
# "what" cells of the paper-figures table -> REFS ids (parameter counts)
PAPER_ROWS = {"params without aux heads": "googlenet-noaux",
              "params with both aux heads": "googlenet-aux"}
FIGURES_MD = ROOT / "tests" / "data" / "reference-figures.md"

BY_ID = {r.id: r for r in REFS}


# ---------------------------------------------------------------------------- helpers


@functools.cache
def ref_summary(ref: Ref) -> dict:
    return summary(ref.spec, *ref.set_args())


def spec_keys(ref: Ref) -> set[str]:
    """The state_dict keys implied by the expanded IR's stateful nodes."""
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
                keys.add(f"{node_id}.bias")
                if attrs["scale"]:  # a shift-only BN has no weight
                    keys.add(f"{node_id}.weight")
            if attrs["track_running_stats"]:
                keys |= {f"{node_id}.{b}" for b in
                         ("running_mean", "running_var", "num_batches_tracked")}
    return keys


@functools.cache
def reference_macs(build: str, input_shape: tuple[int, ...]) -> int:
    model = reference(build)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, *input_shape))
    return counter.get_total_flops() // 2


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_params_and_buffers(ref: Ref):
    model = reference(ref.build)
    got = ref_summary(ref)
    assert got["params"] == sum(p.numel() for p in model.parameters())
    assert got["buffers"] == sum(b.numel() for b in model.buffers())


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_state_dict_keys(ref: Ref):
    expected = set(reference(ref.build).state_dict())
    got = spec_keys(ref)
    assert sorted(got - expected) == [], "keys the reference lacks"
    assert sorted(expected - got) == [], "reference keys the spec lacks"


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_macs(ref: Ref):
    got = ref_summary(ref)
    assert got["macs"] == reference_macs(ref.build, tuple(got["input"]))


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_hard_coded_figures(ref: Ref):
    got = ref_summary(ref)
    assert (got["params"], got["buffers"], got["macs"]) == EXPECTED[ref.id]


def _md_rows(text: str) -> dict[str, tuple[int, ...]]:
    """Library rows -> (params, buffers, macs); paper rows -> (params,)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in FIGURE_ROWS:
            rows[FIGURE_ROWS[cells[0]]] = tuple(int(re.sub(r"[,_ ]", "", c))
                                                for c in cells[3:6])
        elif len(cells) == 3:
            for prefix, ref_id in PAPER_ROWS.items():
                if cells[1].startswith(prefix):
                    rows[ref_id] = (int(cells[2].replace(",", "")),)
    return rows


def test_reference_figures_document():
    rows = _md_rows(FIGURES_MD.read_text(encoding="utf-8"))
    assert set(rows) == set(FIGURE_ROWS.values()) | set(PAPER_ROWS.values())
    for ref_id, figures in rows.items():
        assert figures == EXPECTED[ref_id][:len(figures)], ref_id
        got = ref_summary(BY_ID[ref_id])
        assert (got["params"], got["buffers"], got["macs"])[:len(figures)] == figures, ref_id


def test_inception_resnet_v1_derivation_document():
    """docs/inception_resnet_v1.md states the figures that the spec computes."""
    text = (ROOT / "docs" / "inception_resnet_v1.md").read_text(encoding="utf-8")
    report = ref_summary(BY_ID["inception_resnet_v1"])
    assert report["input"] == [3, 299, 299] and report["output"] == [1000]
    for key in ("params", "buffers", "macs"):
        assert f"**{report[key]:,}**" in text, key


def test_bn_inception_alias():
    assert run_cli("summary", "inception_v2", "--json").out == run_cli(
        "summary", "bn_inception", "--json").out


# ---------------------------------------------------------------------------- semantics


@pytest.mark.parametrize("ref", REFS, ids=[r.id for r in REFS])
def test_ir_computes_the_reference(ref: Ref):
    model = reference(ref.build)
    state = randomized_state(model)
    model.load_state_dict(state)
    net = expand(load(ref.spec, overrides=dict(ref.overrides)))
    x = torch.randn(1, *net.spec.input, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = model(x), interpret(net, state, x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
