"""Predict inputs from TF Serving's JSON (g3doc/api_rest.md) and from TensorProtos, and the JSON
of a response; every input's declared size is checked against the limits before it is built.

Row ("instances") requests list one entry per example; columnar ("inputs") requests give each
input as one tensor. Responses answer in the request's form: "predictions" or "outputs".
"""

import math

import numpy as np
from tensorflow.core.framework import types_pb2

from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.limits import check_inputs

# The real-number dtypes a TensorProto may carry for a numeric input, and the field that holds
# their values when `tensor_content` is empty (tensorflow/core/framework/tensor.proto).
PROTO_VALUES = {
    types_pb2.DT_HALF: ("half_val", np.float16),
    types_pb2.DT_FLOAT: ("float_val", np.float32),
    types_pb2.DT_DOUBLE: ("double_val", np.float64),
    types_pb2.DT_INT8: ("int_val", np.int8),
    types_pb2.DT_INT16: ("int_val", np.int16),
    types_pb2.DT_INT32: ("int_val", np.int32),
    types_pb2.DT_INT64: ("int64_val", np.int64),
    types_pb2.DT_UINT8: ("int_val", np.uint8),
    types_pb2.DT_UINT16: ("int_val", np.uint16),
    types_pb2.DT_UINT32: ("uint32_val", np.uint32),
    types_pb2.DT_UINT64: ("uint64_val", np.uint64),
}
MAX_RANK = 64  # numpy's


def input_specs(signature):
    """`{name: tf.TensorSpec}` of a concrete signature function's named inputs."""
    return dict(signature.structured_input_signature[1])


def parse_predict_request(body, specs, limits):
    """Returns `(arrays, row_format)` from a decoded JSON body, checked against the specs."""
    if not isinstance(body, dict):
        raise ServingError("INVALID_ARGUMENT", "Request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(
            "INVALID_ARGUMENT",
            "Missing 'inputs' or 'instances' key" if "instances" not in body
            else "Request cannot have both 'instances' and 'inputs' keys",
        )
    if "instances" in body:
        return to_input_arrays(_rows(body["instances"], specs), specs, limits), True
    return to_input_arrays(_columns(body["inputs"], specs), specs, limits), False


def _rows(instances, specs):
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    names = sorted(specs)
    if all(isinstance(row, dict) for row in instances):
        for row in instances:
            if sorted(row) != names:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Each instance must have the named inputs {names}, got {sorted(row)}",
                )
        columns = {name: [row[name] for row in instances] for name in names}
    elif len(names) == 1:
        columns = {names[0]: instances}
    else:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"The signature has several inputs {names}: each instance must be an object",
        )
    return columns


def _columns(inputs, specs):
    names = sorted(specs)
    if isinstance(inputs, dict):  # a JSON object is never a tensor value: named inputs
        if sorted(inputs) != names:
            raise ServingError(
                "INVALID_ARGUMENT", f"'inputs' must name the inputs {names}, got {sorted(inputs)}"
            )
        columns = inputs
    elif len(names) == 1:
        columns = {names[0]: inputs}
    else:
        raise ServingError("INVALID_ARGUMENT", f"'inputs' must be an object with keys {names}")
    return columns


def to_input_arrays(columns, specs, limits):
    """`{name: np.ndarray}` from JSON values, their sizes checked before numpy builds them."""
    shapes = {name: _nested_shape(name, value, specs[name]) for name, value in columns.items()}
    check_inputs(shapes, specs, limits)
    return {name: _cast(name, _json_array(name, value), specs[name])
            for name, value in columns.items()}


def _nested_shape(name, value, spec):
    """The shape of nested lists along their first elements: a cheap look, without recursion,
    before numpy builds (and recurses into) the array."""
    rank = spec.shape.rank if spec.shape.rank is not None else MAX_RANK
    shape = []
    while isinstance(value, list):
        if len(shape) > rank:
            raise ServingError("INVALID_ARGUMENT", f"Input '{name}' has more than {rank} dimensions, "
                               f"but the signature expects {_expected(spec)}")
        shape.append(len(value))
        if not value:
            return shape
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' must hold {spec.dtype.name} "
                           f"numbers, got {type(value).__name__} values")
    return shape


def _json_array(name, value):
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        array = None
    if array is None or array.dtype == object:
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' is ragged: every row needs the "
                           "same length (or it holds numbers too large for 64 bits)")
    return array


def _expected(spec):
    return [-1 if d is None else d for d in spec.shape.as_list()] if spec.shape.rank is not None \
        else "any shape"


def check_shape(name, shape, spec):
    if not spec.shape.is_compatible_with(shape):
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input '{name}' has shape {list(shape)}, but the signature expects {_expected(spec)} "
            "(-1: any size)",
        )


def _cast(name, array, spec):
    """The input as the signature's dtype: integers may become floats, never the other way, and
    integers must fit (a wrapped-around count would be a different request)."""
    dtype = np.dtype(spec.dtype.as_numpy_dtype)
    if array.dtype.kind not in "iuf" or (dtype.kind in "iu" and array.dtype.kind == "f"):
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input '{name}' must hold {spec.dtype.name} numbers, got {array.dtype.name} values",
        )
    check_shape(name, array.shape, spec)
    if dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise ServingError("INVALID_ARGUMENT", f"Input '{name}' holds {low if low < info.min else high}, "
                               f"out of the range of {spec.dtype.name}")
    with np.errstate(over="ignore"):  # a float past float32's range is inf, as in TF
        return array.astype(dtype)


def proto_input_arrays(protos, specs, limits):
    """`{name: np.ndarray}` from TensorProtos, their declared sizes checked before decoding."""
    shapes = {name: _proto_shape(name, proto) for name, proto in protos.items()}
    for name, shape in shapes.items():
        check_shape(name, shape, specs[name])
    check_inputs(shapes, specs, limits)
    return {name: _cast(name, _proto_array(name, protos[name], shapes[name], specs[name]),
                        specs[name])
            for name in protos}


def _proto_shape(name, proto):
    if proto.tensor_shape.unknown_rank:
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' has an unknown rank")
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in shape):
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' has a negative dimension: {shape}")
    return shape


def _proto_array(name, proto, shape, spec):
    """TF's Tensor::FromProto: `tensor_content` must hold exactly the shape's bytes; otherwise the
    dtype's value field is read, no values meaning zeros and too few repeating the last one."""
    if proto.dtype not in PROTO_VALUES:
        dtype = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() \
            else f"dtype {proto.dtype}"
        raise ServingError("INVALID_ARGUMENT",
                           f"Input '{name}' must hold {spec.dtype.name} numbers, got {dtype}")
    field, dtype = PROTO_VALUES[proto.dtype]
    size = math.prod(shape)
    if proto.tensor_content:
        if len(proto.tensor_content) != size * np.dtype(dtype).itemsize:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Input '{name}': tensor_content holds {len(proto.tensor_content)} bytes, but shape "
                f"{shape} of {np.dtype(dtype).name} takes {size * np.dtype(dtype).itemsize}")
        return np.frombuffer(proto.tensor_content, dtype).reshape(shape)
    values = getattr(proto, field)
    if not values:
        return np.zeros(shape, dtype)
    count = min(len(values), size)
    if proto.dtype == types_pb2.DT_HALF:  # half_val holds the bits
        array = np.fromiter(values, np.int64, count).astype(np.uint16).view(np.float16)
    else:
        wide = {"f": np.float64, "i": np.int64, "u": np.uint64}[np.dtype(dtype).kind]
        array = np.fromiter(values, wide, count).astype(dtype)  # C casts, as TF's
    if count < size:
        array = np.pad(array, (0, size - count), mode="edge")
    return array.reshape(shape)


def encode_predict_response(outputs, row_format):
    """`outputs` is `{name: np.ndarray}`; answers in the form the request used."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": outputs[names[0]].tolist()}
        return {"outputs": {name: outputs[name].tolist() for name in names}}
    if len(names) == 1:
        return {"predictions": outputs[names[0]].tolist()}
    batch = len(outputs[names[0]])
    columns = {name: outputs[name].tolist() for name in names}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(batch)]}
