"""Atomic file writes: a reader never sees half a file, and a crash leaves the old one intact.

Temp files live beside their target, named `.TARGET.PID.XXXX.tmp`, so that a later run can tell a
temp whose writer was killed (its process is gone) from one a live process is still writing.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping


@contextmanager
def scratch(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temp file beside path (readable as umask allows), removed when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared files unreadable to others
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staged(path: str | os.PathLike) -> Iterator[Path]:
    """A temp file in path's folder, for the block to write and check; it replaces path (fsynced, by
    rename) only when the block finishes without an exception, and is removed in every other case."""
    with scratch(path) as tmp:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    with staged(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_figure(path: str | os.PathLike, fig: Any, dpi: float | None = None) -> None:
    """A matplotlib figure as a PNG, written atomically; the figure is closed (pyplot keeps it otherwise)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **({} if dpi is None else {"dpi": dpi}))
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, target: str | None = None) -> list[Path]:
    """Delete temp files whose writer was killed (their targets are untouched); with target, only the
    temps of that file name. A temp of a live process is left alone. Returns what was removed."""
    removed = []
    for p in Path(folder).glob(f".{target or '*'}.*.tmp"):
        pid = p.name[:-len(".tmp")].rsplit(".", 2)[-2]
        if not pid.isdigit() or not _alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file once symlinks are resolved (False when either does not exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_own_folder(folder: Path, marker: str, writer: str, holds: str = "") -> None:
    """A folder-writing command writes only into a new or empty folder, or one it wrote before (it holds
    `marker`): never among someone else's files. writer names the command; holds, what it writes."""
    from gantool.errors import GantoolError

    if folder.exists() and not folder.is_dir():
        raise GantoolError(f"-o {folder} is a file; {writer} writes a folder{f' ({holds})' if holds else ''}.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise GantoolError(f"-o {folder} is a folder with other files in it and no {marker}; allowed: a new or empty "
                           f"folder, or one gantool export {writer} wrote.", note="pick another -o.")


def refuse_overwrite(outputs: Mapping[str, str | os.PathLike | None],
                     inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuse, before any work, a command whose output would replace one of its own inputs.

    outputs/inputs: option name (e.g. "-o", "--model") -> path, None when not given.
    """
    from gantool.errors import GantoolError

    for out_name, out in outputs.items():
        for in_name, src in inputs.items():
            if out is not None and src is not None and Path(src).exists() and same_file(out, src):
                raise GantoolError(f"{out_name} {out} is the same file as {in_name} {src}; this command would "
                                   f"overwrite its own input.", note=f"choose another path for {out_name}.")
