"""TF Serving's REST API (v1) on aiohttp."""

import asyncio
import json
import logging
import re

from aiohttp import web

from vae_zoo.serving import predict
from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.limits import Gate
from vae_zoo.serving.limits import Limits
from vae_zoo.serving.tensors import encode_predict_response
from vae_zoo.serving.tensors import input_specs
from vae_zoo.serving.tensors import parse_predict_request

log = logging.getLogger("vae_zoo.serving")

URL = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$"
)


def make_app(registry, limits=Limits(), gate=None):
    """`gate`: shared with the gRPC API so that both count against the same concurrency limit."""
    app = web.Application(client_max_size=limits.max_request_bytes, middlewares=[_errors_as_json])
    app["registry"], app["limits"], app["gate"] = registry, limits, gate or Gate(limits)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def _json(body, status=200):
    return web.json_response(body, status=status, dumps=lambda b: json.dumps(b, allow_nan=False))


@web.middleware
async def _errors_as_json(request, handler):
    try:
        return await handler(request)
    except ServingError as e:
        response = _json({"error": e.message}, status=e.http_status)
    except web.HTTPRequestEntityTooLarge as e:
        response = _json({"error": f"Request too large: {e.text} (--max_request_bytes)"}, status=413)
    except web.HTTPException as e:
        return _json({"error": e.reason}, status=e.status)
    except Exception as e:  # a bug must answer 500, never take the server down
        log.exception("internal error on %s %s", request.method, request.path)
        return _json({"error": f"Internal error: {e}"}, status=500)
    if response.status == 408:  # a client too slow to send its body: answer, then hang up
        await response.prepare(request)  # rather than read on (aiohttp's lingering close)
        await response.write_eof()
        request.protocol.force_close()
    return response


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

    _, loaded = registry.get(name, version, label)
    limits, gate = request.app["limits"], request.app["gate"]
    if (request.content_length or 0) > limits.max_request_bytes:
        raise web.HTTPRequestEntityTooLarge(limits.max_request_bytes, request.content_length)
    with gate.admit():
        try:
            body = await asyncio.wait_for(request.read(), limits.read_timeout_seconds)
        except asyncio.TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Request body not received within "
                               f"{limits.read_timeout_seconds:g} s (--read_timeout_seconds)") from None
        answer = await gate.run(_predict, loaded, verb, body, limits)
    return web.Response(body=answer, content_type="application/json")


def _predict(loaded, verb, body, limits):
    """The JSON answer to a predict body, all on a worker thread (parsing a large body or
    encoding a large answer would stall every other connection on the event loop)."""
    try:
        decoded = json.loads(body)
    except RecursionError:
        raise ServingError("INVALID_ARGUMENT", "JSON Parse error: nested too deeply") from None
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
    arrays, row_format = parse_predict_request(decoded, input_specs(signature), limits)
    outputs = predict.run(loaded, signature_name, signature, arrays, limits)
    # NaN and infinities are written as TF Serving writes them (rapidjson's NaN, Infinity).
    return json.dumps(encode_predict_response(outputs, row_format)).encode()


def _metadata(registry, name, version, label):
    model_version, loaded = registry.get(name, version, label)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(model_version)},
        "metadata": {"signature_def": loaded.metadata()},
    }
