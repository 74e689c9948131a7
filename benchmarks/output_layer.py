"""Why conv decoders end in a stride-1 `Conv2DTranspose`: it and a `Conv2D` compute the same map
(up to a flip of the kernel), but their forward + backward passes cost differently on CPU.

    python benchmarks/output_layer.py [--repeats 50] [--rounds 5]

Times one training step of the output layer alone (batch 128, the gradients for its input and its
weights) for 1 and 3 output channels, the two layers interleaved, median of `--rounds`.
Writes benchmarks/results/output_layer.{md,json}.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

BATCH = 128
FEATURES = (28, 28, 32)  # what the zoo's conv decoder feeds its output layer on 28x28 images


def step_function(layer, x):
    import tensorflow as tf

    layer(x)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sigmoid(layer(x)))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    step(x)
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    x = tf.random.normal((BATCH, *FEATURES))
    steps = {}
    for channels in (1, 3):
        for kind in (keras.layers.Conv2D, keras.layers.Conv2DTranspose):
            steps[(kind.__name__, channels)] = step_function(kind(channels, 3, padding="same"), x)
    times = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.repeats):
                grads = step(x)
            grads[0].numpy()
            times[key].append((time.perf_counter() - start) / args.repeats * 1000)
    rows = [{"layer": layer, "channels": channels, "ms_per_step": round(statistics.median(t), 3)}
            for (layer, channels), t in times.items()]
    lines = [f"One training step of a 3x3 'same' output layer on {BATCH} feature maps of shape "
             f"{FEATURES}, forward and backward, median of {args.rounds} x {args.repeats} steps:",
             "", "| layer | output channels | ms per step |", "|---|---|---|"]
    lines += [f"| {r['layer']} | {r['channels']} | {r['ms_per_step']:.2f} |" for r in rows]
    lines += ["", "Command: `python benchmarks/output_layer.py`"]
    write_results(args.out, "output_layer", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
