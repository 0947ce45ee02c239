"""Hardening (issue 9): no input crashes, hangs, exhausts memory or executes code.

``tests/bad/`` holds bad specs, YAML and DSL, one mistake each. The first line of each
file says what the checker must answer::

    # expect: 5:12: unknown op or block 'cnv'
    # hint: block style            (optional: a fragment of the hint)

The first stderr line must then be exactly ``PATH:5:12: error: ...`` containing the
fragment, with exit code 1 and no traceback. All of them (and a few large inputs made on
the fly) are also run in one subprocess that measures each one's CPU time and the peak
memory of the whole batch.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

BAD = Path(__file__).resolve().parent / "bad"
CORPUS = sorted(p for p in BAD.iterdir() if p.suffix in (".yaml", ".incept"))
EXPECT = re.compile(rb"# expect: (\d+):(\d+): ([^\n]*)\n(?:# hint: ([^\n]*)\n)?")
MAX_SECONDS = 2.0  # CPU seconds per input: immune to a loaded CI machine (a hang that
# does not spin is caught by the batch's subprocess timeout; wall time is only reported)
MAX_RSS_MB = 500


def expectation(path: Path) -> tuple[int, int, str, str | None]:
    """``(line, col, fragment, hint)`` from a corpus file's first lines.

    >>> expectation(BAD / "unknown_op.yaml")[:2]
    (6, 5)
    """
    match = EXPECT.match(path.read_bytes())
    assert match, f"{path.name}: the first line must be '# expect: LINE:COL: fragment'"
    line, col, fragment, hint = match.groups()
    return int(line), int(col), fragment.decode(), hint.decode() if hint else None


def test_the_corpus_covers_at_least_60_bad_specs_in_both_front_ends():
    assert len(CORPUS) >= 60
    assert sum(p.suffix == ".incept" for p in CORPUS) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_bad_spec_is_reported_at_its_line_and_column(path):
    line, col, fragment, hint = expectation(path)
    result = run_cli("check", str(path))
    first = result.err.splitlines()[0] if result.err else ""
    assert result.code == 1, result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert first.startswith(f"{path}:{line}:{col}: error: "), first
    assert fragment in first, first
    if hint:
        assert "hint: " in result.err and hint in result.err, result.err


# ---------------------------------------------------------------------- time and memory

_BATCH = textwrap.dedent("""
    import io, json, resource, sys, time
    from contextlib import redirect_stderr, redirect_stdout
    from inceptdsl.cli import main

    report = []
    for path in sys.argv[1:]:
        err = io.StringIO()
        start, cpu = time.perf_counter(), time.process_time()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            try:
                code = main(["check", path])
            except SystemExit as exc:
                code = exc.code
        report.append({"path": path, "code": code, "wall": time.perf_counter() - start,
                       "seconds": time.process_time() - cpu,
                       "first": (err.getvalue().splitlines() or [""])[0]})
    # VmHWM: the peak of this process's own memory. ru_maxrss would not do: Linux keeps
    # the parent's high-water mark across exec, and a pytest worker may hold gigabytes.
    status = open("/proc/self/status").read()
    hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    peak = (int(hwm[0].split()[1]) if hwm else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) // 1024
    print(json.dumps({"files": report, "peak_mb": peak}))
""")

_HEAD = "name: big\ninput: [3, 8, 8]\n"
LARGE = {  # made on the fly: too big to keep in the repository
    "huge_file.yaml": ("#" + "x" * 300_000 + "\n" + _HEAD + "body:\n  - relu\n",
                       "1:1", "file is too large"),
    "huge_line.yaml": (_HEAD + "body:\n  - conv(" + "1 + " * 50_000 + "1, 1)\n",
                       "4:5", "expression is longer than"),
    "many_layers_then_typo.yaml": (_HEAD + "body:\n" + "  - relu\n" * 19_000 + "  - rleu\n",
                                   "19004:5", "unknown op or block 'rleu'"),
    "too_many_values.yaml": (_HEAD + "params:\n  p: [" + "1, " * 30_000 + "1]\nbody: [relu]\n",
                             "4:6", "more than 20000 YAML values"),
    "many_tokens.incept": (_HEAD + "body:\n" + "    relu\n" * 21_000, "19990:5",
                           "more than 20000 tokens"),
    "long_chain.incept": (_HEAD + "body:\n    " + " -> ".join(["relu"] * 9_000) + " -> rleu\n",
                          "4:72005", "unknown op or block 'rleu'"),
}


def _run_batch(paths: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", _BATCH, *map(str, paths)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_every_bad_input_finishes_in_under_2_s_and_500_mb(tmp_path):
    large = []
    for name, (text, _, _) in LARGE.items():
        (tmp_path / name).write_text(text)
        large.append(tmp_path / name)
    result = _run_batch([*CORPUS, *large])
    slow = [(Path(r["path"]).name, round(r["seconds"], 2), round(r["wall"], 2))
            for r in result["files"] if r["seconds"] > MAX_SECONDS]
    assert not slow, f"slower than {MAX_SECONDS} s (cpu, wall): {slow}"
    assert result["peak_mb"] < MAX_RSS_MB, f"peak memory {result['peak_mb']} MB"
    for row in result["files"][len(CORPUS):]:
        name = Path(row["path"]).name
        where, fragment = LARGE[name][1], LARGE[name][2]
        assert row["code"] == 1
        assert row["first"].startswith(f"{row['path']}:{where}: error: "), row["first"]
        assert fragment in row["first"], row["first"]


# ---------------------------------------------------------------------- usage errors


def test_a_missing_file_is_a_usage_error(tmp_path):
    result = run_cli("check", str(tmp_path / "nope.yaml"))
    assert result.code == 2 and "no such file" in result.err


def test_a_directory_is_a_usage_error(tmp_path):
    result = run_cli("check", str(tmp_path))
    assert result.code == 2 and "directory" in result.err


@pytest.mark.parametrize("args", [
    ("check", "--frobnicate", "inception_v3"),
    ("compile", "inception_v3", "--backend", "tensorflow"),
    ("summary", "inception_v3", "--set", "nope=1"),
    ("summary", "inception_v3", "--set", "num_classes"),
    ("summary", "inception_v3", "--set", "num_classes=[1"),
    ("summary", "inception_v3", "--set", "input=[3,0,0]"),
    ("summary", "inception_v3", "--depth", "many"),
    ("frobnicate",),
])
def test_bad_usage_exits_2_without_a_traceback(args):
    result = run_cli(*args)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err and result.err.strip()


# ---------------------------------------------------------------------- outputs


SPEC = "name: tiny\ninput: [3, 16, 16]\nbody:\n  - conv(8, 3, pad=1)\n  - relu\n"


@pytest.mark.parametrize("command", [
    ("compile", "--backend", "torch"), ("fmt", "--to", "yaml"), ("render",)])
def test_an_output_never_overwrites_its_input_spec(write_spec, command):
    path = write_spec(SPEC)
    result = run_cli(command[0], path, *command[1:], "-o", path)
    assert result.code == 2 and Path(path).read_text() == SPEC
    if command[0] != "render":  # render refuses a .yaml output earlier: not an image
        assert "refusing to overwrite the input spec" in result.err


def test_a_failed_compile_writes_nothing(write_spec, tmp_path):
    path = write_spec(SPEC.replace("relu", "rleu"))
    out = tmp_path / "model.py"
    result = run_cli("compile", path, "--backend", "torch", "-o", str(out))
    assert result.code == 1 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from inceptdsl import fileio
    from inceptdsl.errors import OutputError

    target = tmp_path / "model.py"
    target.write_text("old\n")

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", fail)
    with pytest.raises(OutputError, match="^cannot write .*model.py: disk full$"):
        fileio.write_output(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_an_output_into_a_missing_folder_is_a_usage_error(write_spec, tmp_path):
    result = run_cli("compile", write_spec(SPEC), "--backend", "torch",
                     "-o", str(tmp_path / "no" / "model.py"))
    assert result.code == 2 and "does not exist" in result.err


# ---------------------------------------------------------------------- no code runs

ATTACK = "x\"\"\" + __import__('os').system('echo pwned') + \"\"\"\\"


def test_spec_text_never_becomes_code(write_spec):
    """Description, paper, reference, block comments and strings are data, never code."""
    from inceptdsl.codegen import generate
    from inceptdsl.loader import load

    quoted = json.dumps(ATTACK)
    text = (f"name: evil\ndescription: {quoted}\npaper: {quoted}\nreference: {quoted}\n"
            f"input: [3, 16, 16]\nparams:\n  tag: {quoted}\nblocks:\n"
            f"  # {ATTACK}\n  Unit(out, note='__import__(\"os\").system(\"x\")'):\n"
            "    - conv(out, 3, pad=1)\n"
            "body:\n  - Unit(8)\n  - global_avgpool\n  - flatten\n  - linear(4)\n")
    source = generate(load(write_spec(text)), "torch")
    tree = ast.parse(source)
    called = {getattr(n.func, "id", getattr(n.func, "attr", None))
              for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"__import__", "system", "eval", "exec"}
    assert ast.get_docstring(tree).startswith(ATTACK)
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert any(isinstance(c, str) and ATTACK in c for c in constants[1:])  # the comment


def test_expression_limits_are_errors_not_hangs():
    from inceptdsl.errors import SpecError
    from inceptdsl.expr import evaluate, parse

    for text, message in [("2 ** 2 ** 2 ** 99", "exponent too large"),
                          ("[0] * 10 ** 9", "expected a number"),
                          ("10 ** 12 * 10", "number too large"),
                          ("(-8) ** 0.5", "not a real number"),
                          ("0 ** -1", "division by zero"),
                          ("float('nan')", "not a finite number"),
                          ("[" * 100 + "]" * 100, "too deeply nested"),
                          ("-" * 500 + "1", "too deeply nested"),
                          ("[" + "1, " * 1000 + "1]", "longer than 2000")]:
        with pytest.raises(SpecError, match=re.escape(message)):
            evaluate(parse(text), {})


def test_written_files_follow_the_umask_not_mkstemp(tmp_path):
    from inceptdsl.fileio import write_output

    old = os.umask(0o022)
    try:
        target = tmp_path / "model.py"
        write_output(target, "x = 1\n")
        assert target.stat().st_mode & 0o777 == 0o644
        target.chmod(0o600)
        write_output(target, "x = 2\n")
        assert target.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


# ---------------------------------------------------------------------- unexpected failures


@pytest.mark.parametrize("error,code,first_line", [
    (RuntimeError("boom"), 1, "inceptdsl: internal error: RuntimeError: boom (please report "
                              "this with the spec that caused it)"),
    (KeyError("x"), 1, "inceptdsl: internal error: KeyError: 'x' (please report"),
    (RecursionError("deep"), 1, "inceptdsl: error: the spec is nested too deeply"),
    (MemoryError(), 1, "inceptdsl: error: out of memory (the spec is too large)"),
    (KeyboardInterrupt(), 130, ""),
    (BrokenPipeError(), 0, ""),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None)
def test_an_unexpected_failure_is_one_line_and_an_exit_code(monkeypatch, error, code,
                                                            first_line):
    from inceptdsl import cli

    def fail(_args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "check", fail)
    result = run_cli("check", "googlenet")
    assert result.code == code, result.err
    assert "Traceback" not in result.err and len(result.err.splitlines()) <= 1
    assert result.err.startswith(first_line) and (first_line or not result.err)
