import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

from vae_zoo.networks.precision import in_precision


def next_version(model_dir):
    """1 + the highest integer version folder in `model_dir` (TF Serving's layout), or 1."""
    model_dir = Path(model_dir)
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] \
        if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def as_float32(model):
    """`model` computing in float32 throughout, with the same weights (a copy if it was mixed).

    A mixed-precision model keeps float32 weights but computes its hidden layers in bfloat16 or
    float16; servers and TFLite get the float32 graph, which every runtime runs at full accuracy.
    """
    return in_precision(model, "float32")


METADATA = "assets.extra/vae_zoo.json"  # beside TF Serving's warm-up file; servers ignore it


def export_saved_model(model, model_dir, version=None, endpoints=None, metadata=None):
    """Writes `model` as SavedModel `model_dir/<version>/`, one signature per serving endpoint
    of the model (`model.serving_endpoints()`, or `endpoints` in their place: an export with an
    ex-post sampler replaces `sample`), and `metadata` (a JSON dict) as `METADATA` in it.

    A mixed-precision model is exported in float32 (`as_float32`). It is written to a hidden
    temporary folder beside the target and renamed into place, so a server watching `model_dir`
    never sees half a version. Returns the version folder.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    target = model_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists already; versions are never overwritten")

    endpoints = endpoints or as_float32(model).serving_endpoints()
    # Not `archive.track(model)`: that would also write the variables no endpoint uses (a
    # training-only discriminator, the step counter). The archive keeps what the endpoints read.
    archive = keras.export.ExportArchive()
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-"))
    try:
        archive.write_out(str(tmp), verbose=False)
        if metadata is not None:
            (tmp / METADATA).parent.mkdir(parents=True, exist_ok=True)
            (tmp / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
