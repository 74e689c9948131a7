"""`python -m export RUN_DIR|PRESET`: a run's model.keras (or a preset) -> SavedModel (TF Serving layout) + .tflite files."""

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
    parser.add_argument("run_dir", metavar="RUN_DIR_OR_PRESET",
                        help="a run folder written by train.py (holds model.keras), or a preset: "
                        "a name (vae_zoo.list_presets()), a preset folder or hf://user/name")
    parser.add_argument("--name", help="model name for serving (default: the run's model name)")
    parser.add_argument("--base-path", default="exports",
                        help="writes BASE/NAME/VERSION/ and BASE/NAME[.MODE].tflite (default exports)")
    parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    parser.add_argument(
        "--tflite-quantize", action="append", choices=["none", "dynamic", "float16", "int8", "all"],
        help="TFLite quantisation mode (repeatable; default none)",
    )
    parser.add_argument("--no-tflite", action="store_true", help="write the SavedModel only")
    parser.add_argument("--sampler", metavar="NAME",
                        help="draw the sample signature's codes from the run's fitted ex-post "
                        "sampler (normal, gmm, maf, two_stage; fit it first with python -m "
                        "vae_zoo.sample RUN --sampler NAME) instead of the prior")
    return parser


def load_source(source):
    """`(model, run, preset)` of a finished run folder or, failing that, a preset (a name, a preset
    folder or `hf://user/name`); the one that is not it is None."""
    from vae_zoo.presets import PresetFolder
    from vae_zoo.presets import list_presets
    from vae_zoo.presets import resolve_preset
    from vae_zoo.presets.sources import HUB_PREFIX
    from vae_zoo.run_folder import RunFolder

    run = RunFolder(source)
    if (run.path / run.MODEL).is_file():
        return run.load_model(), run, None
    if not (str(source).startswith(HUB_PREFIX) or str(source) in list_presets()
            or (run.path / PresetFolder.CARD).is_file()):
        raise UserInputError(
            f"{source} holds no {run.MODEL} (not a run folder that train.py finished) and is not "
            f"a preset; known presets: {', '.join(list_presets())}, or a preset folder, or "
            "hf://user/name")
    preset = resolve_preset(source)
    return preset.load_model(), None, preset


def calibration_images(run, model, log, preset=None):
    """Training images of the run (for int8 calibration and parity checks), a preset's check
    images (test images), else model samples."""
    if preset is not None:
        check = preset.read_check()
        if check is not None:
            images = check["x"][:CALIBRATION_IMAGES]
            return images, f"{len(images)} of the preset's check images (test split)"
        return np.asarray(model.sample(CALIBRATION_IMAGES)), f"{CALIBRATION_IMAGES} samples from the model"
    from vae_zoo.config import RunConfig
    from vae_zoo.data import images_of
    from vae_zoo.data import load_data
    from vae_zoo.data import make_batches

    try:
        config = RunConfig.from_dict(run.read_config())
        data = load_data(config.data, seed=config.train.seed)
        batches = make_batches(data, "validation", config.data, seed=config.train.seed,
                               limit=CALIBRATION_IMAGES)
        images = images_of(batches, CALIBRATION_IMAGES)
        if images.shape[1:] == model.image_shape:
            return images, f"{len(images)} held-out training images ({data.source})"
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


def export_run(run_dir, name=None, base_path="exports", version=None, quantize=("none",), log=print,
               sampler=None):
    """Exports a run (or a preset: see `load_source`); returns `{"saved_model": path, "tflite": {mode: {path, bytes, ...}}, "metadata": {...}}`.

    Every deterministic signature is checked against Keras (SavedModel) and against the
    SavedModel (each TFLite file) on real images before anything is written for it. With
    `sampler` (a name), the `sample` signature draws its codes from the run's stored ex-post
    sampler (`vae_zoo.samplers`) instead of the model's prior; the SavedModel's metadata
    (`assets.extra/vae_zoo.json`) says which.
    """
    import tensorflow as tf

    from vae_zoo.export import CODE_AGREEMENT
    from vae_zoo.export import as_float32
    from vae_zoo.export import calibration_inputs
    from vae_zoo.export import convert_to_tflite
    from vae_zoo.export import export_saved_model
    from vae_zoo.export import parity
    from vae_zoo.export import within_tolerance
    from vae_zoo.export.tflite import tolerance_for

    trained, run, preset = load_source(run_dir)
    if trained.dtype_policy.name != "float32":
        log(f"{run_dir} trained in {trained.dtype_policy.name}: exporting its weights in float32")
    model = as_float32(trained)
    name = name or (preset.short_name if preset is not None else model.name)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise UserInputError(f"--name {name!r}: use letters, digits, '_' and '-' only")
    base_path = Path(base_path)
    if version is not None and (base_path / name / str(version)).exists():
        raise UserInputError(f"{base_path / name / str(version)} exists; versions are never overwritten")
    endpoints = model.serving_endpoints()
    metadata = {"model": model.name, "class": type(model).__name__,
                "sample": {"sampler": "prior"}}
    if sampler is not None:
        endpoints["sample"], metadata["sample"] = baked_sampler(model, run, sampler, log)
    images, images_source = calibration_images(run, model, log, preset)
    examples = model.endpoint_examples(images)
    deterministic = model.deterministic_endpoints

    saved_model_dir = export_saved_model(model, base_path / name, version=version,
                                         endpoints=endpoints, metadata=metadata)
    loaded = tf.saved_model.load(str(saved_model_dir))
    served = {signature: _run_signature(loaded.signatures[signature], examples[signature])
              for signature in deterministic}
    keras_errors = _worst_errors(
        parity(served[signature][key], np.asarray(output))
        for signature in deterministic
        for key, output in endpoints[signature][0](**examples[signature]).items())
    codes = (f", codes equal {keras_errors['agreement']:.1%}" if "agreement" in keras_errors
             else "")
    log(f"SavedModel {saved_model_dir} ({folder_size(saved_model_dir) / 1e6:.1f} MB): signatures "
        f"{', '.join(sorted(loaded.signatures))}; max |diff| vs Keras {keras_errors['max']:.1e}"
        f"{codes} over {', '.join(deterministic)} on {images_source}")

    from ai_edge_litert.interpreter import Interpreter

    results = {}
    for mode in quantize:
        path = base_path / (f"{name}.tflite" if mode == "none" else f"{name}.{mode}.tflite")
        excluded = model.tflite_exclusions(mode)
        for signature, reason in excluded.items():
            log(f"note: the {mode} TFLite file leaves out {signature}: {reason}")
        checked = [s for s in deterministic if s not in excluded]
        content = convert_to_tflite(saved_model_dir, mode, calibration_inputs(examples, checked),
                                    exclude=excluded)
        interpreter = Interpreter(model_content=content)
        errors = _worst_errors(
            parity(interpreter.get_signature_runner(signature)(**examples[signature])[key],
                   served[signature][key])
            for signature in checked for key in served[signature])
        if not within_tolerance(mode, errors, model.capabilities.discrete_codes):
            raise RuntimeError(f"{mode} TFLite model differs from the SavedModel beyond "
                               f"{tolerance_for(mode, model.capabilities.discrete_codes)} "
                               f"(codes: {CODE_AGREEMENT[mode]:.0%} equal): "
                               f"{errors}; nothing written for it")
        write_bytes_atomic(path, content)
        bounds = tolerance_for(mode, model.capabilities.discrete_codes)
        timed = "reconstruct" if "reconstruct" in checked else checked[0]
        runner = interpreter.get_signature_runner(timed)
        results[mode] = {
            "path": str(path), "bytes": len(content), "errors": errors,
            "latency_ms_batch1": latency_ms(
                runner, {k: v[:1] for k, v in examples[timed].items()}),
            "signatures": sorted(interpreter.get_signature_list()),
        }
        log(f"TFLite {path} ({mode}): {len(content) / 1e6:.2f} MB, {timed} "
            f"{results[mode]['latency_ms_batch1']:.2f} ms/call at batch 1, vs SavedModel max "
            f"{errors['max']:.1e} mean {errors['mean']:.1e} (tolerance {bounds})"
            + (f", codes equal {errors['agreement']:.1%}" if "agreement" in errors else "") + ", "
            f"signatures {', '.join(results[mode]['signatures'])}")
    return {"saved_model": str(saved_model_dir), "tflite": results, "metadata": metadata}


def baked_sampler(model, run, name, log):
    """`((function, input_signature), metadata)` of a `sample` endpoint drawing from the run's
    stored sampler `name`."""
    from vae_zoo.samplers.codes import check_model
    from vae_zoo.samplers.codes import sampler_endpoint
    from vae_zoo.samplers.codes import sampler_folder
    from vae_zoo.samplers.codes import stored_sampler
    from vae_zoo.samplers import SAMPLERS

    SAMPLERS.get(name)
    if run is None:
        raise UserInputError("--sampler needs a run folder (a preset stores no fitted sampler)")
    check_model(model)
    if not sampler_folder(run, name).is_dir():
        raise UserInputError(f"{run} holds no fitted {name} sampler; fit it first with "
                             f"python -m vae_zoo.sample {run} --sampler {name}")
    sampler = stored_sampler(run, model, name)
    log(f"sample signature: codes from {sampler.describe()} ({sampler_folder(run, name)})")
    return sampler_endpoint(model, sampler), sampler.metadata()


def _run_signature(signature, inputs):
    import tensorflow as tf

    outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def _worst_errors(errors):
    """The worst of each statistic over several parity results (the lowest code agreement)."""
    worst = {}
    for error in errors:
        for key, value in error.items():
            pick = min if key == "agreement" else max
            worst[key] = pick(worst.get(key, value), value)
    return worst


def main(argv=None):
    args = build_parser().parse_args(argv)
    modes = args.tflite_quantize or ["none"]
    modes = ["none", "dynamic", "float16", "int8"] if "all" in modes else list(dict.fromkeys(modes))
    try:
        export_run(args.run_dir, args.name, args.base_path, args.version,
                   quantize=() if args.no_tflite else modes, sampler=args.sampler)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
