"""`python -m export.serve`: flags named as `tensorflow_model_server`'s, so commands carry over."""

import argparse
import asyncio
import dataclasses
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from vae_zoo.serving.limits import Limits

LIMIT_HELP = {
    "max_request_bytes": "largest REST body or gRPC message, and largest declared size of a "
                         "request's input tensors",
    "max_batch_size": "largest dim 0 of an input, and largest count such as sample's n",
    "max_output_bytes": "largest size of the output tensors a request asks for (REST's JSON "
                        "takes several times more)",
    "max_concurrent_requests": "predict requests parsed and run at once, REST and gRPC together",
    "max_queued_requests": "predict requests that may wait for a turn; more are refused (429)",
    "read_timeout_seconds": "time a client has to send a request body or gRPC message",
    "idle_timeout_seconds": "an open connection with no request (or no whole HTTP header) is "
                            "closed after this",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m export.serve",
        description="Serve exported models over TF Serving's REST API (and gRPC, with --port).",
    )
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path", help="folder of integer version folders")
    parser.add_argument("--model_config_file", help="text-format ModelServerConfig (several models)")
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--port", type=int, default=0, help="gRPC port (default 0: no gRPC)")
    parser.add_argument("--bind_address", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all, with a "
                             "warning: the APIs have no authentication)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new versions (0: never)")
    for field in dataclasses.fields(Limits):
        parser.add_argument(f"--{field.name}", type=field.type, default=field.default,
                            help=f"{LIMIT_HELP[field.name]} (default {field.default})")
    return parser


def exposure_warning(address):
    """A one-line warning when listening beyond loopback: the APIs have no authentication
    (neither have TF Serving's), so anyone who reaches the address can use the models."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if not loopback:
        return (f"warning: listening on {address}: the REST and gRPC APIs have no authentication, "
                "anyone who can reach this address can query the models")
    return None


def main(argv=None):
    args = build_parser().parse_args(argv)
    if bool(args.model_base_path) == bool(args.model_config_file):
        print("error: pass --model_base_path (with --model_name) or --model_config_file",
              file=sys.stderr)
        return 2
    for path in (args.model_base_path, args.model_config_file):
        if path and not Path(path).exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    limits = Limits(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Limits)})
    if min(dataclasses.astuple(limits)) <= 0:
        print("error: every --max_* limit and timeout must be positive", file=sys.stderr)
        return 2
    warning = exposure_warning(args.bind_address)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from google.protobuf import text_format

    from vae_zoo.serving.models import ModelRegistry

    try:
        registry = ModelRegistry.from_flags(
            args.model_name, args.model_base_path, args.model_config_file,
            args.file_system_poll_wait_seconds,
        )
    except text_format.ParseError as e:
        print(f"error: {args.model_config_file} is not a valid ModelServerConfig: {e}", file=sys.stderr)
        return 2
    registry.start()
    try:
        asyncio.run(_serve(registry, args, limits))
    except OSError as e:
        print(f"error: cannot listen: {e}", file=sys.stderr)
        return 2
    finally:
        registry.stop()
    return 0


async def _serve(registry, args, limits):
    from aiohttp import web

    from vae_zoo.serving.limits import Gate
    from vae_zoo.serving.rest import make_app

    gate = Gate(limits)
    runner = web.AppRunner(make_app(registry, limits, gate), access_log=None,
                           keepalive_timeout=limits.idle_timeout_seconds)
    await runner.setup()
    await web.TCPSite(runner, args.bind_address, args.rest_api_port).start()
    grpc_server = None
    if args.port:
        from vae_zoo.serving.grpc_api import make_grpc_server

        grpc_server = make_grpc_server(registry, args.bind_address, args.port, limits, gate)
        await grpc_server.start()
        print(f"gRPC API at {args.bind_address}:{args.port}", flush=True)
    print(f"REST API at http://{args.bind_address}:{args.rest_api_port}/v1/models/"
          f"{','.join(registry.models)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if grpc_server is not None:
        await grpc_server.stop(grace=1)
    await runner.cleanup()
