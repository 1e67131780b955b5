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
