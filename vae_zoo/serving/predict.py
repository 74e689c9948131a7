"""One predict call, shared by REST and gRPC: the output limits around the graph, and its errors."""

import tensorflow as tf

from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.limits import batch_of
from vae_zoo.serving.limits import check_outputs


def output_specs(signature_def, names):
    """`{name: (shape with None for unknown dims, numpy dtype)}` of the named outputs."""
    specs = {}
    for name in names:
        info = signature_def.outputs[name]
        shape = [] if info.tensor_shape.unknown_rank else [
            None if d.size < 0 else d.size for d in info.tensor_shape.dim]
        specs[name] = (shape, tf.dtypes.as_dtype(info.dtype).as_numpy_dtype)
    return specs


def run(loaded, signature_name, signature, arrays, limits, output_filter=()):
    """`{output: np.ndarray}` of a signature on checked input arrays, limited to `output_filter`
    (TF Serving's: every name must be an output, once)."""
    signature_def = loaded.signature_defs[signature_name]
    names = sorted(signature_def.outputs)
    for name in output_filter:
        if name not in signature_def.outputs:
            raise ServingError("INVALID_ARGUMENT",
                               f"output tensor alias not found in signature: {name} "
                               f"Outputs expected to be in the set {{{','.join(names)}}}.")
    if len(set(output_filter)) != len(output_filter):
        raise ServingError("INVALID_ARGUMENT", "duplicate output tensor alias in output_filter")
    names = list(output_filter) or names
    check_outputs(output_specs(signature_def, names), batch_of(arrays, limits), limits)
    try:
        results = signature(**{name: tf.constant(value) for name, value in arrays.items()})
    except tf.errors.OpError as e:
        raise ServingError.from_op_error(e) from None
    except (ValueError, TypeError) as e:  # raised by the function's Python side on bad input
        raise ServingError("INVALID_ARGUMENT", str(e).splitlines()[0]) from None
    outputs = {name: results[name].numpy() for name in names}
    check_outputs(None, None, limits, outputs)
    return outputs
