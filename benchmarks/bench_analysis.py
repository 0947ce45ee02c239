"""Analysis and compile speed: the inceptdsl CLI against building the reference in torch.

Two comparisons, each as fresh subprocesses (what a user waits for), interleaved, medians:

- ``inceptdsl summary inception_resnet_v2`` (parameters, buffers, MACs, shapes) against a
  process that imports torch, builds timm's ``inception_resnet_v2`` and counts its FLOPs
  with ``torch.utils.flop_counter.FlopCounterMode`` (plus fvcore / ptflops / torchinfo
  when installed);
- ``inceptdsl compile inception_v3 --backend torch`` against a bare
  ``python -c "import torch"``.

In-process figures (analysis per hundred nodes, compile) are printed as well.

Usage: ``python benchmarks/bench_analysis.py [--repeats N] [--write docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, machine, median, write_section  # noqa: E402

BUILD_AND_COUNT = """
import torch, timm
from torch.utils.flop_counter import FlopCounterMode
model = timm.create_model("inception_resnet_v2").eval()
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(torch.randn(1, 3, 299, 299))
print(counter.get_total_flops() // 2)
"""
OTHER_COUNTERS = {
    "fvcore": "from fvcore.nn import FlopCountAnalysis\n"
              "print(FlopCountAnalysis(model, torch.randn(1, 3, 299, 299)).total())",
    "ptflops": "from ptflops import get_model_complexity_info\n"
               "print(get_model_complexity_info(model, (3, 299, 299), "
               "print_per_layer_stat=False))",
    "torchinfo": "from torchinfo import summary\nprint(summary(model, (1, 3, 299, 299)))",
}
TARGETS = {"summary": 8.0, "compile": 3.0}  # speed ratios from issue 8
COMPILE_BUDGET_MS = 100  # DESIGN.md section 8: any shipped spec to source, in process


def cli() -> list[str]:
    """The ``inceptdsl`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("inceptdsl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "inceptdsl.cli"]


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {
        "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}... failed:\n{proc.stderr[-2000:]}")


def jobs(out: str) -> dict:
    """Every command to time, by label."""
    py = sys.executable
    found = {"summary": cli() + ["summary", "inception_resnet_v2"],
             "torch + timm build + FlopCounterMode": [py, "-c", BUILD_AND_COUNT],
             "compile": cli() + ["compile", "inception_v3", "--backend", "torch", "-o", out],
             'python -c "import torch"': [py, "-c", "import torch"]}
    for name, code in OTHER_COUNTERS.items():
        if importlib.util.find_spec(name) is not None:
            found[f"torch + timm build + {name}"] = [py, "-c", BUILD_AND_COUNT + code]
    return {label: (lambda c=cmd: run(c)) for label, cmd in found.items()}


def in_process() -> list[str]:
    """Analysis and compile times measured inside one Python process."""
    import inceptdsl
    from inceptdsl.expand import expand

    spec = inceptdsl.load("inception_resnet_v2")
    nodes = len(expand(spec).graph)
    analysis = interleaved({"a": lambda: inceptdsl.analyze(spec)}, 15)["a"]
    from inceptdsl.loader import shipped

    loaded = {name: inceptdsl.load(path) for name, path in sorted(shipped().items())
              if path.stem == name}
    compile_times = interleaved({f"{n} {backend}": (lambda s=s, b=backend: inceptdsl.compile(
        s, backend=b)) for n, s in loaded.items() for backend in ("torch", "flax")}, 7)
    slowest = max(compile_times, key=lambda n: median(compile_times[n]))
    worst = median(compile_times[slowest]) * 1000
    verdict = "reached" if worst < COMPILE_BUDGET_MS else "NOT reached"
    return [f"- analysis of inception_resnet_v2 ({nodes} graph nodes) in process: "
            f"{median(analysis) * 1000:.1f} ms "
            f"({median(analysis) * 1000 * 100 / nodes:.2f} ms per hundred nodes)",
            f"- slowest compile to source in process, over the {len(loaded)} shipped specs "
            f"in torch and flax ({slowest}): {worst:.1f} ms "
            f"(budget < {COMPILE_BUDGET_MS} ms) {verdict}"]


def report(med: dict, repeats: int, extra: list[str]) -> tuple[str, list[str]]:
    lines = ["## Analysis and compile (`benchmarks/bench_analysis.py`)", "",
             f"Machine: {machine(_torch_version())}; each command a fresh subprocess, "
             f"{repeats} interleaved runs, medians.", "",
             "| command | median s |", "|---|---:|"]
    lines += [f"| `{label}` | {seconds:.3f} |" for label, seconds in med.items()]
    summary = med["torch + timm build + FlopCounterMode"] / med["summary"]
    compile_ = med['python -c "import torch"'] / med["compile"]
    ok_s, ok_c = summary >= TARGETS["summary"], compile_ >= TARGETS["compile"]
    lines += ["", "Ratios:", "",
              f"- `summary inception_resnet_v2` is {summary:.1f}x faster than import torch + "
              f"build timm inception_resnet_v2 + FlopCounterMode (target >= 8x) "
              f"{'reached' if ok_s else 'NOT reached'}",
              f"- `compile inception_v3 --backend torch` takes {1 / compile_:.2f} of a bare "
              f"`python -c \"import torch\"` (target <= 1/3) "
              f"{'reached' if ok_c else 'NOT reached'}", *extra]
    missed = [line for line in lines[-2 - len(extra):] if "NOT reached" in line]
    return "\n".join(lines), missed


def _torch_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:  # noqa: BLE001
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", metavar="MARKDOWN", help="update this report file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        times = interleaved(jobs(str(Path(tmp) / "model.py")), args.repeats)
        print(f"timed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    med = {label: median(t) for label, t in times.items()}
    text, _ = report(med, args.repeats, in_process())
    print(text)
    if args.write:
        write_section(args.write, "bench_analysis", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
