import pytest

from export import PRESETS
from export import ExportConfig


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds(name):
    extra = {} if name.startswith("cpu") else {"max_length": 29}
    config = ExportConfig.preset(name, **extra)
    assert config.name == name
    assert config.unrolled == (config.target != "cpu")
    if config.unrolled:
        assert config.batch_size == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "tpu"}, "Unknown target 'tpu'"),
        ({"target": "cpu", "quantization": "int8"}, "does not take"),
        ({"target": "gpu", "quantization": "float16", "max_length": 9},
         "does not take"),
        ({"target": "mobile"}, "does not take quantization None"),
        ({"target": "gpu"}, "give max_length"),
        ({"target": "cpu", "max_length": 29}, "any length"),
        ({"target": "cpu", "batch_size": 4}, "any size"),
        ({"target": "gpu", "max_length": 0}, "max_length to be a positive"),
        ({"target": "gpu", "max_length": 9, "batch_size": 2.5},
         "batch_size to be a positive"),
        ({"target": "cpu", "io_type": "int8"}, "needs quantization='int8'"),
        ({"target": "cpu", "io_type": "uint8"}, "Unknown io_type"),
    ],
)
def test_invalid_configs_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExportConfig(**kwargs)


def test_preset_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="Unknown preset 'phone'"):
        ExportConfig.preset("phone")
    with pytest.raises(ValueError, match="Unknown export option.*threads"):
        ExportConfig.preset("gpu", max_length=9, threads=2)


def test_preset_overrides_apply():
    config = ExportConfig.preset(
        "mobile-int8", max_length=12, batch_size=4, io_type="int8"
    )
    assert (config.target, config.quantization) == ("mobile", "int8")
    assert (config.max_length, config.batch_size, config.io_type) == (
        12, 4, "int8")
