"""`python -m export RUN_DIR`: a run's model.keras -> SavedModel (TF Serving layout) + .tflite files."""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vae_zoo.errors import UserInputError

CALIBRATION_IMAGES = 100


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a trained run to a versioned SavedModel that TF Serving loads as is, "
        "and to multi-signature .tflite files.",
    )
    parser.add_argument("run_dir", help="a run folder written by train.py (holds model.keras)")
    parser.add_argument("--name", help="model name for serving (default: the run's model name)")
    parser.add_argument("--base-path", default="exports",
                        help="writes BASE/NAME/VERSION/ and BASE/NAME[.MODE].tflite (default exports)")
    parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    parser.add_argument(
        "--tflite-quantize", action="append", choices=["none", "dynamic", "float16", "int8", "all"],
        help="TFLite quantisation mode (repeatable; default none)",
    )
    parser.add_argument("--no-tflite", action="store_true", help="write the SavedModel only")
    return parser


def calibration_images(run_dir, model, log):
    """Training images of the run (for int8 calibration and parity checks), else prior samples."""
    from vae_zoo.config import RunConfig
    from vae_zoo.data import load_image_data
    from vae_zoo.data import make_pipeline
    from vae_zoo.training.run_dir import read_run_config

    try:
        config = RunConfig.from_dict(read_run_config(run_dir))
        data = load_image_data(config.data, seed=config.train.seed)
        batch = make_pipeline(data.train.take(CALIBRATION_IMAGES), CALIBRATION_IMAGES,
                              training=False, image_size=config.data.image_size)
        images = next(iter(batch)).numpy()
        if images.shape[1:] == model.image_shape:
            return images, f"{len(images)} training images ({data.source})"
    except UserInputError as e:
        log(f"note: the run's training data cannot be loaded ({e})")
    return np.asarray(model.sample(CALIBRATION_IMAGES)), f"{CALIBRATION_IMAGES} samples from the model"


def latency_ms(runner, inputs, repeats=30):
    runner(**inputs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(**inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def folder_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def write_bytes_atomic(path, content):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.replace(tmp, path)


def export_run(run_dir, name=None, base_path="exports", version=None, quantize=("none",), log=print):
    """Exports a run; returns `{"saved_model": path, "tflite": {mode: {path, bytes, ...}}}`."""
    import tensorflow as tf

    from vae_zoo.export import DETERMINISTIC_SIGNATURES
    from vae_zoo.export import TOLERANCES
    from vae_zoo.export import as_float32
    from vae_zoo.export import convert_to_tflite
    from vae_zoo.export import export_saved_model
    from vae_zoo.export import parity
    from vae_zoo.export import within_tolerance
    from vae_zoo.training.run_dir import load_run_model

    trained = load_run_model(run_dir)
    if trained.dtype_policy.name != "float32":
        log(f"{run_dir} trained in {trained.dtype_policy.name}: exporting its weights in float32")
    model = as_float32(trained)
    name = name or model.name
    if not name.replace("_", "").replace("-", "").isalnum():
        raise UserInputError(f"--name {name!r}: use letters, digits, '_' and '-' only")
    base_path = Path(base_path)
    if version is not None and (base_path / name / str(version)).exists():
        raise UserInputError(f"{base_path / name / str(version)} exists; versions are never overwritten")
    images, images_source = calibration_images(run_dir, model, log)

    saved_model_dir = export_saved_model(model, base_path / name, version=version)
    loaded = tf.saved_model.load(str(saved_model_dir))
    served = loaded.signatures["reconstruct"](x=tf.constant(images))["reconstruction"].numpy()
    keras_error = parity(served, np.asarray(model.reconstruct(images)))["max"]
    log(f"SavedModel {saved_model_dir} ({folder_size(saved_model_dir) / 1e6:.1f} MB): signatures "
        f"{', '.join(sorted(k for k in loaded.signatures))}; reconstruct max |diff| vs Keras "
        f"{keras_error:.1e} on {images_source}")

    from ai_edge_litert.interpreter import Interpreter

    z_mean = loaded.signatures["encode"](x=tf.constant(images))["z_mean"].numpy()
    representative = {
        signature: [{"z": z_mean[i : i + 1]} if signature == "decode" else {"x": images[i : i + 1]}
                    for i in range(len(images))]
        for signature in DETERMINISTIC_SIGNATURES
    }
    results = {}
    for mode in quantize:
        path = base_path / (f"{name}.tflite" if mode == "none" else f"{name}.{mode}.tflite")
        content = convert_to_tflite(saved_model_dir, mode, representative)
        interpreter = Interpreter(model_content=content)
        runner = interpreter.get_signature_runner("reconstruct")
        errors = parity(runner(x=images)["reconstruction"], served)
        ok = within_tolerance(mode, errors)
        if not ok:
            raise RuntimeError(f"{mode} TFLite model differs from the SavedModel beyond "
                               f"{TOLERANCES[mode]}: {errors}; nothing written for it")
        write_bytes_atomic(path, content)
        results[mode] = {
            "path": str(path), "bytes": len(content), "errors": errors,
            "latency_ms_batch1": latency_ms(runner, {"x": images[:1]}),
            "signatures": sorted(interpreter.get_signature_list()),
        }
        log(f"TFLite {path} ({mode}): {len(content) / 1e6:.2f} MB, reconstruct "
            f"{results[mode]['latency_ms_batch1']:.2f} ms/call at batch 1, vs SavedModel max "
            f"{errors['max']:.1e} mean {errors['mean']:.1e} (tolerance {TOLERANCES[mode]}), "
            f"signatures {', '.join(results[mode]['signatures'])}")
    return {"saved_model": str(saved_model_dir), "tflite": results}


def main(argv=None):
    args = build_parser().parse_args(argv)
    modes = args.tflite_quantize or ["none"]
    modes = ["none", "dynamic", "float16", "int8"] if "all" in modes else list(dict.fromkeys(modes))
    try:
        export_run(args.run_dir, args.name, args.base_path, args.version,
                   quantize=() if args.no_tflite else modes)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
