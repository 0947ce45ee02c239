"""The package works from a built wheel in a fresh virtualenv (specs and backends inside)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> Path:
    """A new virtualenv with only the built wheel and its declared dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", "out"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True,
                   timeout=300)
    wheel = next((tmp / "dist").glob("inceptdsl-*.whl"))
    venv.EnvBuilder(with_pip=True).create(tmp / "env")
    pip = tmp / "env" / "bin" / "pip"
    proc = subprocess.run([str(pip), "install", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tmp / "env" / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "inceptdsl"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_wheel_ships_the_specs_and_the_cli_works(fresh_env, tmp_path):
    listed = json.loads(run(fresh_env, "list", "--json", cwd=tmp_path).stdout)
    assert {"googlenet", "inception_v3", "inception_resnet_v2"} <= {e["name"] for e in listed}
    summary = json.loads(run(fresh_env, "summary", "inception_v3", "--json",
                             cwd=tmp_path).stdout)
    assert summary["params"] == 27_161_264


def test_wheel_ships_the_backends(fresh_env, tmp_path):
    for backend in ("torch", "flax"):
        proc = run(fresh_env, "compile", "googlenet", "--backend", backend, "-o",
                   f"g_{backend}.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        compile((tmp_path / f"g_{backend}.py").read_text(), "g.py", "exec")


def test_onnx_without_the_deploy_extra_is_a_clear_usage_error(fresh_env, tmp_path):
    proc = run(fresh_env, "compile", "googlenet", "--backend", "onnx", "-o", "g.onnx",
               cwd=tmp_path)
    assert proc.returncode == 2 and "pip install 'inceptdsl[deploy]'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "g.onnx").exists()


def test_wheel_renders_without_system_graphviz(fresh_env, tmp_path):
    proc = run(fresh_env, "render", "googlenet", "--depth", "1", "-o", "g.svg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()[:2000]


def test_wheel_ships_the_interactive_page_assets(fresh_env, tmp_path):
    proc = run(fresh_env, "render", "googlenet", "-o", "g.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "g.html").read_text(encoding="utf-8")
    assert "function layoutBox" in text and ".node.open" in text and '"googlenet"' in text


def test_wheel_does_not_depend_on_the_source_tree(fresh_env, tmp_path):
    code = "import inceptdsl, pathlib; print(pathlib.Path(inceptdsl.__file__).resolve())"
    out = subprocess.run([str(fresh_env / "python"), "-c", code], capture_output=True,
                         text=True, cwd=tmp_path).stdout
    assert str(ROOT) not in out and "site-packages" in out
