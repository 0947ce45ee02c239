"""Shared fixtures: run the CLI in process, list shipped specs, read a
summary; and the test run leaves nothing behind in the checkout (no bytecode, no
hypothesis database)."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# Nothing the run writes lands in the checkout: no __pycache__ (here and in the
# subprocesses the tests start), and hypothesis keeps no example database and puts its
# other files in a temporary folder removed at exit.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
_HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="inceptdsl-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME.name)
settings.register_profile("inceptdsl", database=None)
settings.load_profile("inceptdsl")


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> Result:
    """Run ``inceptdsl ARGS`` in this process and capture its exit code and output."""
    from inceptdsl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def summary(*args: str) -> dict:
    """``inceptdsl summary ARGS --json``, which must succeed, as a dict."""
    result = run_cli("summary", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def shipped_names() -> list[str]:
    from inceptdsl.loader import shipped

    return sorted(name for name, path in shipped().items() if path.stem == name)


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec text to a temporary file and return its path as a string."""

    def write(text: str, name: str = "spec.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write
