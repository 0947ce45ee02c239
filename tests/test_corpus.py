"""What ``check`` accepts, ``compile`` renders: over every shipped spec and a corpus of
over 500 generated specs (``tests/corpus.py``: blocks at several sizes, conditions on every
form, nested repeats), both backends' code is generated and compiles, with torch and jax
unimportable while it happens; on a subset, the torch model holds exactly the params and
buffers and does exactly the MACs that ``summary`` reports.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import pytest
from corpus import corpus_spec
from inceptdsl.backends import flax as flax_backend
from inceptdsl.backends import torch as torch_backend

from inceptdsl import pipeline
from inceptdsl.errors import SpecError, SpecErrors
from inceptdsl.loader import build_spec, load, shipped
from inceptdsl.yamlsrc import load_yaml

SEEDS = range(560)
FRAMEWORKS = ("torch", "jax", "flax")


@contextmanager
def frameworks_blocked():
    """``import torch`` (jax, flax) raises ImportError inside the block."""
    saved = {name: sys.modules.get(name) for name in FRAMEWORKS}
    sys.modules.update(dict.fromkeys(FRAMEWORKS))
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def corpus_entry(seed: int):
    """(spec, report) for a corpus spec that ``check`` accepts, else None."""
    path = f"corpus_{seed}.yaml"
    spec = build_spec(load_yaml(corpus_spec(seed), path), path)
    try:
        return spec, pipeline.check(spec)
    except (SpecError, SpecErrors):
        return None


def renders_and_compiles(spec) -> None:
    plan = pipeline.plan(spec)
    for backend in (torch_backend, flax_backend):
        source = backend.render(plan)
        compile(source, f"<{spec.name}:{backend.__name__}>", "exec")


def test_check_accepting_implies_both_backends_compile_for_shipped_specs():
    with frameworks_blocked():
        for name in sorted({p.stem for p in shipped().values()}):
            spec = load(name)
            pipeline.check(spec)
            renders_and_compiles(spec)


def test_check_accepting_implies_both_backends_compile_over_the_corpus():
    accepted = 0
    with frameworks_blocked():
        for seed in SEEDS:
            entry = corpus_entry(seed)
            if entry is None:
                continue
            accepted += 1
            renders_and_compiles(entry[0])
    assert accepted >= 500, f"only {accepted} corpus specs are valid"


def test_torch_model_holds_and_computes_what_summary_says_on_a_subset():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from inceptdsl.codegen import build

    entries = [e for e in map(corpus_entry, range(16)) if e is not None][:12]
    assert len(entries) == 12
    for spec, report in entries:
        model = build(spec).eval()
        assert sum(p.numel() for p in model.parameters()) == report.params, spec.name
        assert sum(b.numel() for b in model.buffers()) == report.buffers, spec.name
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(torch.zeros(1, *spec.input))
        assert counter.get_total_flops() // 2 == report.macs, spec.name
        assert list(out.shape[1:]) == report.output, spec.name


def test_optimized_torch_model_matches_the_plain_one_on_a_subset():
    """``--optimize inference`` on specs nobody tuned it for: BN folds and sibling fusion
    (6 of these 12 fuse) over blocks at several sizes, under conditions and repeats."""
    torch = pytest.importorskip("torch")
    from helpers import randomize_bn, relative_diff

    from inceptdsl.codegen import build

    entries = [e for e in map(corpus_entry, range(16, 32)) if e is not None][:12]
    assert len(entries) == 12
    assert sum("then split" in pipeline.compile_source(s, "torch", optimize="inference")
               for s, _ in entries) >= 4
    gen = torch.Generator().manual_seed(0)
    for spec, _ in entries:
        torch.manual_seed(0)
        plain = build(spec)
        randomize_bn(plain)
        fast = build(spec, optimize="inference")
        fast.load_state_dict(plain.state_dict(), strict=True)
        x = torch.randn(2, *spec.input, generator=gen)
        with torch.no_grad():
            assert relative_diff(plain.eval()(x), fast.eval()(x)) <= 1e-4, spec.name
