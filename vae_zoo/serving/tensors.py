"""TF Serving's JSON encodings of a predict request and response (g3doc/api_rest.md).

Row ("instances") requests list one entry per example; columnar ("inputs") requests give each
input as one tensor. Responses answer in the request's form: "predictions" or "outputs".
"""

import numpy as np

from vae_zoo.serving.errors import ServingError


def input_specs(signature):
    """`{name: tf.TensorSpec}` of a concrete signature function's named inputs."""
    return dict(signature.structured_input_signature[1])


def parse_predict_request(body, specs):
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
        return _from_rows(body["instances"], specs), True
    return _from_columns(body["inputs"], specs), False


def _from_rows(instances, specs):
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
    return {name: to_input_array(name, value, specs[name]) for name, value in columns.items()}


def _from_columns(inputs, specs):
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
    return {name: to_input_array(name, value, specs[name]) for name, value in columns.items()}


def to_input_array(name, value, spec):
    dtype = spec.dtype.as_numpy_dtype
    try:
        array = np.asarray(value)
    except ValueError:
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' is ragged: every row needs the same length") from None
    if array.dtype == object:
        raise ServingError("INVALID_ARGUMENT", f"Input '{name}' is ragged: every row needs the same length")
    if array.dtype.kind not in "iuf" or (np.dtype(dtype).kind in "iu" and array.dtype.kind == "f"):
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input '{name}' must hold {spec.dtype.name} numbers, got {array.dtype.name} values",
        )
    if not spec.shape.is_compatible_with(array.shape):
        expected = [-1 if d is None else d for d in spec.shape.as_list()]
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input '{name}' has shape {list(array.shape)}, but the signature expects {expected} "
            "(-1: any size)",
        )
    return array.astype(dtype)


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
