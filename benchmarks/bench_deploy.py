"""Deployment on CPU: inceptdsl's ONNX on ONNX Runtime and OpenVINO against every peer.

For inception_v3 and googlenet at batch 1 and 8, every candidate runs in its own process
(a fresh interpreter per candidate, per round), the candidates take turns in a rotating
order over ``--rounds`` rounds, and the tables show medians and ratios. All candidates hold
the same weights (torchvision's random init, seed 0, BN statistics measured on random
inputs), and each one's output on a fixed input is compared with torchvision's eager
output.

Candidates (fp32 unless marked):

- ``tv eager``: torchvision's model, eager, NCHW;
- ``tv cl+fx``: the same, channels_last, BN folded by ``torch.fx...optimization.fuse``;
- ``tv compile``: ``torch.compile`` (default mode) of the channels_last model;
- ``tv compile+freeze``: the same with ``torch._inductor.config.freezing = True``;
- ``ids torch opt``: ``inceptdsl compile --backend torch --optimize inference``;
- ``ort tv-onnx`` / ``ov tv-onnx``: ONNX Runtime / OpenVINO (f32 hint) on torchvision's
  ``torch.onnx.export`` (opset 17);
- ``ov tv-onnx default`` (bf16 where the CPU has it): OpenVINO without a precision hint;
- ``ort ids`` / ``ort ids opt`` / ``ov ids`` / ``ov ids opt``: ONNX Runtime / OpenVINO f32 on
  inceptdsl's ONNX, plain and ``--optimize inference``;
- ``ort ids fused`` / ``ov ids fused``: the same after every IR pass (BN folding and
  sibling conv fusion, ``passes.inference.ALL_PASSES``), to decide whether fusion pays;
- ``ov ids opt bf16``: OpenVINO bf16 (``inceptdsl.deploy`` ``precision="bf16"``) on the
  optimized ONNX; its accuracy against fp32 is measured on 64 random inputs (relative
  difference and top-1 agreement).

Every runtime uses ``--threads`` threads (default: all CPUs of this process). The peak
fraction is ``2 x MACs x batch / time`` over the best measured GEMM rate in its own process
on the same threads (4096^2 matrices, best of 5): fp32 from ``torch.mm`` and numpy's BLAS
(direct conv kernels can exceed it), bf16 from an OpenVINO MatMul with the bf16 hint. The
report says what rate the bf16 target would need against that bf16 peak.

Usage::

    python benchmarks/bench_deploy.py                      # full run (minutes to an hour)
    python benchmarks/bench_deploy.py --quick               # 1 round, few iterations
    python benchmarks/bench_deploy.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_section  # noqa: E402

MODELS = {"inception_v3": ("inception_v3", 299), "googlenet": ("googlenet_torchvision", 224)}
CANDIDATES = [
    "tv eager", "tv cl+fx", "tv compile", "tv compile+freeze", "ids torch opt",
    "ort tv-onnx", "ov tv-onnx", "ov tv-onnx default",
    "ort ids", "ort ids opt", "ov ids", "ov ids opt", "ov ids opt bf16",
    "ort ids fused", "ov ids fused",
]
FP32_PEERS = ["ort tv-onnx", "ov tv-onnx", "tv compile+freeze"]
FP32_OURS = ["ids torch opt", "ort ids", "ort ids opt", "ov ids", "ov ids opt",
             "ort ids fused", "ov ids fused"]
LOW_PRECISION = {"ov tv-onnx default", "ov ids opt bf16"}
ACCURACY_INPUTS = 64


# ---------------------------------------------------------------------------- artefacts


def prepare(workdir: Path, model: str) -> None:
    """Weights (torchvision's, seed 0), torchvision's ONNX export and inceptdsl's ONNX."""
    import numpy as np
    import torch
    from inceptdsl.backends.onnx import lower, render

    import inceptdsl
    from inceptdsl.passes.inference import ALL_PASSES, optimize_for_inference
    from inceptdsl.state import fit_state

    spec_name, size = MODELS[model]
    ref = calibrated(tv_model(model, init=True), size)
    state = ref.state_dict()
    torch.save(state, workdir / f"{model}.pt")
    numpy_state = {k: v.numpy() for k, v in state.items()}
    spec = inceptdsl.load(spec_name, set={"aux_logits": False})
    for suffix, optimize in (("", None), ("_opt", "inference")):
        (workdir / f"{model}_ids{suffix}.onnx").write_bytes(render(spec, numpy_state, optimize))
    graph = inceptdsl.analyze(spec).network.graph
    graph, weights = optimize_for_inference(graph, fit_state(graph, numpy_state), ALL_PASSES)
    (workdir / f"{model}_ids_fused.onnx").write_bytes(lower(graph, weights, spec)
                                                      .SerializeToString())
    torch.onnx.export(ref, torch.randn(1, 3, size, size), str(workdir / f"{model}_tv.onnx"),
                      opset_version=17, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      dynamo=False)
    rng = np.random.default_rng(1)
    np.save(workdir / f"{model}_x.npy",
            rng.standard_normal((ACCURACY_INPUTS, 3, size, size), dtype=np.float32))


def calibrated(net, size: int):
    """BN running statistics of the random network measured on random inputs.

    With its init statistics (mean 0, var 1) a random network's activations fade layer
    after layer and every output is nearly the same; measured statistics keep them at
    unit scale, like a trained network's, so output differences and top-1 mean something.
    """
    import torch

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(2)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(8, 3, size, size, generator=gen))
    return net.eval()


def tv_model(model: str, init: bool = False):
    import torch
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, model)(weights=None, init_weights=init,
                                              aux_logits=False).eval()


# ---------------------------------------------------------------------------- one candidate


def runner(name: str, model: str, workdir: Path, threads: int):
    """A function ``x (numpy) -> output (numpy)`` for one candidate."""
    if name.startswith(("ort ", "ov ")):
        return _onnx_runner(name, model, workdir, threads)
    import torch

    torch.set_num_threads(threads)
    state = torch.load(workdir / f"{model}.pt")
    if name == "ids torch opt":
        import inceptdsl

        net = inceptdsl.build(MODELS[model][0], optimize="inference", aux_logits=False)
        net.load_state_dict(state, strict=True)
        net.eval()
        channels_last = False
    else:
        net = tv_model(model)
        net.load_state_dict(state)
        net, channels_last = _torch_variant(name, net)

    def run(x):
        t = torch.from_numpy(x)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return net(t).numpy()
    return run


def _torch_variant(name: str, net):
    import torch

    if name == "tv eager":
        return net, False
    if name == "tv cl+fx":
        from torch.fx.experimental.optimization import fuse

        return fuse(net).to(memory_format=torch.channels_last), True
    net = net.to(memory_format=torch.channels_last)
    if name == "tv compile+freeze":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    return torch.compile(net), True


def _onnx_runner(name: str, model: str, workdir: Path, threads: int):
    from inceptdsl import deploy

    runtime, source, *rest = name.split()
    runtime = "onnxruntime" if runtime == "ort" else "openvino"
    suffix = "_opt" if "opt" in rest else "_fused" if "fused" in rest else ""
    path = workdir / f"{model}_{source.replace('-onnx', '')}{suffix}.onnx"
    if "default" in rest:  # OpenVINO's own choice (bf16 on CPUs that have it)
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads,
                                       "PERFORMANCE_HINT": "LATENCY"})
        return lambda x: compiled(x)[0]
    precision = "bf16" if "bf16" in rest else "fp32"
    return deploy.session(str(path), runtime, threads=threads, optimize=None,
                          precision=precision)


def child(args: argparse.Namespace) -> int:
    """Time one candidate at one batch size; print one JSON line."""
    import numpy as np

    workdir = Path(args.workdir)
    run = runner(args.child, args.model, workdir, args.threads)
    inputs = np.load(workdir / f"{args.model}_x.npy")
    x = np.ascontiguousarray(inputs[:args.batch])
    for _ in range(args.warmup):
        out = run(x)
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        out = run(x)
        times.append(time.perf_counter() - start)
    result = {"seconds": median(times)}
    if args.save_output:
        np.save(workdir / f"out_{_slug(args.child)}_{args.model}_{args.batch}.npy", out)
    if args.accuracy:
        result["outputs"] = str(workdir / f"acc_{_slug(args.child)}_{args.model}.npy")
        np.save(result["outputs"], np.concatenate(
            [run(np.ascontiguousarray(inputs[i:i + 8])) for i in range(0, len(inputs), 8)]))
    print(json.dumps(result))
    return 0


def gemm_child(args: argparse.Namespace) -> int:
    """The best GEMM rates (GFLOP/s) on ``--threads`` threads, 4096^2 matrices, best of 5
    runs of each: fp32 from ``torch.mm`` and numpy's BLAS (a practical peak: direct conv
    kernels can beat it), bf16 from an OpenVINO MatMul with the bf16 precision hint (what
    its bf16 convolutions can reach at best on this CPU)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    n = 4096
    rng = np.random.default_rng(0)
    fp32 = _best_rate([(torch.mm, (torch.randn(n, n), torch.randn(n, n))),
                       (np.matmul, tuple(rng.random((2, n, n), np.float32)))], n)
    print(json.dumps({"gflops": fp32, "bf16_gflops": _openvino_bf16_rate(args.threads, n)}))
    return 0


def _best_rate(calls: list, n: int) -> float:
    rates = []
    for mm, operands in calls:
        mm(*operands)
        for _ in range(5):
            start = time.perf_counter()
            mm(*operands)
            rates.append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return max(rates)


def _openvino_bf16_rate(threads: int, n: int) -> float:
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32)
    weight = ops.constant(rng.random((n, n), np.float32))
    core = ov.Core()
    compiled = core.compile_model(ov.Model([ops.matmul(x, weight, False, False)], [x]), "CPU",
                                  {"INFERENCE_NUM_THREADS": threads,
                                   "PERFORMANCE_HINT": "LATENCY",
                                   "INFERENCE_PRECISION_HINT": "bf16"})
    return _best_rate([(compiled, (rng.random((n, n), np.float32),))], n)


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("+", "_")


# ---------------------------------------------------------------------------- the parent


def spawn(extra: list[str], workdir: Path, threads: int, timeout: int = 1800) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(workdir / "inductor"),
           "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--workdir", str(workdir), "--threads", str(threads),
           *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    """``{(model, batch): {candidate: [seconds per round]}}``, candidates rotating."""
    results: dict = {}
    for model in args.models:
        for batch in args.batches:
            times: dict[str, list[float]] = {c: [] for c in args.candidates}
            for r in range(args.rounds):
                order = args.candidates[r % len(args.candidates):] + \
                    args.candidates[:r % len(args.candidates)]
                for name in order:
                    iters = max(4, 2 * args.iters // batch)
                    extra = ["--child", name, "--model", model, "--batch", str(batch),
                             "--iters", str(iters), "--warmup", str(args.warmup)]
                    if r == 0:
                        extra.append("--save-output")
                    times[name].append(spawn(extra, workdir, args.threads)["seconds"])
                    print(f"{model} b{batch} round {r + 1}: {name} "
                          f"{times[name][-1] * 1000:.1f} ms", file=sys.stderr)
            results[(model, batch)] = times
    return results


def accuracy(args: argparse.Namespace, workdir: Path) -> dict:
    """Low-precision candidates against fp32 (OpenVINO f32 on the same ONNX)."""
    import numpy as np

    out = {}
    pairs = [("ov ids opt bf16", "ov ids opt"), ("ov tv-onnx default", "ov tv-onnx")]
    for model in args.models:
        for low, ref in pairs:
            if low not in args.candidates:
                continue
            files = {n: spawn(["--child", n, "--model", model, "--batch", "8", "--iters", "1",
                               "--warmup", "0", "--accuracy"], workdir, args.threads)["outputs"]
                     for n in (low, ref)}
            a, b = np.load(files[ref]).astype(np.float64), np.load(files[low])
            out[(model, low)] = {
                "rel": float(np.abs(a - b).max() / np.abs(a).max()),
                "top1": float((a.argmax(1) == b.argmax(1)).mean()), "n": len(a)}
    return out


def output_diffs(args: argparse.Namespace, workdir: Path) -> dict:
    """Each candidate's relative difference to torchvision eager (round 1 outputs)."""
    import numpy as np

    diffs = {}
    for model in args.models:
        for batch in args.batches:
            ref_path = workdir / f"out_{_slug('tv eager')}_{model}_{batch}.npy"
            if not ref_path.exists():
                continue
            ref = np.load(ref_path).astype(np.float64)
            for name in args.candidates:
                got = np.load(workdir / f"out_{_slug(name)}_{model}_{batch}.npy")
                diffs[(model, batch, name)] = float(np.abs(ref - got).max() / np.abs(ref).max())
    return diffs


# ---------------------------------------------------------------------------- the report


def targets(results: dict) -> list[tuple[str, float, float]]:
    """(description, ratio, target) of every must-show ratio (speed = time ratio)."""
    out = []
    for (model, batch), times in results.items():
        med = {n: median(t) for n, t in times.items()}

        checks = [
            (f"{model} b{batch}: ORT on inceptdsl's ONNX (best of plain/opt) vs ORT on "
             "torchvision's export", _best(med, ["ort ids", "ort ids opt"]), "ort tv-onnx", 1.0),
            (f"{model} b{batch}: OpenVINO f32 on inceptdsl's ONNX (best) vs on torchvision's "
             "export", _best(med, ["ov ids", "ov ids opt"]), "ov tv-onnx", 1.0),
            (f"{model} b{batch}: fastest fp32 inceptdsl path vs fastest fp32 peer",
             _best(med, FP32_OURS), _best(med, FP32_PEERS), 0.95),
            (f"{model} b{batch}: inceptdsl torch --optimize inference vs torch.compile "
             "(torchvision, channels_last)", "ids torch opt", "tv compile", 1.0),
        ]
        if batch == 8:
            checks.append((f"{model} b{batch}: OpenVINO bf16 on inceptdsl's ONNX vs "
                           "torchvision cl+fx fp32", "ov ids opt bf16", "tv cl+fx", 2.5))
        for text, fast, slow, target in checks:
            if fast in med and slow in med:
                out.append((f"{text} ({fast} vs {slow})", med[slow] / med[fast], target))
    return out


def _best(med: dict, names: list[str]) -> str | None:
    present = [n for n in names if n in med]
    return min(present, key=med.get) if present else None


def report(args, results: dict, diffs: dict, acc: dict, peaks: dict, versions: str) -> str:
    import inceptdsl

    gemm, bf16 = peaks["gflops"], peaks["bf16_gflops"]
    lines = ["## Deployment (`benchmarks/bench_deploy.py`)", "",
             f"Machine: {machine()}; {versions}.", "",
             f"CPU flags (SIMD): {simd_flags()}.", "",
             f"{args.threads} threads per runtime; each candidate in its own process, "
             f"{args.rounds} rounds in rotating order, max(4, 2 x {args.iters} / batch) timed "
             f"iterations after {args.warmup} warm-up per process, medians of the per-process "
             "medians. "
             f"fp32 peak: the best measured fp32 GEMM rate (torch.mm and numpy, 4096^2, "
             f"best of 5) {gemm:.0f} GFLOP/s; direct conv kernels can exceed it. bf16 peak "
             f"(rows marked bf16): the best rate of an OpenVINO MatMul, 4096^2, bf16 hint, "
             f"{bf16:.0f} GFLOP/s ({bf16 / gemm:.1f}x the fp32 peak).", ""]
    macs = {model: inceptdsl.analyze(inceptdsl.load(spec, set={"aux_logits": False})).macs
            for model, (spec, _) in MODELS.items() if model in args.models}
    for (model, batch), times in results.items():
        med = {n: median(t) for n, t in times.items()}
        base, cl = med.get("tv eager"), med.get("tv cl+fx")
        lines += [f"### {model}, batch {batch}", "",
                  "| candidate | ms / batch | vs tv eager | vs tv cl+fx | of peak | "
                  "rel. diff to tv eager |", "|---|---:|---:|---:|---:|---:|"]
        for name in args.candidates:
            t = med[name]
            rate = 2 * macs[model] * batch / t / 1e9
            peak = f"{rate / bf16:.0%} bf16" if name in LOW_PRECISION else f"{rate / gemm:.0%}"
            diff = diffs.get((model, batch, name))
            lines.append(f"| {name} | {t * 1000:.1f} | {_ratio(base, t)} | {_ratio(cl, t)} | "
                         f"{peak} | {'' if diff is None else f'{diff:.1e}'} |")
        lines.append("")
    if acc:
        lines += ["Low precision against fp32 on the same ONNX "
                  f"({ACCURACY_INPUTS} random inputs):", ""]
        for (model, name), a in acc.items():
            lines.append(f"- {model}: {name}: max relative difference {a['rel']:.1e}, "
                         f"top-1 agreement {a['top1']:.0%} ({a['n']} inputs)")
        lines.append("")
    lines += ["Ratios the issue asks for (speed ratio = slower time / faster time):", ""]
    for text, r, target in targets(results):
        lines.append(f"- {text}: {r:.2f}x (target >= {target}x) "
                     f"{'reached' if r >= target else 'NOT reached'}")
    lines += _bf16_bound(results, macs, bf16)
    return "\n".join(lines)


def _bf16_bound(results: dict, macs: dict, bf16: float) -> list[str]:
    """What the bf16 target asks of the CPU: the rate it needs against the bf16 peak."""
    out = []
    for (model, batch), times in results.items():
        if batch != 8 or "tv cl+fx" not in times or "ov ids opt bf16" not in times:
            continue
        needed = 2 * macs[model] * batch / (median(times["tv cl+fx"]) / 2.5) / 1e9
        got = 2 * macs[model] * batch / median(times["ov ids opt bf16"]) / 1e9
        out.append(f"- {model} b8: 2.5x tv cl+fx needs {needed:.0f} GFLOP/s in bf16, "
                   f"{needed / bf16:.0%} of the bf16 GEMM peak ({bf16:.0f}); "
                   f"the bf16 path runs at {got:.0f} GFLOP/s ({got / bf16:.0%})")
    return out


def _ratio(base: float | None, t: float) -> str:
    return "" if base is None else f"{base / t:.2f}x"


def simd_flags() -> str:
    """The SIMD-related CPU flags (AVX, FMA, AVX-512, AMX, VNNI, BF16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    keep = [f for f in flags if f.startswith(("avx", "amx", "fma", "f16c"))
            or "vnni" in f or "bf16" in f]
    return " ".join(keep) or "none"


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("torch", "torchvision", "onnx",
                                                  "onnxruntime", "openvino"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=20, help="timed iterations per process "
                   "at batch 1 (batch B: 2 iters / B, at least 4)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--candidates", nargs="+", default=CANDIDATES, choices=CANDIDATES)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="1 round, 3 iterations, 1 warmup: "
                   "checks that everything runs, not a measurement")
    p.add_argument("--no-accuracy", action="store_true")
    p.add_argument("--write", metavar="MARKDOWN", help="update this report file")
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--gemm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--save-output", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.iters, args.warmup = 1, 3, 1
    if args.threads is None:
        from inceptdsl.deploy import default_threads

        args.threads = default_threads()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.gemm:
        return gemm_child(args)
    if args.child:
        return child(args)
    if "tv eager" not in args.candidates:
        args.candidates = ["tv eager", *args.candidates]
    with tempfile.TemporaryDirectory(prefix="bench_deploy_") as tmp:
        workdir = Path(tmp)
        for model in args.models:
            print(f"preparing {model} (weights, torchvision export, inceptdsl ONNX)",
                  file=sys.stderr)
            prepare(workdir, model)
        peaks = spawn(["--gemm"], workdir, args.threads)
        results = measure(args, workdir)
        diffs = output_diffs(args, workdir)
        acc = {} if args.no_accuracy else accuracy(args, workdir)
    text = report(args, results, diffs, acc, peaks, versions())
    print(text)
    if args.write:
        write_section(args.write, "bench_deploy", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
