"""Atomic file writes: a file appears whole, or not at all."""

import contextlib
import os
import pathlib
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields a temporary path beside `path`, renamed onto it on success.

    Write the file to the yielded path. When the block exits normally the
    file replaces `path` in one `os.replace`; when it raises, or the process
    dies, `path` is untouched and the temporary file is removed (or, after a
    crash, left under a name starting with `.` and ending in `.tmp` plus
    the original suffix).

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
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
