"""Output files: checked before any compute, written whole or not at all.

A run of minutes to hours must not end in a traceback because its output
folder is missing its write permission, nor silently replace the results of
an earlier run, nor leave half a file behind when it is stopped while
writing.  :func:`check_output` and :func:`check_folder` run at the boundary,
before anything compiles; :func:`write_atomic` writes to a temporary name in
the same folder and renames it into place (``os.replace``, atomic on one
file system), so a reader sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Callable

from ._validation import InputError


def _nearest_existing(folder: str) -> str:
    while folder and not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder or "."


def check_folder(folder: str | os.PathLike, what: str) -> str:
    """Refuse a folder that cannot be created or written to (named ``what`` in the message)."""
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"{what}: {folder} is a file; choose another path")
    base = _nearest_existing(folder)
    if not os.path.isdir(base):
        raise InputError(f"{what}: cannot create {folder}, since {base} is a file; choose another path")
    try:  # os.access says yes to root on a read-only mount: write a file to be sure
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        raise InputError(f"{what}: cannot write in {base} ({err.strerror}); choose a writable place") from None
    return folder


def check_output(path: str | os.PathLike, what: str, overwrite: bool = False, flag: str = "overwrite=True") -> str:
    """Refuse an output file that exists (unless ``overwrite``) or whose folder cannot be written.

    ``flag`` names how the user allows overwriting (``--overwrite`` on the command line).
    """
    path = os.fspath(path)
    if not os.path.basename(path):
        raise InputError(f"{what}: {path!r} names a folder, not a file")
    if os.path.isdir(path):
        raise InputError(f"{what}: {path} is a folder; give a file name")
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{what}: {path} exists; pass {flag} to replace it, or choose another path")
    check_folder(os.path.dirname(os.path.abspath(path)), what)
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> str:
    """``write(temporary_path)``, then rename it to ``path``; the temporary file goes on failure."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    root, ext = os.path.splitext(name)
    # the same extension (writers pick formats by it); a name no other writer picks
    tmp = os.path.join(folder, f".{root}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def free_name(path: str | os.PathLike) -> str:
    """``path``, or if it exists the first of ``stem-1.ext``, ``stem-2.ext``, ... that does not."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    k = 0
    while os.path.exists(path):
        k += 1
        path = f"{root}-{k}{ext}"
    return path
