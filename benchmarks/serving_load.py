"""`python -m export.serve` under concurrent clients: requests/s, p50/p99 latency and peak server
memory for `serving_default` (reconstruct) over REST and gRPC at batch 1 and 64, beside the same
SavedModel called in-process (no server, one caller).

    python benchmarks/serving_load.py [--model conv_vae] [--clients 8] [--seconds 5]

The model is built untrained and exported (latency does not depend on the weights). Clients are
threads of this process on the same machine as the server, each with one keep-alive connection
(REST) or sharing one channel (gRPC), sending the same pre-encoded request back to back; they
read every answer but do not decode it. Server flags are the defaults. Writes
benchmarks/results/serving_load.{md,json}.
"""

import argparse
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks import plots  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

BATCHES = (1, 64)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024


def start_server(base, rest_port, grpc_port):
    process = subprocess.Popen(
        [sys.executable, "-m", "export.serve", "--model_base_path", str(base), "--model_name",
         "bench", "--rest_api_port", str(rest_port), "--port", str(grpc_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("REST API at"):
            break
    if process.poll() is not None:
        raise RuntimeError("the server did not start")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # never a full pipe
    return process


def load(send, clients, seconds, pid):
    """Runs `send()` back to back in `clients` threads for `seconds`: latencies (ms), errors and
    the server's peak RSS seen meanwhile (sampled every 20 ms)."""
    latencies, errors, peak = [], [], [rss_mb(pid)]
    stop = threading.Event()

    def client():
        call = send()
        while not stop.is_set():
            start = time.perf_counter()
            try:
                call()
            except Exception as e:  # counted, not fatal: a load test reports what it saw
                errors.append(repr(e))
                continue
            latencies.append((time.perf_counter() - start) * 1e3)

    def watch():
        while not stop.wait(0.02):
            peak.append(rss_mb(pid))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    threads.append(threading.Thread(target=watch))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started, max(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="conv_vae")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per API and batch size")
    parser.add_argument("--calls", type=int, default=100, help="in-process calls per batch size")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")
    args = parser.parse_args()

    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from vae_zoo.config import RunConfig
    from vae_zoo.config import load_zoo_config
    from vae_zoo.data import DataSpec
    from vae_zoo.export import export_saved_model

    image_shape = (28, 28, 1)
    base = Path(tempfile.mkdtemp(prefix="serving-load-")) / "bench"
    model = RunConfig.from_dict(load_zoo_config(args.model)).model.build(DataSpec(image_shape))
    export_saved_model(model, base)
    inputs = {b: np.random.default_rng(0).uniform(size=(b, *image_shape)).astype("float32")
              for b in BATCHES}

    saved = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
    rows = []
    for batch, x in inputs.items():
        saved(x=tf.constant(x))  # warm-up
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            saved(x=tf.constant(x))["reconstruction"].numpy()
            times.append((time.perf_counter() - start) * 1e3)
        rows.append({"api": "in-process SavedModel", "batch": batch, "clients": 1,
                     "requests": len(times), "requests_per_s": round(1e3 / statistics.mean(times), 1),
                     "p50_ms": round(statistics.median(times), 2),
                     "p99_ms": round(float(np.percentile(times, 99)), 2), "peak_rss_mb": None,
                     "errors": 0})

    rest_port, grpc_port = free_port(), free_port()
    server = start_server(base, rest_port, grpc_port)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        for batch, x in inputs.items():
            body = ('{"instances": %s}' % x.tolist()).encode()
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "bench"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))

            def rest_sender(body=body):
                connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=60)

                def send():
                    connection.request("POST", "/v1/models/bench:predict", body)
                    response = connection.getresponse()
                    answer = response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {answer[:200]!r}")
                return send

            def grpc_sender(request=request):
                return lambda: stub.Predict(request, timeout=60)

            for api, sender in (("REST", rest_sender), ("gRPC", grpc_sender)):
                sender()()  # warm-up, and a check that it answers
                latencies, errors, elapsed, peak = load(sender, args.clients, args.seconds,
                                                        server.pid)
                rows.append({"api": api, "batch": batch, "clients": args.clients,
                             "requests": len(latencies),
                             "requests_per_s": round(len(latencies) / elapsed, 1),
                             "p50_ms": round(statistics.median(latencies), 2),
                             "p99_ms": round(float(np.percentile(latencies, 99)), 2),
                             "peak_rss_mb": round(peak), "errors": len(errors),
                             "first_error": errors[0] if errors else None})
        peak_overall = round(rss_mb(server.pid, "VmHWM"))
    finally:
        channel.close()
        server.terminate()
        server.wait(timeout=30)

    lines = [f"`serving_default` of an exported {args.model} ({image_shape} inputs) under "
             f"{args.clients} concurrent clients for {args.seconds:g} s per row, "
             f"{os.cpu_count()} CPU cores ({platform.machine()}), clients on the same machine; "
             "server flags at their defaults",
             "",
             "| API | batch | requests/s | images/s | p50 (ms) | p99 (ms) | peak server RSS (MB) "
             "| errors |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rss = "-" if r["peak_rss_mb"] is None else r["peak_rss_mb"]
        lines.append(f"| {r['api']} | {r['batch']} | {r['requests_per_s']:.0f} | "
                     f"{r['requests_per_s'] * r['batch']:.0f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {rss} | {r['errors']} |")
    lines += ["", f"Peak server RSS over the whole run (VmHWM): {peak_overall} MB. In-process: "
              "one caller, no server. Command: `python benchmarks/serving_load.py"
              + (f" --model {args.model}" if args.model != "conv_vae" else "")
              + (f" --clients {args.clients}" if args.clients != 8 else "")
              + (f" --seconds {args.seconds:g}" if args.seconds != 5 else "") + "`"]
    data = {"model": args.model, "clients": args.clients, "seconds": args.seconds,
            "cpu_count": os.cpu_count(), "peak_rss_mb": peak_overall, "rows": rows}
    write_results(args.out, "serving_load", "\n".join(lines), data)
    plots.serving_load(data, args.out)


if __name__ == "__main__":
    main()
