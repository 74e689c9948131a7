"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus), with the messages of the `tensorflow-serving-api` package, on grpc.aio.

Methods are registered by hand, with a request stream: the wire format of a unary call is the
same, and reading the request message ourselves lets a read timeout end a client that never sends
it whole, lets Predict count against the concurrency limit before its message is held, and answers
a message that does not parse with INVALID_ARGUMENT.
"""

import asyncio
import contextlib

import grpc
import tensorflow as tf
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import status_pb2

from vae_zoo.serving import predict
from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.tensors import input_specs
from vae_zoo.serving.tensors import proto_input_arrays


def _lookup(registry, model_spec):
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label or None
    return registry.get(model_spec.name, version, label)


def _predict(registry, request, limits):
    """The PredictResponse, all on a worker thread (decoding and encoding tensors is CPU work)."""
    version, loaded = _lookup(registry, request.model_spec)
    name, signature = loaded.signature(request.model_spec.signature_name or None)
    specs = input_specs(signature)
    if sorted(request.inputs) != sorted(specs):
        raise ServingError(
            "INVALID_ARGUMENT", f"inputs must be {sorted(specs)}, got {sorted(request.inputs)}")
    arrays = proto_input_arrays(dict(request.inputs), specs, limits)
    outputs = predict.run(loaded, name, signature, arrays, limits, list(request.output_filter))
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    response.model_spec.signature_name = name
    for key, array in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(array))
    return response


def _metadata(registry, request):
    if list(request.metadata_field) != ["signature_def"]:
        raise ServingError("INVALID_ARGUMENT", "metadata_field must be ['signature_def']")
    version, loaded = _lookup(registry, request.model_spec)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in loaded.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    packed = any_pb2.Any()
    packed.Pack(signature_map)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    response.metadata["signature_def"].CopyFrom(packed)
    return response


def _status(registry, request):
    spec = request.model_spec
    status = registry.status(spec.name, spec.version.value if spec.HasField("version") else None)
    response = get_model_status_pb2.GetModelStatusResponse()
    for entry in status["model_version_status"]:
        response.model_version_status.add(
            version=int(entry["version"]),
            state=get_model_status_pb2.ModelVersionStatus.AVAILABLE,
            status=status_pb2.StatusProto(),
        )
    return response


def _method(request_type, response_type, answer, read_timeout, gate=None):
    """A handler that reads one `request_type` message within `read_timeout` seconds (counted by
    `gate` first, if given) and answers `await answer(request)`, errors as their status code."""

    async def handler(messages, context):
        try:
            with gate.admit() if gate else contextlib.nullcontext():
                try:
                    data = await asyncio.wait_for(anext(messages), read_timeout)
                except asyncio.TimeoutError:
                    raise ServingError("DEADLINE_EXCEEDED", "Request message not received within "
                                       f"{read_timeout:g} s (--read_timeout_seconds)") from None
                except StopAsyncIteration:
                    raise ServingError("INVALID_ARGUMENT", "No request message") from None
                try:
                    request = request_type.FromString(data)
                except DecodeError as e:
                    raise ServingError("INVALID_ARGUMENT",
                                       f"Cannot parse {request_type.DESCRIPTOR.name}: {e}") from None
                return await answer(request)
        except ServingError as e:
            await context.abort(getattr(grpc.StatusCode, e.code), e.message)

    return grpc.stream_unary_rpc_method_handler(
        handler, request_deserializer=None, response_serializer=response_type.SerializeToString)


def make_grpc_server(registry, address, port, limits, gate):
    """A grpc.aio server on `address:port` (not started) sharing the REST API's `gate`."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", limits.max_request_bytes),
        ("grpc.max_send_message_length", limits.max_output_bytes + 1024 * 1024),
        ("grpc.max_connection_idle_ms", int(limits.idle_timeout_seconds * 1000)),
        # A connection that never sends HTTP/2's preface is closed after this.
        ("grpc.server_handshake_timeout_ms", int(limits.read_timeout_seconds * 1000)),
    ])
    timeout = limits.read_timeout_seconds

    def inline(function):  # cheap answers, on the event loop
        async def answer(request):
            return function(registry, request)
        return answer

    async def predict_answer(request):
        return await gate.run(_predict, registry, request, limits)

    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
            "Predict": _method(predict_pb2.PredictRequest, predict_pb2.PredictResponse,
                               predict_answer, timeout, gate),
            "GetModelMetadata": _method(
                get_model_metadata_pb2.GetModelMetadataRequest,
                get_model_metadata_pb2.GetModelMetadataResponse,
                inline(_metadata), timeout),
        }),
        grpc.method_handlers_generic_handler("tensorflow.serving.ModelService", {
            "GetModelStatus": _method(
                get_model_status_pb2.GetModelStatusRequest,
                get_model_status_pb2.GetModelStatusResponse,
                inline(_status), timeout),
        }),
    ])
    if server.add_insecure_port(f"{address}:{port}") == 0:
        raise OSError(f"cannot bind gRPC to {address}:{port}")
    return server
