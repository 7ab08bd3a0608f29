"""TensorProto <-> numpy, as TF Serving's gRPC API reads and writes tensors.

A request's tensor is read as Tensor::FromProto() reads it (framework/tensor.cc): `tensor_content`
must hold exactly the tensor's bytes; otherwise the typed field (`float_val`, `int_val`, ...)
fills it, fewer values than elements repeating the last one and none giving zeros. A reply's
tensors are written as Tensor::AsProtoField() writes them (TF Serving's default): dtype, shape and
every value in the typed field.
"""

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

MAX_RANK = 254  # TensorShape::MaxDimensions()
# Ours: a few bytes of proto can ask for a tensor of any size (one value, repeated); TensorFlow
# would try to allocate it. Larger ones are refused as unreadable.
MAX_TENSOR_BYTES = 1 << 30

# dtype -> (numpy dtype, the TensorProto field holding its values)
_TYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),  # half_val holds the bits, one per int
    types_pb2.DT_STRING: (np.object_, "string_val"),
}
_DTYPE_ENUM = {np.dtype(t): enum for enum, (t, _) in _TYPES.items() if t is not np.object_}


class Unreadable(ValueError):
    """A TensorProto that Tensor::FromProto() would refuse."""


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The tensor a request carries; Unreadable where TF Serving says "tensor parsing error"."""
    if proto.dtype not in _TYPES:
        raise Unreadable(f"unsupported dtype {proto.dtype}")
    dims = proto.tensor_shape.dim
    if proto.tensor_shape.unknown_rank or len(dims) > MAX_RANK:
        raise Unreadable("invalid shape")
    shape = tuple(d.size for d in dims)
    if any(size < 0 for size in shape):
        raise Unreadable("negative dimension")
    dtype, field = _TYPES[proto.dtype]
    count = int(np.prod(shape, dtype=object)) if shape else 1
    itemsize = np.dtype(dtype).itemsize if dtype is not np.object_ else 1
    if count * itemsize > MAX_TENSOR_BYTES:
        raise Unreadable("tensor too large")
    if count == 0:
        return np.empty(shape, dtype=dtype)
    if proto.tensor_content:
        if dtype is np.object_ or len(proto.tensor_content) != count * itemsize:
            raise Unreadable("tensor_content of the wrong size")
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape).copy()
    values = getattr(proto, field)
    if dtype is np.float16:
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    elif dtype is np.object_:
        flat = np.array(list(values) or [b""], dtype=object)
    else:
        flat = np.array(values, dtype=dtype)
    if len(flat) == 0:
        return np.zeros(shape, dtype=dtype)
    if len(flat) < count:
        # The last value repeats; strings are not trivially copyable, so they pad with "".
        pad = b"" if dtype is np.object_ else flat[-1]
        flat = np.concatenate([flat, np.full(count - len(flat), pad, dtype=flat.dtype)])
    return flat[:count].reshape(shape)


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A reply's tensor, as Tensor::AsProtoField() writes it."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if array.dtype.kind in "OSU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel()
        )
        return proto
    enum = _DTYPE_ENUM.get(array.dtype)
    if enum is None:
        raise ValueError(f"no TensorProto field for dtype {array.dtype}")
    proto.dtype = enum
    flat = array.ravel()
    if enum == types_pb2.DT_HALF:
        flat = flat.view(np.uint16)
    getattr(proto, _TYPES[enum][1]).extend(flat.tolist())
    return proto


def type_name(dtype: np.dtype) -> str:
    """DataType_Name() of a numpy dtype: DT_FLOAT, DT_STRING, ...; numpy's own name for a type
    that no TensorProto here carries."""
    dtype = np.dtype(dtype)
    enum = types_pb2.DT_STRING if dtype == np.object_ else _DTYPE_ENUM.get(dtype)
    return str(dtype) if enum is None else types_pb2.DataType.Name(enum)


def type_string(dtype: np.dtype) -> str:
    """DataTypeString(), as TF Serving's error messages name types: float, double, string, ..."""
    return type_name(dtype).removeprefix("DT_").lower()


def shape_string(shape) -> str:
    """TensorShape::DebugString(): [2,3]."""
    return "[" + ",".join(str(d) for d in shape) + "]"
