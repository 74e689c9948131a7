"""Requests no conformance test sends, against a `python -m export.serve` process with small limits:
declared sizes over a limit, graph errors on bad input, slow, stalled and vanishing clients."""

import concurrent.futures
import select
import socket
import struct
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from vae_zoo.testing.harness import build_zoo_model
from tests.test_serving import REPO
from tests.test_serving import call
from tests.test_serving import free_port
from tests.test_serving import images
from tests.test_serving import start_server
from vae_zoo.export import export_saved_model
from vae_zoo.commands.serve import exposure_warning

pytestmark = pytest.mark.slow
LIMITS = {"max_request_bytes": 2_000_000, "max_batch_size": 64, "max_output_bytes": 100_000,
          "max_concurrent_requests": 2, "max_queued_requests": 2, "read_timeout_seconds": 2,
          "idle_timeout_seconds": 3}
IMAGE_BYTES = 28 * 28 * 4
PREDICT = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile") / "dense_vae"
    export_saved_model(build_zoo_model("dense_vae", (28, 28, 1)), base)
    rest, grpc_port = free_port(), free_port()
    flags = [f"--{name}={value}" for name, value in LIMITS.items()]
    process = start_server("--model_base_path", str(base), "--model_name", "dense_vae",
                           "--rest_api_port", str(rest), "--port", str(grpc_port), *flags)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield {"url": f"http://127.0.0.1:{rest}", "rest_port": rest, "grpc_port": grpc_port,
           "process": process, "saved": tf.saved_model.load(str(base / "1")),
           "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel), "channel": channel}
    channel.close()
    process.terminate()
    process.wait(timeout=30)


def sample(n):
    return {"signature_name": "sample", "inputs": {"n": n}}


def assert_serving(served):
    """A valid request, in each API, still gets its answer."""
    status, body = call(served, "/v1/models/dense_vae:predict", sample(2))
    assert status == 200 and np.array(body["outputs"]).shape == (2, 28, 28, 1), body
    response = served["stub"].Predict(grpc_request("sample", n=tf.make_tensor_proto(2)), timeout=30)
    assert tf.make_ndarray(response.outputs["x_mean"]).shape == (2, 28, 28, 1)


def assert_nothing_logged(served):
    """No internal error (logged with its traceback) nor unhandled exception in the server."""
    printed = "".join(served["process"].printed).split("REST API at", 1)[1]  # since it listens
    assert "Traceback" not in printed and " ERROR " not in printed, printed


def grpc_request(signature, model="dense_vae", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    return request


def grpc_error(served, request):
    with pytest.raises(grpc.RpcError) as error:
        served["stub"].Predict(request, timeout=30)
    return error.value.code(), error.value.details()


def proto(dtype, shape, **fields):
    tensor = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


@pytest.mark.parametrize("body, status, message", [
    (sample(65), 429, "Input 'n' (a count of outputs) is 65, over the limit of 64 (--max_batch_size)"),
    (sample(32), 429, f"The outputs' size in bytes is {32 * IMAGE_BYTES}, over the limit of 100000 "
                      "(--max_output_bytes)"),
    ({"signature_name": "decode", "inputs": {"z": [[0.0] * 16] * 65}}, 429,
     "Batch size is 65, over the limit of 64 (--max_batch_size)"),
    (sample(-1), 400, "Dimension -1 must be >= 0"),  # raised inside the graph
    (sample(2 ** 40), 400, f"Input 'n' holds {2 ** 40}, out of the range of int32"),
    (sample(10 ** 30), 400, "ragged"),  # past 64 bits
    ({"instances": [[[[[[0.5]]]]]]}, 400, "Input 'x' has more than 4 dimensions"),
    ({"signature_name": "decode", "inputs": {"z": [[None] * 16]}}, 400, "must hold float32 numbers, got NoneType"),
    ({"signature_name": "decode", "inputs": {"z": [[True] * 16]}}, 400, "must hold float32 numbers, got bool"),
])
def test_rest_limits_and_client_errors(served, body, status, message):
    got_status, got = call(served, "/v1/models/dense_vae:predict", body)
    assert (got_status, list(got)) == (status, ["error"]) and message in got["error"], got


def test_rest_just_under_the_limits_is_served(served):
    status, body = call(served, "/v1/models/dense_vae:predict", sample(31))
    assert status == 200 and np.array(body["outputs"]).shape == (31, 28, 28, 1)
    z = np.full((31, 16), 0.25, "float32")
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "decode", "inputs": {"z": z.tolist()}})
    expected = served["saved"].signatures["decode"](z=tf.constant(z))["x_mean"]
    assert status == 200
    np.testing.assert_allclose(body["outputs"], expected, atol=1e-6)


def test_deeply_nested_json_is_a_client_error(served):
    for depth in (100_000, 950):  # past and just under the parser's recursion limit
        raw = b'{"instances": ' + b"[" * depth + b"0.5" + b"]" * depth + b"}"
        status, body = call(served, "/v1/models/dense_vae:predict", raw=raw)
        assert status == 400, body
    assert body["error"].startswith("Input 'x' has more than 4 dimensions")
    status, body = call(served, "/v1/models/dense_vae:predict", raw=b"[" * 100_000)
    assert (status, body["error"]) == (400, "JSON Parse error: nested too deeply")
    assert_serving(served)


def test_grpc_declared_sizes_are_checked_before_allocating(served):
    # A billion images declared, no values: TF would fill them with zeros (2.9 TiB).
    huge = proto(types_pb2.DT_FLOAT, [10 ** 9, 28, 28, 1])
    code, details = grpc_error(served, grpc_request("reconstruct", x=huge))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details == (f"The inputs' size in bytes is {10 ** 9 * IMAGE_BYTES}, over the limit of "
                       "2000000 (--max_request_bytes)")
    # Under the byte limit, over the batch limit; and an int64 overflow of the element count.
    for shape in ([65, 16], [2 ** 62, 16]):
        code, details = grpc_error(served, grpc_request("decode", z=proto(types_pb2.DT_FLOAT, shape)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "(--max" in details, details
    too_long = proto(types_pb2.DT_FLOAT, [1, 16], tensor_content=b"\0" * 2_000_001)
    code, details = grpc_error(served, grpc_request("decode", z=too_long))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details  # the message: gRPC's own check
    n = proto(types_pb2.DT_INT32, [], int_val=[65])
    assert grpc_error(served, grpc_request("sample", n=n)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Input 'n' (a count of outputs) is 65, over the limit of 64 (--max_batch_size)")
    assert_serving(served)


@pytest.mark.parametrize("request_, code, message", [
    (grpc_request("decode", z=proto(types_pb2.DT_FLOAT, [-1, 16])), "INVALID_ARGUMENT",
     "Input 'z' has a negative dimension: [-1, 16]"),
    (grpc_request("decode", z=proto(types_pb2.DT_FLOAT, [2, 16], tensor_content=b"\0" * 12)),
     "INVALID_ARGUMENT", "tensor_content holds 12 bytes, but shape [2, 16] of float32 takes 128"),
    (grpc_request("decode", z=proto(types_pb2.DT_STRING, [1, 16], string_val=[b"a"])),
     "INVALID_ARGUMENT", "Input 'z' must hold float32 numbers, got DT_STRING"),
    (grpc_request("decode", z=proto(999, [1, 16])), "INVALID_ARGUMENT", "got dtype 999"),
    (grpc_request("sample", n=proto(types_pb2.DT_INT32, [], int_val=[-1])), "INVALID_ARGUMENT",
     "Dimension -1 must be >= 0"),
    (grpc_request("sample", n=proto(types_pb2.DT_FLOAT, [], float_val=[2.0])), "INVALID_ARGUMENT",
     "Input 'n' must hold int32 numbers"),
    (grpc_request("sample", model="nope", n=tf.make_tensor_proto(1)), "NOT_FOUND",
     "Servable not found for request: Latest(nope)"),
    (grpc_request("nope", n=tf.make_tensor_proto(1)), "INVALID_ARGUMENT",
     'Serving signature name: "nope" not found in signature def'),
])
def test_grpc_client_errors(served, request_, code, message):
    got_code, details = grpc_error(served, request_)
    assert got_code == getattr(grpc.StatusCode, code) and message in details, details


def test_grpc_version_output_filter_and_unparsable_messages(served):
    request = grpc_request("sample", n=tf.make_tensor_proto(1))
    request.model_spec.version.value = 9
    assert grpc_error(served, request) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(dense_vae, 9)")
    request = grpc_request("encode", x=tf.make_tensor_proto(images(1)))
    request.output_filter.append("z_mean")
    response = served["stub"].Predict(request, timeout=30)
    assert list(response.outputs) == ["z_mean"]
    request.output_filter.append("nope")
    code, details = grpc_error(served, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("output tensor alias not found in signature: nope")
    raw = served["channel"].unary_unary(PREDICT)  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as error:
        raw(b"\xff\xff\xff", timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("Cannot parse PredictRequest")


def test_grpc_fewer_values_than_the_shape_repeat_the_last_one(served):
    decode = served["saved"].signatures["decode"]
    for values, expected in [
        ([0.1, 0.2], np.array([0.1] + [0.2] * 31, "float32").reshape(2, 16)),  # as TF's FromProto
        ([], np.zeros((2, 16), "float32")),
        ([0.3] * 40, np.full((2, 16), 0.3, "float32")),  # more values: the first ones
    ]:
        request = grpc_request("decode", z=proto(types_pb2.DT_FLOAT, [2, 16], float_val=values))
        response = served["stub"].Predict(request, timeout=30)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["x_mean"]),
                                   decode(z=tf.constant(expected))["x_mean"], atol=1e-6)
    half = proto(types_pb2.DT_HALF, [1, 16], half_val=[np.float16(0.5).view(np.uint16)])
    response = served["stub"].Predict(grpc_request("decode", z=half), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["x_mean"]),
                               decode(z=tf.fill([1, 16], 0.5))["x_mean"], atol=1e-6)


def stalled_body(served):
    """A REST predict whose body never arrives whole: headers and 10 of 1000 bytes."""
    sock = socket.create_connection(("127.0.0.1", served["rest_port"]), timeout=30)
    sock.sendall(b"POST /v1/models/dense_vae:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"instance")
    return sock


def read_all(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_stalled_bodies_hold_a_queue_place_not_a_worker_and_time_out(served):
    capacity = LIMITS["max_concurrent_requests"] + LIMITS["max_queued_requests"]
    stalled = [stalled_body(served) for _ in range(capacity - 1)]
    time.sleep(0.5)
    assert_serving(served)  # more stalled clients than workers, and still served
    stalled.append(stalled_body(served))
    time.sleep(0.5)
    status, body = call(served, "/v1/models/dense_vae:predict", sample(1))
    assert (status, body["error"]) == (429, "Too many requests: 4 in flight, the limit "
                                            "(--max_concurrent_requests=2 plus --max_queued_requests=2)")
    code, details = grpc_error(served, grpc_request("sample", n=tf.make_tensor_proto(1)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and details.startswith("Too many requests")
    start = time.monotonic()
    for sock in stalled:  # answered 408 and closed, after --read_timeout_seconds
        answer = read_all(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"not received within 2 s (--read_timeout_seconds)" in answer
    assert time.monotonic() - start < 10
    assert_serving(served)  # every place given back


def seconds_until_closed(sock, start, trickle=b""):
    """When the server closed `sock` (seconds after `start`), reading whatever it sends and
    sending it `trickle` every 0.2 s meanwhile; None if it stays open for 30 s."""
    while time.monotonic() - start < 30:
        try:
            if select.select([sock], [], [], 0.2)[0]:
                if sock.recv(65536) == b"":
                    return time.monotonic() - start
            elif trickle:
                sock.sendall(trickle)
        except OSError:  # reset
            return time.monotonic() - start
    return None


def test_slow_headers_and_idle_connections_are_closed(served):
    start = time.monotonic()
    idle = socket.create_connection(("127.0.0.1", served["rest_port"]), timeout=30)
    slow = socket.create_connection(("127.0.0.1", served["rest_port"]), timeout=30)
    grpc_idle = socket.create_connection(("127.0.0.1", served["grpc_port"]), timeout=30)
    slow.sendall(b"GET /v1/models/dense_vae HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    # A header sent a byte at a time is never whole: closed as idle, after --idle_timeout_seconds.
    assert LIMITS["idle_timeout_seconds"] - 0.5 < seconds_until_closed(slow, start, b"a") < 8
    assert seconds_until_closed(idle, start) < 8
    # No HTTP/2 preface: closed by gRPC's handshake timeout, --read_timeout_seconds.
    assert seconds_until_closed(grpc_idle, start) < 8
    for sock in (idle, slow, grpc_idle):
        sock.close()
    assert_serving(served)


def test_stalled_grpc_message_ends_in_deadline_exceeded(served):
    """A client that opens a Predict call and never sends its message."""
    never = served["channel"].stream_unary(PREDICT)

    def nothing():
        time.sleep(30)
        yield b""

    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        never(nothing(), timeout=30)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.value.details() == "Request message not received within 2 s (--read_timeout_seconds)"
    assert time.monotonic() - start < 10
    assert_serving(served)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_clients_vanishing_mid_response_leave_nothing_behind(served):
    body = b'{"signature_name": "sample", "inputs": {"n": 31}}'
    request = (b"POST /v1/models/dense_vae:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)

    def vanish():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server's writes wait
        sock.settimeout(30)
        sock.connect(("127.0.0.1", served["rest_port"]))
        sock.sendall(request)
        sock.recv(100)  # the answer has started
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # reset, mid-answer (it is ~0.5 MB)
        grpc_call = served["stub"].Predict.future(
            grpc_request("sample", n=tf.make_tensor_proto(31)), timeout=30)
        grpc_call.cancel()

    for _ in range(5):  # warm up
        vanish()
    before = rss_mb(served["process"].pid)
    for _ in range(30):  # many more than the 4 places
        vanish()
    time.sleep(0.5)
    assert rss_mb(served["process"].pid) - before < 50
    assert_serving(served)
    assert_nothing_logged(served)


def test_many_clients_at_once_get_answers_or_429(served):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(
            lambda i: call(served, "/v1/models/dense_vae:predict", sample(31)), range(48)))
    statuses = {status for status, _ in answers}
    assert statuses <= {200, 429} and 200 in statuses, statuses
    assert all(body["error"].startswith("Too many requests") for status, body in answers
               if status == 429)
    assert_serving(served)


def test_exposure_warning():
    assert [exposure_warning(a) for a in ("127.0.0.1", "127.0.0.7", "::1", "localhost")] == [None] * 4
    for address in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert exposure_warning(address) == (
            f"warning: listening on {address}: the REST and gRPC APIs have no authentication, "
            "anyone who can reach this address can query the models")


def test_loopback_is_quiet_and_other_addresses_warn(served, tmp_path):
    assert not any("warning: listening" in line for line in served["process"].printed)
    with socket.socket() as taken:  # the server cannot listen there: it warns, then stops
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "export.serve", "--model_base_path", str(tmp_path),
             "--bind_address", "0.0.0.0", "--rest_api_port", str(taken.getsockname()[1])],
            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot listen" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: listening")]
    assert warnings == [exposure_warning("0.0.0.0")]
