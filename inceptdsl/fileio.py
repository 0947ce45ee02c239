"""Writing outputs safely: atomically, and never over an input spec.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "model.py"
>>> write_atomic(target, "x = 1\\n"); target.read_text()
'x = 1\\n'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .loader import UsageError


def write_atomic(path: Path, data: str | bytes, protect: list[str] | None = None) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: all or nothing."""
    target = path.resolve()
    for p in protect or []:
        if Path(p).resolve() == target:
            raise UsageError(f"{path}: refusing to overwrite the input spec")
    if target.is_dir():
        raise UsageError(f"{path}: is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"{path}: folder {target.parent} does not exist")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
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
