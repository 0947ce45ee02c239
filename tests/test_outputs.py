"""Outputs respect what they write to (issue 19): devices and FIFOs are written in place,
regular files atomically, links stay links, and every OS error is one line
``inceptdsl: error: cannot write PATH: reason`` with exit code 2. Also: exit codes when the
reader of a pipe goes away, and ``--depth`` limits."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

SPEC = "name: tiny\ninput: [3, 16, 16]\nbody:\n  - conv(8, 3, pad=1)\n  - relu\n"
COMMANDS = {
    "compile": ("compile", "{spec}", "--backend", "torch", "-o", "{out}"),
    "fmt": ("fmt", "{spec}", "--to", "dsl", "-o", "{out}"),
    "render": ("render", "{spec}", "-o", "{out}"),
}


def _args(command: str, spec: str, out: str) -> list[str]:
    return [a.format(spec=spec, out=out) for a in COMMANDS[command]]


@pytest.fixture
def spec(tmp_path) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return str(path)


def _read_fifo(path: Path, got: list[bytes]) -> threading.Thread:
    def reader() -> None:
        with open(path, "rb") as handle:  # noqa: PTH123
            got.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_to_a_fifo_is_written_into_it_not_over_it(command, spec, tmp_path):
    fifo = tmp_path / ("out.dot" if command == "render" else "out.txt")
    os.mkfifo(fifo)
    got: list[bytes] = []
    thread = _read_fifo(fifo, got)
    result = run_cli(*_args(command, spec, str(fifo)))
    thread.join(10)
    assert result.code == 0, result.err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].strip(), "the reader got nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fifo.name, "tiny.yaml"])


@pytest.mark.parametrize("command", ["compile", "fmt"])
def test_an_output_to_dev_null_leaves_it_a_character_device(command, spec):
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    result = run_cli(*_args(command, spec, "/dev/null"))
    assert result.code == 0, result.err
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert Path("/dev/null").read_bytes() == b""


def test_an_output_to_dev_stdout_through_a_pipe_reaches_the_pipe(spec):
    proc = subprocess.run([sys.executable, "-m", "inceptdsl.cli", *_args("fmt", spec,
                                                                         "/dev/stdout")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("name: tiny\n") and not proc.stderr


@pytest.mark.parametrize("command", ["compile", "fmt"])
def test_dash_is_standard_output(command, spec, tmp_path):
    result = run_cli(*_args(command, spec, "-"))
    assert result.code == 0 and "tiny" in result.out
    assert not (Path.cwd() / "-").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_device_that_refuses_the_write_is_one_error_line(spec):
    result = run_cli(*_args("compile", spec, "/dev/full"))
    assert result.code == 2
    assert result.err == "inceptdsl: error: cannot write /dev/full: No space left on device\n"
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_a_link_stays_a_link_and_its_target_is_replaced(spec, tmp_path):
    target, link = tmp_path / "real.incept", tmp_path / "link.incept"
    target.write_text("old\n")
    link.symlink_to(target)
    assert run_cli(*_args("fmt", spec, str(link))).code == 0
    assert link.is_symlink() and target.read_text().startswith("name: tiny")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unwritable_folder_is_one_error_line(command, spec, tmp_path, monkeypatch):
    import tempfile

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / ("x.dot" if command == "render" else "x.txt")
    result = run_cli(*_args(command, spec, str(out)))
    assert result.code == 2
    assert result.err == f"inceptdsl: error: cannot write {out}: Permission denied\n"


@pytest.mark.parametrize(("where", "reason"), [
    ("no/x.txt", "folder {tmp}/no does not exist"),
    ("tiny.yaml/x.txt", "folder {tmp}/tiny.yaml is not a folder"),
    (".", "it is a folder"),
])
def test_a_bad_output_path_is_one_error_line(where, reason, spec, tmp_path):
    out = str(tmp_path / where)
    result = run_cli(*_args("compile", spec, out))
    assert result.code == 2
    assert result.err == (f"inceptdsl: error: cannot write {out}: "
                          f"{reason.format(tmp=tmp_path)}\n")


@pytest.mark.parametrize(("to", "name"), [("dsl", "x.yaml"), ("dsl", "x.yml"),
                                          ("yaml", "x.incept")])
def test_fmt_refuses_an_output_file_of_the_other_format(to, name, spec, tmp_path):
    out = tmp_path / name
    result = run_cli("fmt", spec, "--to", to, "-o", str(out))
    assert result.code == 2 and "holds" in result.err and not out.exists()
    assert run_cli("fmt", spec, "--to", to, "-o", str(tmp_path / "x.txt")).code == 0


# ---------------------------------------------------------------------- exit codes


def _with_closed_pipe(*args: str, stream: str) -> subprocess.CompletedProcess:
    """Run the CLI with stdout or stderr (or both) a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        other = subprocess.PIPE
        return subprocess.run(
            [sys.executable, "-m", "inceptdsl.cli", *args], timeout=60,
            stdout=write if stream in ("stdout", "both") else other,
            stderr=write if stream in ("stderr", "both") else other)
    finally:
        os.close(write)


class _ClosedPipe:
    """A stream whose reader went away: every write raises BrokenPipeError."""

    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def _main_with_closed(monkeypatch, *args: str, streams: tuple[str, ...]) -> int:
    from inceptdsl.cli import main

    for name in streams:
        monkeypatch.setattr(sys, name, _ClosedPipe())
    try:
        return main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


def test_an_invalid_spec_exits_1_even_when_nobody_reads_the_errors(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput: [3, 8, 8]\nbody:\n  - cnv\n")
    assert _with_closed_pipe("check", str(bad), stream="both").returncode == 1
    for streams in (("stderr",), ("stdout", "stderr")):
        assert _main_with_closed(monkeypatch, "check", str(bad), streams=streams) == 1
        assert _main_with_closed(monkeypatch, "check", "no_such", streams=streams) == 2
        assert _main_with_closed(monkeypatch, "summary", "--depth", "0", "googlenet",
                                 streams=streams) == 2


def test_a_valid_spec_exits_0_when_the_reader_of_stdout_goes_away(monkeypatch):
    proc = _with_closed_pipe("summary", "googlenet", stream="stdout")
    assert proc.returncode == 0 and proc.stderr == b""
    for command in (("summary", "googlenet"), ("compile", "googlenet", "--backend", "torch"),
                    ("fmt", "googlenet", "--to", "dsl"), ("list",)):
        assert _main_with_closed(monkeypatch, *command, streams=("stdout",)) == 0


@pytest.mark.parametrize("command", [("summary", "googlenet"), ("render", "googlenet", "-o",
                                                                 "x.dot"),
                                     ("diff", "googlenet", "googlenet")])
@pytest.mark.parametrize("depth", ["0", "-1", "x"])
def test_depth_below_1_is_refused_by_every_command(command, depth):
    result = run_cli(*command, "--depth", depth)
    assert result.code == 2 and "--depth" in result.err
    assert not (ROOT / "x.dot").exists()
