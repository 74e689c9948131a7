"""TF Serving's REST API (v1) on aiohttp."""

import asyncio
import json
import logging
import re

import tensorflow as tf
from aiohttp import web

from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.tensors import encode_predict_response
from vae_zoo.serving.tensors import input_specs
from vae_zoo.serving.tensors import parse_predict_request

log = logging.getLogger("vae_zoo.serving")

URL = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$"
)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def make_app(registry, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES):
    app = web.Application(client_max_size=max_request_bytes, middlewares=[_errors_as_json])
    app["registry"] = registry
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def _json(body, status=200):
    return web.json_response(body, status=status, dumps=lambda b: json.dumps(b, allow_nan=False))


@web.middleware
async def _errors_as_json(request, handler):
    try:
        return await handler(request)
    except ServingError as e:
        return _json({"error": e.message}, status=e.http_status)
    except web.HTTPRequestEntityTooLarge as e:
        return _json({"error": f"Request too large: {e.text}"}, status=413)
    except web.HTTPException as e:
        return _json({"error": e.reason}, status=e.status)
    except Exception as e:  # a bug must answer 500, never take the server down
        log.exception("internal error on %s %s", request.method, request.path)
        return _json({"error": f"Internal error: {e}"}, status=500)


async def _dispatch(request):
    match = URL.match(request.path)
    verb = match and match["verb"]
    if (match is None or (request.method == "GET") == bool(verb)
            or request.method not in ("GET", "POST")):
        raise ServingError("INVALID_ARGUMENT", f"Malformed request: {request.method} {request.path}")
    registry = request.app["registry"]
    name, label = match["name"], match["label"]
    version = int(match["version"]) if match["version"] else None

    if request.method == "GET":
        if match["metadata"]:
            return _json(_metadata(registry, name, version, label))
        if label:
            version, _ = registry.get(name, label=label)
        return _json(registry.status(name, version))

    model_version, loaded = registry.get(name, version, label)
    body = await request.read()
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
    signature_name = decoded.get("signature_name") if isinstance(decoded, dict) else None
    if signature_name is not None and not isinstance(signature_name, str):
        raise ServingError("INVALID_ARGUMENT", "'signature_name' must be a string")
    signature_name, signature = loaded.signature(signature_name)
    if verb != "predict":
        method = loaded.signature_defs[signature_name].method_name
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Expected {verb} signature method_name to be tensorflow/serving/{verb}. Was: {method}",
        )
    arrays, row_format = parse_predict_request(decoded, input_specs(signature))
    loop = asyncio.get_running_loop()
    outputs = await loop.run_in_executor(None, _run, signature, arrays)
    return _json(encode_predict_response(outputs, row_format))


def _run(signature, arrays):
    try:
        results = signature(**{name: tf.constant(value) for name, value in arrays.items()})
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        raise ServingError("INVALID_ARGUMENT", str(e).splitlines()[0]) from None
    return {name: tensor.numpy() for name, tensor in results.items()}


def _metadata(registry, name, version, label):
    model_version, loaded = registry.get(name, version, label)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(model_version)},
        "metadata": {"signature_def": loaded.metadata()},
    }
