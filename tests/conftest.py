"""Shared fixtures: run the CLI in process or as a subprocess, list shipped specs."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


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


def run_subprocess(*args: str, env: dict | None = None, cwd: Path | None = None) -> Result:
    proc = subprocess.run([sys.executable, "-m", "inceptdsl.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def shipped_names() -> list[str]:
    from inceptdsl.loader import shipped

    return sorted(name for name, path in shipped().items() if path.stem == name)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec text to a temporary file and return its path as a string."""

    def write(text: str, name: str = "spec.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write
