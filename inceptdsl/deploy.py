"""Running a compiled spec: an ONNX Runtime or OpenVINO session with sensible threading.

>>> import numpy as np
>>> run = session("googlenet_torchvision", runtime="onnxruntime")   # doctest: +SKIP
>>> run(np.zeros((1, 3, 224, 224), np.float32)).shape               # doctest: +SKIP
(1, 1000)

``session(source, runtime=...)`` takes a spec (shipped name, path or loaded
:class:`~inceptdsl.spec.Spec`, exported with the ``weights`` given or the seeded
initialisation, optimized for inference by default), the bytes of an ONNX model or the path
of a ``.onnx`` file. Threads default to the CPUs this process may use; ONNX Runtime runs
its graph sequentially on them (``intra_op``), OpenVINO with its latency hint.

Precision is float32 unless asked otherwise: ``precision="bf16"`` (OpenVINO only) runs
in bfloat16 where the CPU supports it (AVX512-BF16 or AMX; elsewhere OpenVINO falls back to
f32), at a cost in accuracy: on googlenet with random weights (BN statistics measured),
a relative output difference of about 1e-1 from float32 and top-1 agreement of about 80%
on 64 random inputs (``benchmarks/bench_deploy.py`` measures it; a trained network's
larger logit margins flip fewer decisions). It is never on by default, although OpenVINO's
own default on such CPUs is bf16.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loader import UsageError

RUNTIMES = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16")


@dataclass
class Session:
    """A ready model: call it with an NCHW float32 array, get the main output."""

    runtime: str
    precision: str
    threads: int
    raw: Any  # the runtime's own object (ort.InferenceSession / ov.CompiledModel)

    def __call__(self, x: Any) -> Any:
        import numpy as np

        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.runtime == "onnxruntime":
            return self.raw.run(None, {"input": x})[0]
        return self.raw(x)[0]


def default_threads() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def onnx_bytes(source: Any, weights: Any = None, optimize: str | None = "inference") -> bytes:
    """The ONNX model of ``source``: bytes as given, a ``.onnx`` file read, a spec exported.

    ``weights``: a state_dict (mapping of arrays, keys as the torch model's) or the path of
    a ``.safetensors``/``.npz`` file.
    """
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, Path)) and str(source).endswith(".onnx"):
        return Path(source).read_bytes()
    from . import _spec
    from .backends.onnx import render
    from .state import read_state

    state = read_state(weights) if isinstance(weights, (str, Path)) else weights
    return render(_spec(source), state, optimize=optimize)


def session(source: Any, runtime: str = "onnxruntime", *, weights: Any = None,
            optimize: str | None = "inference", threads: int | None = None,
            precision: str = "fp32") -> Session:
    """Open a session for a spec or an ONNX model (see the module doc)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
    if precision == "bf16" and runtime != "openvino":
        raise UsageError("precision='bf16' is available with runtime='openvino'")
    data = onnx_bytes(source, weights, optimize)
    threads = threads or default_threads()
    opener = _onnxruntime if runtime == "onnxruntime" else _openvino
    return Session(runtime, precision, threads, opener(data, threads, precision))


def _onnxruntime(data: bytes, threads: int, precision: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _openvino(data: bytes, threads: int, precision: str) -> Any:
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    return core.compile_model(core.read_model(model=data), "CPU", config)
