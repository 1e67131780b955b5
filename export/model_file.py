"""Reading and annotating TFLite flatbuffers: ops, dtypes, bytes, metadata.

Uses the schema that ships with `ai_edge_litert`, so it needs no TensorFlow.
"""

import collections
import dataclasses
import json

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

METADATA_NAME = "keras_seqrnn"
BUFFER_ALIGNMENT = 16
_FILE_IDENTIFIER = b"TFL3"
_OP_NAMES = {
    code: name
    for name, code in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}
_TYPE_NAMES = {
    code: name.lower()
    for name, code in vars(schema.TensorType).items()
    if not name.startswith("_")
}


class TFLiteFileError(ValueError):
    """A file that is not a readable TFLite model of this package."""


@dataclasses.dataclass(frozen=True)
class ModelFileInfo:
    """What a TFLite file holds.

    Attributes:
        size: the file's bytes.
        ops: op name to count, over all subgraphs (`WHILE` bodies included);
            custom ops by their custom name, e.g. `FlexTensorListReserve`.
        tensor_types: dtype name to the number of tensors of that dtype.
        bytes_by_part: where the bytes go: `weights` (constant buffers),
            `quantization` (scales and zero points), `names` (tensor names)
            and `graph` (the rest: ops, tensors, signatures, metadata).
        num_tensors: tensors over all subgraphs.
        misaligned_buffers: constant buffers whose data does not start at
            a multiple of `BUFFER_ALIGNMENT` bytes in the file.
        weights_by_type: dtype name to the bytes of constant buffers of
            that dtype.
        metadata: the `keras_seqrnn` metadata, or None.
    """

    size: int
    ops: dict
    tensor_types: dict
    bytes_by_part: dict
    num_tensors: int
    misaligned_buffers: int
    weights_by_type: dict
    metadata: dict | None

    @property
    def flex_ops(self) -> list[str]:
        """Ops that need the Select TF ops (Flex) runtime."""
        return sorted(op for op in self.ops if op.startswith("Flex"))

    @property
    def custom_ops(self) -> list[str]:
        """Ops outside the builtin set."""
        return sorted(op for op in self.ops if op not in _OP_NAMES.values())


def describe(model: bytes) -> ModelFileInfo:
    """Reads a TFLite flatbuffer's ops, tensor dtypes and size breakdown."""
    parsed = _unpack(model)
    ops = collections.Counter()
    types = collections.Counter()
    weights_by_type = collections.Counter()
    counted = set()
    names = quantization = tensors = 0
    codes = [_op_name(code) for code in parsed.operatorCodes or []]
    for subgraph in parsed.subgraphs or []:
        for op in subgraph.operators or []:
            ops[codes[op.opcodeIndex]] += 1
        for tensor in subgraph.tensors or []:
            tensors += 1
            dtype = _TYPE_NAMES.get(tensor.type, str(tensor.type))
            types[dtype] += 1
            if tensor.buffer not in counted:
                counted.add(tensor.buffer)
                weights_by_type[dtype] += _len(parsed.buffers[tensor.buffer].data)
            names += len(tensor.name or b"")
            params = tensor.quantization
            if params is not None:
                # float32 scales, int64 zero points, float32 min/max.
                quantization += 4 * _len(params.scale)
                quantization += 8 * _len(params.zeroPoint)
                quantization += 4 * (_len(params.min) + _len(params.max))
    weights = sum(_len(buffer.data) for buffer in parsed.buffers or [])
    return ModelFileInfo(
        size=len(model),
        ops=dict(sorted(ops.items())),
        tensor_types=dict(sorted(types.items())),
        bytes_by_part={
            "weights": weights,
            "quantization": quantization,
            "names": names,
            "graph": max(len(model) - weights - quantization - names, 0),
        },
        num_tensors=tensors,
        misaligned_buffers=_misaligned_buffers(model),
        weights_by_type={k: v for k, v in sorted(weights_by_type.items()) if v},
        metadata=_metadata(parsed),
    )


def read_metadata(model: bytes) -> dict | None:
    """The `keras_seqrnn` metadata `finalize` stored, or None."""
    return _metadata(_unpack(model))


def finalize(model: bytes, metadata: dict) -> bytes:
    """Stores `metadata` (JSON) in the model and shortens tensor names.

    Tensor names carry the whole TensorFlow scope of every unrolled step
    (about a tenth of an unrolled file); signatures address tensors by
    index, so short names lose nothing. Inputs and outputs keep theirs.

    Args:
        model: a TFLite flatbuffer.
        metadata: JSON-serializable values.

    Returns:
        The new flatbuffer.
    """
    parsed = _unpack(model)
    for s, subgraph in enumerate(parsed.subgraphs or []):
        keep = {
            int(i)
            for ends in (subgraph.inputs, subgraph.outputs)
            for i in ([] if ends is None else ends)
        }
        for i, tensor in enumerate(subgraph.tensors or []):
            if i not in keep:
                tensor.name = f"{s}.{i}".encode()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(
        json.dumps(metadata, sort_keys=True).encode(), np.uint8
    )
    parsed.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(parsed.buffers) - 1
    parsed.metadata = [
        m for m in parsed.metadata or [] if m.name != entry.name
    ] + [entry]
    parsed.buffers = [_AlignedBuffer(b) for b in parsed.buffers]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))


class _AlignedBuffer(schema.BufferT):
    """A buffer whose data starts at a multiple of 16 bytes, as the schema
    asks (`data:[ubyte] (force_align: 16)`) and mmap loaders and delegates
    may rely on; the generated object API packs it at any byte."""

    def __init__(self, buffer):
        super().__init__()
        self.data, self.offset, self.size = buffer.data, buffer.offset, buffer.size

    def Pack(self, builder):  # noqa: N802 (the generated API's name)
        if self.data is None or not len(self.data):
            return super().Pack(builder)
        raw = np.asarray(self.data, np.uint8).tobytes()
        builder.Prep(BUFFER_ALIGNMENT, len(raw))
        data = builder.CreateByteVector(raw)
        schema.BufferStart(builder)
        schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def _misaligned_buffers(model: bytes) -> int:
    root = schema.Model.GetRootAs(model, 0)
    count = 0
    for i in range(root.BuffersLength()):
        table = root.Buffers(i)._tab
        field = table.Offset(4)  # data
        if field and table.VectorLen(field):
            count += table.Vector(field) % BUFFER_ALIGNMENT != 0
    return count


def _unpack(model: bytes):
    if len(model) < 8 or model[4:8] != _FILE_IDENTIFIER:
        raise TFLiteFileError("Not a TFLite flatbuffer (no 'TFL3' identifier).")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    # Offsets of a truncated or corrupt file point anywhere: struct,
    # index or type errors from the flatbuffers reader.
    except Exception as error:  # noqa: BLE001
        raise TFLiteFileError(
            f"A truncated or corrupt TFLite flatbuffer ({type(error).__name__}: "
            f"{error})."
        ) from None


def _metadata(parsed):
    for entry in parsed.metadata or []:
        if entry.name == METADATA_NAME.encode():
            try:
                data = parsed.buffers[entry.buffer].data
                return json.loads(bytes(bytearray(data)).decode())
            except (IndexError, TypeError, ValueError) as error:
                raise TFLiteFileError(
                    f"Its {METADATA_NAME} metadata is unreadable ({error})."
                ) from None
    return None


def _op_name(code):
    if code.customCode:
        return code.customCode.decode()
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return _OP_NAMES.get(builtin, str(builtin))


def _len(values):
    return 0 if values is None else len(values)
