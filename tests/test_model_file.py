import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

import keras_seqrnn
from export import frozen_model
from export import graph
from export import model_file


@pytest.fixture(scope="module")
def unrolled_model():
    model = keras_seqrnn.build_classifier(3, 2, units=4)
    model.build((None, None, 3))
    function = graph.classifier_function(
        frozen_model.freeze(model), unroll=True, batch_size=2, max_length=6
    )
    return graph.convert({"serving_default": function}, None)


def test_describe_counts_ops_dtypes_and_bytes(unrolled_model):
    info = model_file.describe(unrolled_model)
    assert info.ops["UNPACK"] >= 1 and "WHILE" not in info.ops
    assert info.ops["TANH"] == 6  # one per unrolled step
    assert info.flex_ops == [] and info.custom_ops == []
    assert set(info.tensor_types) <= {"float32", "int32", "bool"}
    assert info.size == len(unrolled_model)
    # 3x4 kernel, 4x4 recurrent, biases, 4x2 head: all float32 constants.
    assert info.bytes_by_part["weights"] >= 4 * (12 + 16 + 4 + 8 + 2)
    assert info.weights_by_type["float32"] >= 4 * (12 + 16 + 4 + 8 + 2)
    # The converter's names carry the TensorFlow scopes of every step.
    assert info.bytes_by_part["names"] > 6 * 20
    assert 0 < info.bytes_by_part["graph"] < info.size


def test_finalize_stores_metadata_shortens_names_and_keeps_outputs(
    unrolled_model, rng
):
    finalized = model_file.finalize(unrolled_model, {"label_names": ["x", "y"]})
    assert model_file.read_metadata(finalized) == {"label_names": ["x", "y"]}
    assert model_file.read_metadata(unrolled_model) is None
    before = model_file.describe(unrolled_model)
    after = model_file.describe(finalized)
    assert after.bytes_by_part["names"] < before.bytes_by_part["names"]
    assert after.ops == before.ops
    padded = rng.normal(size=(2, 6, 3)).astype(np.float32)
    lengths = np.array([6, 2], np.int32)
    outputs = [
        Interpreter(model_content=m).get_signature_runner()(
            sequences=padded, lengths=lengths
        )["probabilities"]
        for m in (unrolled_model, finalized)
    ]
    np.testing.assert_array_equal(*outputs)


def test_not_a_tflite_file_is_refused():
    with pytest.raises(ValueError, match="Not a TFLite flatbuffer"):
        model_file.describe(b"PK\x03\x04 a zip file")


def test_finalize_keeps_buffers_aligned_to_16_bytes(unrolled_model):
    finalized = model_file.finalize(unrolled_model, {"a": 1})
    assert model_file.describe(finalized).misaligned_buffers == 0
    # What the generated object API alone writes: data at any byte.
    parsed = schema.ModelT.InitFromPackedBuf(bytearray(finalized), 0)
    builder = flatbuffers.Builder(0)
    builder.Finish(parsed.Pack(builder), file_identifier=b"TFL3")
    assert model_file.describe(bytes(builder.Output())).misaligned_buffers > 0
