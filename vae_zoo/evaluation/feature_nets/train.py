"""(Re)trains a shipped feature net:
`python -m vae_zoo.evaluation.feature_nets.train --dataset NAME`.

Trains the classifier of `network.py` on every training image of the dataset (train and
validation splits: the net never selects a model, so nothing is held out), stores its weights
as float16 in `vae_zoo/evaluation/feature_nets/NAME/` and writes a card with the test accuracy
of the stored weights.
"""

import argparse
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPOCHS = {"mnist_sample": 10, "fashion_mnist": 3}  # a few CPU-minutes each


def labelled_images(split):
    """`(x float32 in [0, 1] as (n, H, W, C), y int)` of a data split."""
    import numpy as np

    arrays = split.read_all()
    x = arrays["x"]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), *x.shape[1:3], -1), arrays["y"].astype(np.int64)


def train(dataset, epochs=None, seed=0, batch_size=128, log=print):
    """Trains and saves the feature net of `dataset`; returns its card."""
    import keras
    import numpy as np

    from vae_zoo.config.schema import DataConfig
    from vae_zoo.data import load_data
    from vae_zoo.evaluation.feature_nets import CARD
    from vae_zoo.evaluation.feature_nets import FOLDER
    from vae_zoo.evaluation.feature_nets import WEIGHTS
    from vae_zoo.evaluation.feature_nets import network
    from vae_zoo.presets.folder import write_yaml
    from vae_zoo.weights_file import write_weights

    epochs = epochs or EPOCHS.get(dataset, 5)
    data = load_data(DataConfig(dataset=dataset, memory_budget_mb=1024), seed=seed)
    parts = [labelled_images(data.splits[s]) for s in ("train", "validation") if s in data.splits]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = labelled_images(data.splits["test"])
    num_classes = int(max(y_train.max(), y_test.max()) + 1)
    log(f"training the {dataset} feature net on {len(x_train)} images of {data.source}, "
        f"{epochs} epochs")

    keras.utils.set_random_seed(seed)
    model = network.build_classifier(x_train.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - start

    folder = FOLDER / dataset
    folder.mkdir(parents=True, exist_ok=True)
    model.set_weights(write_weights(model, folder / WEIGHTS))  # score what ships: float16
    logits = model.predict(x_test, batch_size=1000, verbose=0)
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    log(f"test accuracy of the stored weights: {accuracy:.4f} on {len(x_test)} test images")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=FOLDER).stdout.strip()
    card = {
        "name": dataset,
        "what": f"a small convnet classifier of {dataset}; its {network.FEATURE_DIM}-unit "
                f"penultimate layer (`{network.FEATURE_LAYER}`, before its ReLU) embeds images for "
                "the zoo's Fréchet distance and precision/recall",
        "comparable": "across vae_zoo models on this dataset only: these are not Inception "
                      "features, so the Fréchet distance here is not FID and is not comparable "
                      "with published FID values",
        "dataset": dataset,
        "source": data.source,
        "train_images": int(len(x_train)),
        "train_splits": "train + validation of the run's split (every training image)",
        "test_images": int(len(x_test)),
        "test_accuracy": round(accuracy, 4),
        "image_shape": [int(s) for s in x_train.shape[1:]],
        "num_classes": num_classes,
        "feature_dim": network.FEATURE_DIM,
        "feature_layer": network.FEATURE_LAYER,
        "architecture": "conv 3x3 32 relu, maxpool 2, conv 3x3 64 relu, maxpool 2, dense 128 "
                        "(features), relu, dropout 0.3, dense num_classes (see network.py)",
        "parameters": int(model.count_params()),
        "training": {"epochs": epochs, "batch_size": batch_size, "optimizer": "Adam 1e-3",
                     "seed": seed, "train_seconds": round(seconds, 1),
                     "machine": f"{platform.processor() or platform.machine()}, "
                                f"{os.cpu_count()} CPU cores (shared with other jobs)",
                     "commit": commit},
        "command": f"python -m vae_zoo.evaluation.feature_nets.train --dataset {dataset}",
        "weights": {"file": WEIGHTS, "storage": "float16",
                    "bytes": (folder / WEIGHTS).stat().st_size},
        "versions": {"keras": keras.__version__, "tensorflow": _tf_version(),
                     "numpy": np.__version__},
    }
    write_yaml(folder / CARD, card)
    return card


def _tf_version():
    import tensorflow as tf

    return tf.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vae_zoo.evaluation.feature_nets.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(EPOCHS))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train(args.dataset, args.epochs, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
