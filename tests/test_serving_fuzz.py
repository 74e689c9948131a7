"""Fuzzing as a test: hypothesis sends REST bodies (JSON of any shape, depth and type) and gRPC
PredictRequests (TensorProtos of any dtype, shape and content; any model spec) to a running
`python -m export.serve`. Every answer must be a client error or a correct result: never a 5xx,
UNKNOWN or a dropped connection; and a valid request still succeeds after each batch.

The example counts keep this file to about a minute on 2 cores; a failure prints the example.
"""

import json
import urllib.parse
from datetime import timedelta

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from vae_zoo.testing.harness import build_zoo_model
from tests.test_serving import call
from tests.test_serving import free_port
from tests.test_serving import start_server
from tests.test_serving_hostile import LIMITS
from tests.test_serving_hostile import PREDICT
from tests.test_serving_hostile import assert_nothing_logged
from tests.test_serving_hostile import assert_serving
from vae_zoo.export import export_saved_model

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=300, deadline=timedelta(seconds=20), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIGNATURES = ["serving_default", "reconstruct", "encode", "decode", "sample"]
DETERMINISTIC = {"serving_default": ["reconstruction"], "reconstruct": ["reconstruction"],
                 "encode": ["z_mean", "z_log_var"], "decode": ["x_mean"], "sample": []}
INPUT = {"serving_default": "x", "reconstruct": "x", "encode": "x", "decode": "z", "sample": "n"}
REST_CLIENT_ERRORS = {400, 404, 413, 429}
GRPC_CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION,
                      grpc.StatusCode.OUT_OF_RANGE}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz") / "dense_vae"
    export_saved_model(build_zoo_model("dense_vae", (28, 28, 1)), base)
    rest, grpc_port = free_port(), free_port()
    flags = [f"--{name}={value}" for name, value in LIMITS.items() if "timeout" not in name]
    process = start_server("--model_base_path", str(base), "--model_name", "dense_vae",
                           "--rest_api_port", str(rest), "--port", str(grpc_port), *flags)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield {"url": f"http://127.0.0.1:{rest}", "process": process, "channel": channel,
           "saved": tf.saved_model.load(str(base / "1")),
           "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel)}
    channel.close()
    process.terminate()
    process.wait(timeout=30)


def check_result(served, signature, inputs, outputs):
    """`outputs` ({name: array}) are what the SavedModel gives for `inputs` in-process: equal for
    the deterministic outputs, the same shapes for the random ones."""
    expected = served["saved"].signatures[signature](
        **{name: tf.constant(value) for name, value in inputs.items()})
    assert set(outputs) <= set(expected)
    for name, value in outputs.items():
        assert value.shape == tuple(expected[name].shape), name
        if name in DETERMINISTIC[signature]:
            np.testing.assert_allclose(value, expected[name], atol=1e-5, equal_nan=True)


def mostly(valid, other):
    """`valid` seven times in eight (as hypothesis draws them, `other` comes more often), so that
    fuzzing still reaches the model: with `valid | other`, random paths and names would 404."""
    return st.sampled_from([valid] * 7 + [other]).flatmap(lambda strategy: strategy)


# REST ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["x", "z", "n", "inputs", "b64", ""]) | st.text(max_size=3),
                      children, max_size=3),
    max_leaves=20)


@st.composite
def tensors(draw, name):
    """Near-valid values of input `name`: the right rank or one off, any batch, odd numbers."""
    if name == "n":
        return draw(mostly(st.integers(-3, 80), st.sampled_from([2 ** 31, -2 ** 31 - 1, 2 ** 63, 1.0])))
    batch = draw(mostly(st.integers(0, 3), st.sampled_from([65])))
    shape = [batch, 28, 28, 1] if name == "x" else [batch, 16]
    shape = draw(mostly(st.just(shape), st.sampled_from([shape[1:], shape + [1], shape[:-1] + [3]])))
    values = np.random.default_rng(draw(st.integers(0, 2 ** 32))).uniform(-3, 3, shape)
    special = draw(mostly(st.none(), st.sampled_from([float("nan"), float("inf"), 1e39, 7])))
    if special is not None and values.size:
        values.flat[0] = special
    return values.tolist()


@st.composite
def rest_bodies(draw):
    signature = draw(mostly(st.sampled_from(SIGNATURES), st.sampled_from(["", "nope"]) | st.none()))
    name = INPUT.get(signature or "serving_default", draw(st.sampled_from(["x", "z", "n"])))
    value = draw(mostly(tensors(name), json_values))
    form = draw(mostly(st.sampled_from(["instances", "inputs"]), st.sampled_from(["both", "neither"])))
    if draw(st.booleans()):  # named inputs
        value = ([{name: row} for row in value] if form == "instances" and isinstance(value, list)
                 else {name: value})
    body = {} if signature is None else {"signature_name": signature}
    if form in ("instances", "both"):
        body["instances"] = value
    if form in ("inputs", "both"):
        body["inputs"] = value
    return draw(mostly(st.just(body), json_values))


def nested(depth):
    return b'{"instances": ' + b"[" * depth + b"0" + b"]" * depth + b"}"


raw_bodies = mostly(rest_bodies().map(lambda body: json.dumps(body).encode()),
                    st.binary(max_size=64) | st.integers(0, 20_000).map(nested)
                    | st.text(max_size=64).map(str.encode))
paths = mostly(st.just("/v1/models/dense_vae:predict"), st.sampled_from(["/v1/models/dense_vae/versions/1:predict",
                            "/v1/models/dense_vae/versions/7:predict",
                            "/v1/models/dense_vae/labels/stable:predict",
                            "/v1/models/dense_vae:regress", "/v1/models/nope:predict"])
               | st.text(min_size=1, max_size=8).map(
                   lambda name: f"/v1/models/{urllib.parse.quote(name, safe='')}:predict"))


def rest_answer_is_correct(served, path, raw, status, answer):
    if status != 200:
        assert status in REST_CLIENT_ERRORS and list(answer) == ["error"], (status, answer)
        return
    body = json.loads(raw)
    signature = body.get("signature_name") or "serving_default"
    name = INPUT[signature]
    form = "instances" if "instances" in body else "inputs"
    value = body[form]
    if form == "instances" and isinstance(value[0], dict):
        value = [row[name] for row in value]
    elif isinstance(value, dict):
        value = value[name]
    with np.errstate(over="ignore"):  # 1e39 is inf in float32, in the server as here
        inputs = {name: np.asarray(value, np.int32 if name == "n" else np.float32)}
    result = answer["predictions" if form == "instances" else "outputs"]
    if isinstance(result, dict):
        outputs = result
    elif result and isinstance(result[0], dict):
        outputs = {key: [row[key] for row in result] for key in result[0]}
    else:
        [output] = served["saved"].signatures[signature].structured_outputs
        outputs = {output: result}
    check_result(served, signature, inputs,
                 {key: np.asarray(value, np.float32) for key, value in outputs.items()})


@FUZZ
@given(path=paths, raw=raw_bodies)
def test_fuzz_rest(served, path, raw):
    status, answer = call(served, path, raw=raw)
    event(f"HTTP {status}")  # see them with --hypothesis-show-statistics
    rest_answer_is_correct(served, path, raw, status, answer)


def test_rest_still_serves_after_fuzzing(served):
    assert_serving(served)
    assert_nothing_logged(served)


# gRPC ------------------------------------------------------------------------------------------

VALUE_FIELDS = ["float_val", "double_val", "int_val", "int64_val", "half_val", "uint32_val",
                "uint64_val", "bool_val", "string_val"]
INTEGER_FIELDS = {"int_val": (-2 ** 31, 2 ** 31 - 1), "half_val": (-2 ** 31, 2 ** 31 - 1),
                  "int64_val": (-2 ** 63, 2 ** 63 - 1), "uint32_val": (0, 2 ** 32 - 1),
                  "uint64_val": (0, 2 ** 64 - 1)}


@st.composite
def tensor_protos(draw, name):
    if draw(mostly(st.just(True), st.just(False))):  # a well-formed tensor, any numeric dtype
        value = np.asarray(draw(tensors(name)))
        dtype = draw(mostly(st.just("int32" if name == "n" else "float32"),
                            st.sampled_from(["float64", "float16", "int32", "int64", "uint8"])))
        with np.errstate(all="ignore"):
            return tf.make_tensor_proto(value.astype(dtype))
    proto = tensor_pb2.TensorProto(
        dtype=draw(st.sampled_from(list(types_pb2.DataType.values())) | st.integers(-3, 300)))
    proto.tensor_shape.unknown_rank = draw(st.sampled_from([False] * 5 + [True]))
    for size in draw(st.lists(st.integers(-2, 70) | st.integers(-2 ** 63, 2 ** 63 - 1), max_size=6)):
        proto.tensor_shape.dim.add(size=size)
    content = draw(st.sampled_from(["none", "bytes", "values"]))
    if content == "bytes":
        proto.tensor_content = draw(st.binary(max_size=300))
    elif content == "values":
        field = draw(st.sampled_from(VALUE_FIELDS))
        if field in ("float_val", "double_val"):
            getattr(proto, field).extend(draw(st.lists(st.floats(width=32), max_size=40)))
        elif field == "bool_val":
            proto.bool_val.extend(draw(st.lists(st.booleans(), max_size=5)))
        elif field == "string_val":
            proto.string_val.extend(draw(st.lists(st.binary(max_size=4), max_size=5)))
        else:
            low, high = INTEGER_FIELDS[field]
            getattr(proto, field).extend(draw(st.lists(st.integers(low, high), max_size=40)))
    return proto


@st.composite
def predict_requests(draw):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(mostly(st.just("dense_vae"),
                                          st.sampled_from(["", "nope"]) | st.text(max_size=4)))
    version = draw(mostly(st.sampled_from(["none", "1"]), st.sampled_from(["version", "label"])))
    if version == "1":
        request.model_spec.version.value = 1
    elif version == "version":
        request.model_spec.version.value = draw(st.integers(-2 ** 63, 2 ** 63 - 1))
    elif version == "label":
        request.model_spec.version_label = draw(st.text(max_size=4))
    signature = draw(mostly(st.sampled_from(SIGNATURES), st.sampled_from(["", "nope"])))
    request.model_spec.signature_name = signature
    names = draw(mostly(st.just([INPUT.get(signature, "x")]), st.lists(
        st.sampled_from(["x", "z", "n"]) | st.text(max_size=3), max_size=2, unique=True)))
    for name in names:
        request.inputs[name].CopyFrom(draw(tensor_protos(name if name in ("x", "z", "n") else "z")))
    request.output_filter.extend(draw(mostly(st.just([]), st.lists(
        st.sampled_from(["reconstruction", "x_mean", "z", "z_mean", "nope"]), max_size=2))))
    return request


def reference_input(proto, dtype):
    """What TF makes of a TensorProto (tf.make_ndarray; more values than the shape: the first)."""
    proto = tensor_pb2.TensorProto.FromString(proto.SerializeToString())
    size = int(np.prod([d.size for d in proto.tensor_shape.dim]))
    for field in VALUE_FIELDS:
        del getattr(proto, field)[size:]
    with np.errstate(over="ignore"):
        return tf.make_ndarray(proto).astype(dtype)


@FUZZ
@given(request=predict_requests())
def test_fuzz_grpc(served, request):
    try:
        response = served["stub"].Predict(request, timeout=30)
    except grpc.RpcError as error:
        event(error.code().name)
        assert error.code() in GRPC_CLIENT_ERRORS, (error.code(), error.details())
        return
    event("OK")
    signature = request.model_spec.signature_name or "serving_default"
    name = INPUT[signature]
    try:
        inputs = {name: reference_input(request.inputs[name], np.int32 if name == "n" else np.float32)}
    except (TypeError, ValueError, OverflowError):  # beyond make_ndarray: shapes only
        inputs = None
    outputs = {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}
    all_outputs = served["saved"].signatures[signature].structured_outputs
    assert set(outputs) == (set(request.output_filter) or set(all_outputs))
    if inputs is not None:
        check_result(served, signature, inputs, outputs)


@FUZZ
@given(raw=st.binary(max_size=200) | predict_requests().map(
    lambda request: request.SerializeToString()[:-1]))
def test_fuzz_grpc_bytes(served, raw):
    """Messages that are not (or no longer) PredictRequests."""
    try:
        served["channel"].unary_unary(PREDICT)(raw, timeout=30)
    except grpc.RpcError as error:
        assert error.code() in GRPC_CLIENT_ERRORS, (error.code(), error.details())


def test_grpc_still_serves_after_fuzzing(served):
    assert_serving(served)
    assert_nothing_logged(served)
