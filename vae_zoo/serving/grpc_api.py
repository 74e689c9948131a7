"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus), on the stubs of the `tensorflow-serving-api` package."""

from concurrent import futures

import grpc
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import status_pb2

from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.tensors import input_specs
from vae_zoo.serving.tensors import to_input_array


def _lookup(registry, model_spec):
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label or None
    return registry.get(model_spec.name, version, label)


def _abort(context, error):
    context.abort(getattr(grpc.StatusCode, error.code), error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry):
        self.registry = registry

    def Predict(self, request, context):
        try:
            version, loaded = _lookup(self.registry, request.model_spec)
            name, signature = loaded.signature(request.model_spec.signature_name or None)
            specs = input_specs(signature)
            if sorted(request.inputs) != sorted(specs):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"inputs must be {sorted(specs)}, got {sorted(request.inputs)}",
                )
            arrays = {key: to_input_array(key, tf.make_ndarray(proto), specs[key])
                      for key, proto in request.inputs.items()}
            results = signature(**{key: tf.constant(value) for key, value in arrays.items()})
        except ServingError as e:
            return _abort(context, e)
        except tf.errors.InvalidArgumentError as e:
            return _abort(context, ServingError("INVALID_ARGUMENT", str(e).splitlines()[0]))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = name
        wanted = set(request.output_filter) or set(results)
        for key, tensor in results.items():
            if key in wanted:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
        return response

    def GetModelMetadata(self, request, context):
        try:
            if list(request.metadata_field) != ["signature_def"]:
                raise ServingError("INVALID_ARGUMENT", "metadata_field must be ['signature_def']")
            version, loaded = _lookup(self.registry, request.model_spec)
        except ServingError as e:
            return _abort(context, e)
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


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry):
        self.registry = registry

    def GetModelStatus(self, request, context):
        spec = request.model_spec
        try:
            status = self.registry.status(spec.name, spec.version.value if spec.HasField("version") else None)
        except ServingError as e:
            return _abort(context, e)
        response = get_model_status_pb2.GetModelStatusResponse()
        for entry in status["model_version_status"]:
            response.model_version_status.add(
                version=int(entry["version"]),
                state=get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                status=status_pb2.StatusProto(),
            )
        return response


def start_grpc_server(registry, address, port, max_message_bytes=64 * 1024 * 1024):
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(registry), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    if server.add_insecure_port(f"{address}:{port}") == 0:
        raise OSError(f"cannot bind gRPC to {address}:{port}")
    server.start()
    return server
