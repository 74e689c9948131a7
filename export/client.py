"""A small client for TF Serving's REST API: the local `export.serve` or the real server.

    from export.client import ServingClient
    client = ServingClient("http://localhost:8501", "conv_vae")
    images = client.predict({"n": 16}, signature_name="sample", columnar=True)["x_mean"]

From the shell: `python export/client.py --model conv_vae --sample 4` prints what it got back.
Only the standard library and numpy are needed.
"""

import argparse
import json
import urllib.error
import urllib.request

import numpy as np


class ServingRequestError(RuntimeError):
    """An HTTP error answer of the server: its status and `{"error": message}`."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class ServingClient:
    def __init__(self, url="http://localhost:8501", model="default", version=None, timeout=60):
        self.base = f"{url.rstrip('/')}/v1/models/{model}"
        if version is not None:
            self.base += f"/versions/{version}"
        self.timeout = timeout

    def _call(self, suffix="", body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + suffix, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise ServingRequestError(e.code, json.loads(e.read() or b"{}").get("error", e.reason)) from None

    def status(self):
        return self._call()

    def metadata(self):
        return self._call("/metadata")

    def predict(self, inputs, signature_name=None, columnar=False):
        """`inputs`: an array (single input) or `{name: array}`. Returns `{output: np.ndarray}`.

        Row form sends `instances` (batch along axis 0); `columnar=True` sends `inputs` as is.
        """
        named = inputs if isinstance(inputs, dict) else None
        body = {} if signature_name is None else {"signature_name": signature_name}
        if columnar:
            body["inputs"] = ({k: np.asarray(v).tolist() for k, v in named.items()} if named
                              else np.asarray(inputs).tolist())
            outputs = self._call(":predict", body)["outputs"]
            return {k: np.asarray(v) for k, v in outputs.items()} if isinstance(outputs, dict) \
                else {"output": np.asarray(outputs)}
        if named:
            arrays = {k: np.asarray(v) for k, v in named.items()}
            batch = len(next(iter(arrays.values())))
            body["instances"] = [{k: a[i].tolist() for k, a in arrays.items()} for i in range(batch)]
        else:
            body["instances"] = np.asarray(inputs).tolist()
        predictions = self._call(":predict", body)["predictions"]
        if predictions and isinstance(predictions[0], dict):
            return {k: np.asarray([p[k] for p in predictions]) for k in predictions[0]}
        return {"output": np.asarray(predictions)}


def main():
    parser = argparse.ArgumentParser(description="Query a TF Serving REST endpoint.")
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--model", default="conv_vae")
    parser.add_argument("--sample", type=int, default=4, help="images to draw from the prior")
    args = parser.parse_args()
    client = ServingClient(args.url, args.model)
    print(json.dumps(client.status()))
    images = client.predict({"n": args.sample}, signature_name="sample", columnar=True)["x_mean"]
    print(f"sample: {images.shape} images, pixel mean {images.mean():.3f}")
    reconstruction = client.predict(images)["output"]
    print(f"reconstruct: {reconstruction.shape}, mean |x - x_hat| {np.abs(images - reconstruction).mean():.3f}")


if __name__ == "__main__":
    main()
