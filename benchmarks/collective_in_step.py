"""Does an all-reduce cost more after compute than alone? 2 workers on loopback, one core each.

    python benchmarks/collective_in_step.py [--size 1696097] [--repeats 40]

Each worker times (median ms of `--repeats` calls of one tf.function) three steps: `compute`
(25 matmuls of 256x1024 by 1024x1024, then a gradient-sized vector that depends on them),
`reduce` (that vector all-reduced, no matmuls) and `both`. If `both` is close to `compute +
reduce`, an all-reduce after compute costs what it costs alone, and the larger collective time
inside a conv_vae training step (`multi_worker.py --profile`) comes from something else of the
step. Prints one JSON line per mode; writes nothing.
"""

import argparse
import json
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.multi_worker import loopback_workers  # noqa: E402
from benchmarks.multi_worker import run_processes  # noqa: E402

WORKER = textwrap.dedent("""
    import json, sys, time
    from vae_zoo.distribute import multi_worker_strategy
    strategy = multi_worker_strategy()
    import tensorflow as tf
    mode, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    w = tf.random.stateless_normal([1024, 1024], [0, 1]) * 0.01

    def replica():
        x = tf.random.stateless_normal([256, 1024], [1, 2])
        if mode != "reduce":
            for _ in range(25):
                x = tf.matmul(x, w)
        g = tf.ones([size]) * tf.reduce_mean(x)
        if mode == "compute":
            return tf.reduce_sum(g)
        return tf.reduce_sum(tf.distribute.get_replica_context().all_reduce("SUM", g))

    step = tf.function(lambda: strategy.run(replica))
    for _ in range(5):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - start)
    print(json.dumps({"mode": mode, "median_ms": round(1e3 * sorted(times)[len(times) // 2], 2)}))
""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_696_097, help="values (conv_vae's gradient)")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    for mode in ("compute", "reduce", "both"):
        commands, envs = loopback_workers(2)
        _, _, outputs = run_processes(
            commands([sys.executable, "-c", WORKER, mode, str(args.size), str(args.repeats)]), envs)
        print(outputs[0].strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
