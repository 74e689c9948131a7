"""`save_preset`: a trained model or a finished run folder -> a preset folder, with its card."""

import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np

from vae_zoo.errors import UserInputError
from vae_zoo.presets.folder import PresetFolder
from vae_zoo.presets.folder import write_yaml
from vae_zoo.run_folder import RunFolder
from vae_zoo.weights_file import write_weights

# Copied from a run's metrics.json into the card's `training` section.
CARD_ORDER = ("name", "description", "model", "dataset", "sizes", "command", "train_command",
              "training", "test", "disentanglement", "disentanglement_note", "float16_storage",
              "check", "weights", "versions", "saved")
TRAINING_KEYS = ("epochs", "best_epoch", "best_epoch_chosen_by", "best_val_loss",  # older runs'
                 "train_seconds", "train_images_per_second")


def save_preset(source, folder, card=None, config=None, overwrite=False, log=print):
    """Writes the preset layout (see `vae_zoo.presets`) for a trained model; returns its folder.

    With a run config (given, or the run folder's), the card gets the test metrics of the stored
    float16 weights on the config's test split, the ELBO change float16 storage makes, and the
    check ELBO on the first `CHECK_IMAGES` test images, which are stored beside it. Nothing is
    left half-written: the folder is written aside and renamed into place.

    Args:
        source: a trained `ZooModel`, or a run folder (path or `RunFolder`) that train.py finished.
        folder: str or Path. Where to write the preset.
        card: dict. Entries to add to the card (`description`, `command`, ...).
        config: `RunConfig` or dict. The run config (taken from the run folder when `source` is
            one); without it the card has no metrics and the preset cannot be fine-tuned.
        overwrite: bool. Replace a preset already in `folder`.
    """
    from vae_zoo.config import RunConfig

    folder = Path(folder)
    metrics = {}
    if isinstance(source, (str, os.PathLike, RunFolder)):
        run = source if isinstance(source, RunFolder) else RunFolder(source)
        if not run.is_finished():
            raise UserInputError(f"{run} is not a finished run (no model.keras and metrics.json)")
        model, metrics = run.load_model(), run.read_metrics()
        config = config or run.read_config()
    else:
        model = source
    if config is not None and not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    _check_target(folder, overwrite)

    import keras

    content = {"name": folder.name, **(card or {})}
    content["model"] = {"name": config.model.name if config else model.name,
                        "class_name": type(model).__name__,
                        "parameters": int(sum(np.prod(w.shape) for w in model.weights)),
                        "image_shape": list(model.image_shape)}
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    own_weights = model.get_weights()  # the card measures the stored weights in `model`
    try:
        (tmp / PresetFolder.MODEL).write_text(
            json.dumps(keras.saving.serialize_keras_object(model), indent=1) + "\n")
        stored = write_weights(model, tmp / PresetFolder.WEIGHTS)
        if config is not None:
            write_yaml(tmp / PresetFolder.CONFIG, config.to_dict())
            content.update(_measured(model, stored, config, tmp, metrics, log))
        else:
            model.set_weights(stored)
        content["training"] = {
            **{k: metrics[k] for k in TRAINING_KEYS if k in metrics},
            "seed": config.train.seed if config else None, **content.get("training", {})}
        if "disentanglement" in metrics:
            content["disentanglement"] = metrics["disentanglement"]
            content["disentanglement_note"] = "measured by evaluate.py on the float32 weights"
        content["weights"] = {"file": PresetFolder.WEIGHTS, "storage": "float16",
                              "bytes": (tmp / PresetFolder.WEIGHTS).stat().st_size}
        content["versions"] = _versions()
        content["saved"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        order = [k for k in CARD_ORDER if k in content] + [k for k in content if k not in CARD_ORDER]
        write_yaml(tmp / PresetFolder.CARD, {k: content[k] for k in order})
        _replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        model.set_weights(own_weights)
    log(f"preset {folder}: {content['weights']['bytes'] / 1e6:.2f} MB of weights")
    return PresetFolder(folder)


def _measured(model, stored, config, tmp, metrics, log):
    """The card's dataset, test, float16_storage and check sections (see `vae_zoo.presets.card`)."""
    from vae_zoo.data import load_data
    from vae_zoo.data import make_batches
    from vae_zoo.presets import card as measure

    data = load_data(config.data, seed=config.train.seed)
    if data.image_shape != model.image_shape:
        raise UserInputError(f"the config's data has images of shape {data.image_shape}, "
                             f"but the model takes {model.image_shape}")
    batches = make_batches(data, "test", config.data, seed=config.train.seed)
    arrays = measure.test_arrays(batches)
    sections = {"dataset": data.source, "sizes": metrics.get("sizes", data.sizes)}
    if not model.compiled:
        model.compile(**model.make_optimizers(config.train.learning_rate))
    if model.capabilities.has_density:
        log(f"float16 storage: paired test ELBO on {len(arrays['x'])} test images")
        sections["float16_storage"] = measure.float16_change(model, stored, arrays)
    else:
        model.set_weights(stored)
    log(f"test metrics of the stored weights (IW NLL k={config.eval.iw_samples})")
    sections["test"] = measure.test_metrics(model, batches, config.eval, len(arrays["x"]))
    if model.capabilities.has_density:
        check = {k: v[:measure.CHECK_IMAGES] for k, v in arrays.items()}
        sections["check"] = {"file": PresetFolder.CHECK_IMAGES,
                             "what": f"the first {len(check['x'])} test images",
                             **measure.check_elbo(model, check)}
        pixels = np.round(check["x"] * 255)
        if np.array_equal(pixels / 255, check["x"].astype("float64")):
            check["x"] = pixels.astype(np.uint8)  # 8-bit images: stored exactly in a quarter
        with open(tmp / PresetFolder.CHECK_IMAGES, "wb") as f:
            np.savez_compressed(f, **check)
    return sections


def _check_target(folder, overwrite):
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not (folder / PresetFolder.CARD).is_file():
        raise UserInputError(f"{folder} exists and holds no preset; choose another folder")
    if not overwrite:
        raise UserInputError(f"{folder} holds a preset already; pass overwrite=True to replace it")


def _replace(tmp, folder):
    """Renames the finished `tmp` into `folder`, removing the preset that was there."""
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _versions():
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    import vae_zoo

    return {"vae_zoo": vae_zoo.__version__, "keras": keras.__version__,
            "tensorflow": tf.__version__, "tensorflow_probability": tfp.__version__}
