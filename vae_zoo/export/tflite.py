"""One multi-signature `.tflite` per quantisation mode, converted from the exported SavedModel."""

import warnings

import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")


def convert_to_tflite(saved_model_dir, quantize="none", representative=None, exclude=()):
    """Converts a SavedModel from `export_saved_model` to TFLite flatbuffer bytes.

    Only TFLite builtin ops are allowed (no Flex/Select-TF ops), so the file runs in plain LiteRT.
    Inputs and outputs stay float32 in every mode, so callers need not change.

    Args:
        saved_model_dir: a version folder written by `export_saved_model`.
        quantize: `"none"`, `"dynamic"` (int8 weights), `"float16"` (fp16 weights) or `"int8"`
            (weights and activations, calibrated on `representative`).
        representative: for int8, a dict `{signature: [input dict, ...]}` of calibration inputs.
            int8 needs every tensor calibrated, which random ops do not allow: the file then
            holds only these (deterministic) signatures; other modes hold every signature.
        exclude: signatures to leave out (`ZooModel.tflite_exclusions`).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "int8":
        if not representative:
            raise ValueError("int8 quantisation needs representative inputs")
        signature_keys = sorted(representative)
    else:
        signature_keys = sorted(set(tf.saved_model.load(str(saved_model_dir)).signatures)
                                - set(exclude))
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=signature_keys
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":

        def samples():
            for signature, inputs in representative.items():
                for example in inputs:
                    yield signature, example

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    with warnings.catch_warnings():
        # int8 calibration runs TF's own deprecated tf.lite.Interpreter internally.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


# Agreement of each mode's deterministic signatures with the SavedModel on real images (pixel probabilities
# in [0, 1]): the largest error for float modes, the mean and 99th percentile where weights or
# activations are 8-bit (a few saturated pixels move a lot, the picture does not).
TOLERANCES = {
    "none": {"max": 2e-5},
    "float16": {"max": 1e-2, "mean": 1e-3},
    "dynamic": {"mean": 1e-2, "p99": 0.1},
    "int8": {"mean": 2e-2, "p99": 0.15},
}


# Integer outputs (the codes of a vector-quantised encoder) must be equal, not close: the fraction
# of codes that each mode's file gives exactly as the SavedModel does. A vector halfway between two
# codes flips when 16- or 8-bit arithmetic moves it slightly.
# Measured on the trained vq_vae (train.py defaults): 100%, 99.7% and 86% of the codes equal;
# int8 (37%) leaves the code signatures out of its file (`ZooModel.tflite_exclusions`).
CODE_AGREEMENT = {"none": 1.0, "float16": 0.99, "dynamic": 0.8, "int8": 0.8}


def parity(outputs, reference):
    """`{max, mean, p99}` absolute differences between two arrays; for integer arrays (codes),
    `{agreement}`: the fraction of equal entries."""
    outputs, reference = np.asarray(outputs), np.asarray(reference)
    if np.issubdtype(reference.dtype, np.integer):
        return {"agreement": float((outputs == reference).mean())}
    error = abs(outputs.astype("float64") - reference.astype("float64")).ravel()
    return {"max": float(error.max()), "mean": float(error.mean()),
            "p99": float(sorted(error)[int(0.99 * (len(error) - 1))])}


def within_tolerance(quantize, errors, discrete_codes=False):
    """`errors` from `parity` (or the worst of several) within the mode's bounds.

    With `discrete_codes` (images decoded from nearest-code choices), a quantised mode's images
    are held to the mean and 99th percentile only: a code that flips redraws its patch, so the
    largest pixel error measures one patch, not the picture.
    """
    if "agreement" in errors and errors["agreement"] < CODE_AGREEMENT[quantize]:
        return False
    bounds = tolerance_for(quantize, discrete_codes)
    return all(errors[key] <= bound for key, bound in bounds.items() if key in errors)


def tolerance_for(quantize, discrete_codes=False):
    """The bounds `within_tolerance` holds the mode's images to."""
    bounds = dict(TOLERANCES[quantize])
    if discrete_codes and quantize != "none":
        bounds.pop("max", None)
        bounds.setdefault("p99", 10 * bounds["mean"])
    return bounds


def calibration_inputs(examples, endpoints, count=None):
    """`{signature: [input dict of one example, ...]}` from `model.endpoint_examples(images)`,
    for the given deterministic endpoints: int8 calibrates on single examples."""
    representative = {}
    for name in endpoints:
        inputs = examples[name]
        size = len(next(iter(inputs.values())))
        size = size if count is None else min(size, count)
        representative[name] = [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(size)]
    return representative
