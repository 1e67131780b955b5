import os
import pathlib
import stat

import pytest

from keras_seqrnn import atomic


def test_replaces_on_success(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with atomic.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json"
        tmp.write_text("new")
        assert path.read_text() == "old"
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("previous model")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half a model")
            raise RuntimeError("interrupted")
    assert path.read_text() == "previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with atomic.atomic_path(tmp_path / "model.keras") as tmp:
            tmp.write_bytes(b"weights")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model.keras").stat().st_mode) == 0o666 & ~umask


def test_the_file_and_its_folder_are_flushed_to_disk(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync",
        lambda fd: (synced.append(pathlib.Path(os.readlink(f"/proc/self/fd/{fd}"))),
                    fsync(fd)),
    )
    path = tmp_path / "metrics.json"
    with atomic.atomic_path(path) as tmp:
        tmp.write_text("{}")
    assert synced == [tmp, tmp_path]
