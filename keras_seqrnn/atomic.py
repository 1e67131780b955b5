"""Atomic, durable file writes: a file appears whole, or not at all."""

import contextlib
import os
import pathlib
import secrets
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields a temporary path beside `path`, renamed onto it on success.

    Write the file to the yielded path. When the block exits normally the
    file is flushed to disk, replaces `path` in one `os.replace`, and the
    folder is flushed too, so after a power loss `path` holds the old file
    or the new one. When the block raises, or the process dies, `path` is
    untouched and the temporary file is removed (or, after a crash, left
    under a name starting with `.` and ending in `.tmp` plus the original
    suffix). The file gets an ordinary file's permissions: `0o666` less the
    process umask.

    Args:
        path: the final file name. Its suffix is kept on the temporary file,
            since some writers (`keras.Model.save`) check it.

    Example:

    ```python
    with atomic_path("out/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = pathlib.Path(path)
    tmp = _reserve(path)
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        tmp.unlink(missing_ok=True)


def _reserve(path):
    """Creates an empty, unique temporary file beside `path`. Unlike
    `tempfile.mkstemp` (mode 0600), the umask decides its permissions."""
    while True:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _fsync(path, flags):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
