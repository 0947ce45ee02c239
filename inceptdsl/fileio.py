"""Writing outputs safely: the one writer of ``compile``, ``fmt`` and ``render``.

- ``-`` is standard output;
- a regular file (or a new one) is written atomically: a temporary file in the same folder,
  then ``os.replace``, so a failure leaves the old file (or nothing), never half a file; a
  symbolic link stays a link (its target is replaced);
- anything else that exists (a character device such as ``/dev/null``, a FIFO,
  ``/dev/stdout`` and the other ``/dev/fd`` / ``/proc/*/fd`` aliases) is opened and written
  in place: it is never replaced, so ``-o /dev/null`` leaves ``/dev/null`` a device;
- an input spec is never overwritten;
- every failure is an :class:`~inceptdsl.errors.OutputError` (a ``UsageError``: exit code 2)
  reading ``cannot write PATH: REASON``.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "model.py"
>>> write_output(target, "x = 1\\n"); target.read_text()
'x = 1\\n'
>>> try:
...     write_output(target / "x.py", "")
... except OutputError as exc:
...     print(str(exc).startswith("cannot write "), str(exc).endswith("is not a folder"))
True True
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from .errors import OutputError

STDOUT = "-"
_FD_ALIAS = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")


def write_output(path: str | Path, data: str | bytes, protect: list[str] | None = None,
                 ) -> None:
    """Write ``data`` to ``path`` (``-``: standard output) as the module docstring says."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    name = str(path)
    if name == STDOUT:
        _write_stdout(raw)
        return
    try:
        _refuse_inputs(name, protect or [])
        if _in_place(name):
            with open(name, "wb") as handle:  # noqa: PTH123 - a device or FIFO: no temp file
                handle.write(raw)
        else:
            _replace(name, raw)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from None


def _write_stdout(raw: bytes) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text stream (tests capture output in a StringIO)
        sys.stdout.write(raw.decode("utf-8"))
    else:
        sys.stdout.flush()
        buffer.write(raw)
    sys.stdout.flush()


def _refuse_inputs(name: str, protect: list[str]) -> None:
    for spec in protect:
        if os.path.realpath(spec) == os.path.realpath(name) or (
                os.path.exists(name) and os.path.exists(spec) and os.path.samefile(spec, name)):
            raise OutputError(f"cannot write {name}: refusing to overwrite the input spec")


def _in_place(name: str) -> bool:
    """Whether ``name`` is something to open and write rather than replace.

    >>> _in_place("/dev/null"), _in_place("/dev/stdout"), _in_place("/no/such/file.py")
    (True, True, False)
    """
    if _FD_ALIAS.fullmatch(name) or _FD_ALIAS.fullmatch(os.path.realpath(name)):
        return True
    try:
        mode = os.stat(name).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {name}: it is a folder")
    return not stat.S_ISREG(mode)


def _replace(name: str, raw: bytes) -> None:
    """All or nothing: a temporary file next to the target, then ``os.replace``."""
    target = Path(os.path.realpath(name))
    folder = target.parent
    if not folder.exists():
        raise OutputError(f"cannot write {name}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {name}: folder {folder} is not a folder")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"cannot write {name}: the file is read-only")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, _mode_for(target))  # mkstemp files are private (0600)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _mode_for(target: Path) -> int:
    """An existing file keeps its mode; a new one gets the usual 0666 less the umask."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
