"""The local server against serving-contract.md, talking to a real `python -m export.serve` process."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from export.client import ServingClient
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.export import export_saved_model

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "export.serve", *args], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    process.printed = []  # every line it prints
    for line in process.stdout:
        process.printed.append(line)
        if line.startswith("REST API at") or time.monotonic() > deadline:
            break
    assert process.poll() is None, "server exited"
    # Keep reading what it prints, so that a full pipe never blocks it.
    threading.Thread(target=lambda: process.printed.extend(process.stdout), daemon=True).start()
    return process


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "dense_vae"
    model = build_zoo_model("dense_vae", (28, 28, 1))
    export_saved_model(model, base)
    rest, grpc_port = free_port(), free_port()
    process = start_server("--model_base_path", str(base), "--model_name", "dense_vae",
                           "--rest_api_port", str(rest), "--port", str(grpc_port),
                           "--max_request_bytes", "2000000")
    yield {"url": f"http://127.0.0.1:{rest}", "grpc": f"127.0.0.1:{grpc_port}", "base": base,
           "model": model, "saved": tf.saved_model.load(str(base / "1"))}
    process.terminate()
    process.wait(timeout=30)


def call(served, path, body=None, raw=None):
    """(HTTP status, decoded JSON body) for GET (no body) or POST."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(served["url"] + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 28, 28, 1)).astype("float32")


def test_model_status(served):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(served, "/v1/models/dense_vae") == (200, expected)
    assert call(served, "/v1/models/dense_vae/versions/1") == (200, expected)


def test_model_metadata(served):
    status, body = call(served, "/v1/models/dense_vae/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "dense_vae", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["decode", "encode", "reconstruct", "sample", "serving_default"]
    x = signatures["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert x["tensor_shape"] == {"dim": [{"size": s, "name": ""} for s in ("-1", "28", "28", "1")],
                                 "unknown_rank": False}
    assert signatures["encode"]["method_name"] == "tensorflow/serving/predict"
    assert sorted(signatures["encode"]["outputs"]) == ["z", "z_log_var", "z_mean"]


def test_predict_row_and_columnar_forms_match_the_saved_model(served):
    x = images(3)
    expected = served["saved"].signatures["serving_default"](x=tf.constant(x))["reconstruction"]
    status, body = call(served, "/v1/models/dense_vae:predict", {"instances": x.tolist()})
    assert status == 200 and list(body) == ["predictions"]
    np.testing.assert_allclose(np.array(body["predictions"]), expected, atol=1e-6)
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "reconstruct", "inputs": {"x": x.tolist()}})
    assert status == 200 and list(body) == ["outputs"]
    np.testing.assert_allclose(np.array(body["outputs"]), expected, atol=1e-6)
    status, body = call(served, "/v1/models/dense_vae/versions/1:predict", {"inputs": x.tolist()})
    np.testing.assert_allclose(np.array(body["outputs"]), expected, atol=1e-6)


def test_predict_several_outputs(served):
    x = images(2)
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "encode", "instances": x.tolist()})
    assert status == 200 and len(body["predictions"]) == 2
    assert sorted(body["predictions"][0]) == ["z", "z_log_var", "z_mean"]
    z_mean = served["saved"].signatures["encode"](x=tf.constant(x))["z_mean"].numpy()
    np.testing.assert_allclose([p["z_mean"] for p in body["predictions"]], z_mean, atol=1e-6)
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "encode", "inputs": {"x": x.tolist()}})
    assert sorted(body["outputs"]) == ["z", "z_log_var", "z_mean"]
    assert np.array(body["outputs"]["z"]).shape == (2, 16)


def test_decode_and_sample_signatures(served):
    z = np.zeros((2, 16), "float32")
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "decode", "instances": [{"z": row} for row in z.tolist()]})
    assert status == 200 and np.array(body["predictions"]).shape == (2, 28, 28, 1)
    status, body = call(served, "/v1/models/dense_vae:predict",
                        {"signature_name": "sample", "inputs": {"n": 5}})
    assert status == 200 and np.array(body["outputs"]).shape == (5, 28, 28, 1)


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/dense_vae/versions/9:predict", {"instances": [1]}, 404,
     "Servable not found for request: Specific(dense_vae, 9)"),
    ("/v1/models/dense_vae:predict", {"signature_name": "nope", "instances": [1]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("/v1/models/dense_vae:predict", {"instances": [[1, 2]]}, 400, "has shape [1, 2], but the signature expects [-1, 28, 28, 1]"),
    ("/v1/models/dense_vae:predict", {"instances": [["a"] * 28]}, 400, "must hold float32 numbers"),
    ("/v1/models/dense_vae:predict", {"instances": [[0.1], [0.1, 0.2]]}, 400, "ragged"),
    ("/v1/models/dense_vae:predict", {"signature_name": "sample", "inputs": {"n": 1.5}}, 400, "must hold int32"),
    ("/v1/models/dense_vae:predict", {"signature_name": "decode", "inputs": {"x": [[0.0]]}}, 400, "'inputs' must name the inputs ['z']"),
    ("/v1/models/dense_vae:predict", {"examples": []}, 400, "Missing 'inputs' or 'instances' key"),
    ("/v1/models/dense_vae:predict", {"instances": [], "inputs": []}, 400, "cannot have both"),
    ("/v1/models/dense_vae:classify", {"instances": [1]}, 400, "Expected classify signature method_name"),
    ("/v1/models/dense_vae:explode", {"instances": [1]}, 400, "Malformed request: POST /v1/models/dense_vae:explode"),
    ("/v1/foo", {"instances": [1]}, 400, "Malformed request"),
])
def test_errors_have_tf_serving_codes_and_messages(served, path, body, status, message):
    got_status, got = call(served, path, body)
    assert got_status == status and message in got["error"], got
    assert list(got) == ["error"]


def test_bad_json_and_oversized_requests(served):
    status, body = call(served, "/v1/models/dense_vae:predict", raw=b"{not json")
    assert status == 400 and body["error"].startswith("JSON Parse error")
    status, body = call(served, "/v1/models/dense_vae:predict", raw=b"[" + b"0.5," * 1_000_000 + b"0]")
    assert status == 413 and "too large" in body["error"]
    assert call(served, "/v1/models/dense_vae")[0] == 200  # still serving


def test_client_against_the_server(served):
    client = ServingClient(served["url"], "dense_vae")
    assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    samples = client.predict({"n": 3}, signature_name="sample", columnar=True)["output"]
    assert samples.shape == (3, 28, 28, 1)
    encoded = client.predict(images(2), signature_name="encode")
    assert encoded["z_mean"].shape == (2, 16)


def test_grpc_predict_metadata_and_status(served):
    channel = grpc.insecure_channel(served["grpc"])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dense_vae"
    request.model_spec.signature_name = "reconstruct"
    x = images(2)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    response = stub.Predict(request, timeout=30)
    expected = served["saved"].signatures["reconstruct"](x=tf.constant(x))["reconstruction"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["reconstruction"]), expected, atol=1e-6)
    assert response.model_spec.version.value == 1

    request.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata_request.model_spec.name = "dense_vae"
    metadata = stub.GetModelMetadata(metadata_request, timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_map)
    assert "encode" in signature_map.signature_def

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "dense_vae"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert [v.version for v in status.model_version_status] == [1]


def test_new_versions_are_picked_up(served):
    export_saved_model(served["model"], served["base"])  # version 2, written atomically
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = call(served, "/v1/models/dense_vae")
        if body["model_version_status"][0]["version"] == "2":
            break
        time.sleep(0.5)
    assert body["model_version_status"][0]["version"] == "2"
    assert call(served, "/v1/models/dense_vae/versions/1")[0] == 404  # latest policy: one version
    assert call(served, "/v1/models/dense_vae/metadata")[1]["model_spec"]["version"] == "2"


def test_model_config_file_serves_several_models_with_labels(tmp_path):
    for name in ("dense_vae", "conv_vae"):
        export_saved_model(build_zoo_model(name, (28, 28, 1)), tmp_path / name)
    shutil.copytree(tmp_path / "conv_vae" / "1", tmp_path / "conv_vae" / "2")
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{
      config {{ name: "dense_vae" base_path: "{tmp_path / 'dense_vae'}" model_platform: "tensorflow" }}
      config {{ name: "conv_vae" base_path: "{tmp_path / 'conv_vae'}" model_platform: "tensorflow"
                model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 1 }} }}
    }}""")
    port = free_port()
    process = start_server("--model_config_file", str(config), "--rest_api_port", str(port))
    try:
        served = {"url": f"http://127.0.0.1:{port}"}
        assert call(served, "/v1/models/dense_vae")[0] == 200
        status, body = call(served, "/v1/models/conv_vae")
        assert [v["version"] for v in body["model_version_status"]] == ["2", "1"]
        status, body = call(served, "/v1/models/conv_vae/labels/stable:predict",
                            {"instances": images(1).tolist()})
        assert status == 200 and np.array(body["predictions"]).shape == (1, 28, 28, 1)
        status, body = call(served, "/v1/models/conv_vae/labels/canary:predict",
                            {"instances": images(1).tolist()})
        assert status == 400 and "Unrecognized servable version label: canary" in body["error"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_binds_loopback_by_default_and_rejects_bad_flags(tmp_path):
    result = subprocess.run([sys.executable, "-m", "export.serve", "--model_base_path",
                             str(tmp_path / "missing")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "does not exist" in result.stderr
    from vae_zoo.commands.serve import build_parser
    assert build_parser().parse_args([]).bind_address == "127.0.0.1"
