"""Inference throughput: generated plain and optimized models against torchvision.

For inception_v3 and googlenet, at batch 1 and 8 with 2 threads, under
``torch.inference_mode``, the candidates take turns (interleaved) and the medians are
compared:

- ``torchvision``: torchvision's eager model (NCHW), the reference;
- ``torchvision cl+fx``: the same with ``torch.fx.experimental.optimization.fuse``
  (BN folded) and channels_last weights and input;
- ``inceptdsl plain``: ``inceptdsl compile --backend torch``;
- ``inceptdsl optimized``: ``inceptdsl compile --backend torch --optimize inference``.

All four hold the same weights (the optimized and plain models load torchvision's
``state_dict`` with ``strict=True``).

Usage: ``python benchmarks/bench_inference.py [--repeats N] [--write docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, machine, median, write_section  # noqa: E402

MODELS = [("inception_v3", "inception_v3", 299), ("googlenet", "googlenet_torchvision", 224)]
NAMES = ["torchvision", "torchvision cl+fx", "inceptdsl plain", "inceptdsl optimized"]
TARGETS = {  # (model, candidate, baseline) -> minimal speed ratio per batch, from issue 8
    ("inception_v3", "inceptdsl plain", "torchvision"): {1: 0.95, 8: 0.95},
    ("inception_v3", "inceptdsl optimized", "torchvision"): {1: 1.5, 8: 1.5},
    ("inception_v3", "inceptdsl optimized", "torchvision cl+fx"): {1: 1.1, 8: 1.0},
}


def candidates(builder: str, spec: str):
    """The four models of one architecture, sharing torchvision's random weights."""
    import torch
    import torchvision
    from torch.fx.experimental.optimization import fuse

    import inceptdsl

    torch.manual_seed(0)
    ref = getattr(torchvision.models, builder)(weights=None, init_weights=True,
                                               aux_logits=False).eval()
    state = ref.state_dict()
    fx = getattr(torchvision.models, builder)(weights=None, init_weights=False,
                                              aux_logits=False).eval()
    fx.load_state_dict(state)
    fx = fuse(fx).to(memory_format=torch.channels_last)
    models = {"torchvision": ref, "torchvision cl+fx": fx}
    for name, optimize in (("inceptdsl plain", None), ("inceptdsl optimized", "inference")):
        model = inceptdsl.build(spec, optimize=optimize, aux_logits=False)
        model.load_state_dict(state, strict=True)
        models[name] = model.eval()
    return models


def measure(builder: str, spec: str, size: int, batch: int, repeats: int) -> dict:
    """Median seconds per forward of each candidate at one batch size."""
    import torch

    models = candidates(builder, spec)
    x = torch.randn(batch, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    inputs = {name: x_cl if name == "torchvision cl+fx" else x for name in models}
    with torch.inference_mode():
        ref = models["torchvision"](x)
        for name, model in models.items():
            diff = ((model(inputs[name]) - ref).abs().max() / ref.abs().max()).item()
            if diff > 1e-4:
                raise SystemExit(f"{name} disagrees with torchvision ({diff:.2e})")
        jobs = {name: (lambda m=m, i=inputs[name]: m(i)) for name, m in models.items()}
        times = interleaved(jobs, repeats, warmup=2)
    return {name: median(t) for name, t in times.items()}


def report(results: dict, repeats: int, threads: int, version: str) -> tuple[str, list[str]]:
    """A markdown table of medians and ratios, and the list of missed targets."""
    lines = ["## Inference (`benchmarks/bench_inference.py`)", "",
             f"Machine: {machine(version)}; `torch.set_num_threads({threads})`, "
             f"`torch.inference_mode`, {repeats} interleaved runs per candidate, medians.", "",
             "| model | batch | candidate | ms / batch | vs torchvision | vs cl+fx |",
             "|---|---:|---|---:|---:|---:|"]
    for (model, batch), med in results.items():
        for name in NAMES:
            lines.append(f"| {model} | {batch} | {name} | {med[name] * 1000:.1f} | "
                         f"{med['torchvision'] / med[name]:.2f}x | "
                         f"{med['torchvision cl+fx'] / med[name]:.2f}x |")
    lines += ["", "Targets (speed ratio = baseline time / candidate time):", ""]
    missed = []
    for (model, name, base), per_batch in TARGETS.items():
        for batch, target in per_batch.items():
            if (model, batch) not in results:
                continue
            med = results[(model, batch)]
            ratio = med[base] / med[name]
            ok = ratio >= target
            lines.append(f"- {model} batch {batch}: {name} vs {base}: {ratio:.2f}x "
                         f"(target >= {target}x) {'reached' if ok else 'NOT reached'}")
            if not ok:
                missed.append(lines[-1])
    return "\n".join(lines), missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", metavar="MARKDOWN", help="update this report file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results = {}
    for builder, spec, size in MODELS:
        for batch in args.batches:
            repeats = max(3, args.repeats // batch * 2) if batch > 1 else args.repeats
            results[(builder, batch)] = measure(builder, spec, size, batch, repeats)
            print(f"{builder} batch {batch}: " + ", ".join(
                f"{n} {t * 1000:.1f} ms" for n, t in results[(builder, batch)].items()),
                file=sys.stderr)
    text, _ = report(results, args.repeats, args.threads, torch.__version__)
    print(text)
    if args.write:
        write_section(args.write, "bench_inference", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
