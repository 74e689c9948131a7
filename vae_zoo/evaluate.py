"""`python -m vae_zoo.evaluate RUN_DIR`: held-out metrics and pictures of a trained run.

Reports the test ELBO, the importance-weighted NLL (k = 5000 importance samples by default, as in
Burda et al.), bits per dimension, reconstruction error and active units; merges them into the run's
metrics.json and TensorBoard, and draws the pictures into RUN_DIR/pictures.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m vae_zoo.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("-k", "--iw-samples", type=int, default=5000,
                        help="importance samples per image (default 5000)")
    parser.add_argument("--examples", type=int,
                        help="estimate the IW NLL on the first N test images (default: all)")
    parser.add_argument("--no-pictures", action="store_true")
    return parser


def evaluate_run(run_dir, num_samples=5000, max_examples=None, draw=True, log=print):
    """Evaluates a finished run; returns the updated metrics dict (also written to metrics.json)."""
    import json
    from pathlib import Path

    from vae_zoo.config import RunConfig
    from vae_zoo.data import load_image_data
    from vae_zoo.data import make_pipeline
    from vae_zoo.errors import UserInputError
    from vae_zoo.evaluation.report import evaluate_and_report
    from vae_zoo.training import run_dir as run_files

    if num_samples < 1 or (max_examples is not None and max_examples < 1):
        raise UserInputError("-k and --examples must be >= 1")
    model = run_files.load_run_model(run_dir)
    config = RunConfig.from_dict(run_files.read_run_config(run_dir))
    data = load_image_data(config.data, seed=config.train.seed)
    if data.image_shape != model.image_shape:
        raise UserInputError(f"the run's data now has images of shape {data.image_shape}, "
                             f"but the model takes {model.image_shape}")
    batches = make_pipeline(data.test, config.data.batch_size, training=False,
                            seed=config.train.seed, binarize=config.data.binarize,
                            image_size=config.data.image_size)
    log(f"evaluating {run_dir} on {data.sizes['test']} test images of {data.source}")
    results, drawn = evaluate_and_report(model, data, batches, run_dir,
                                         Path(run_dir) / run_files.TENSORBOARD_DIR,
                                         step=config.train.epochs, num_samples=num_samples,
                                         max_examples=max_examples, draw=draw)
    path = Path(run_dir) / run_files.METRICS_FILE
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics["test"] = results
    metrics["pictures"] = drawn or metrics.get("pictures", [])
    run_files.write_metrics(run_dir, metrics)
    return metrics


def main(argv=None):
    args = build_parser().parse_args(argv)
    from vae_zoo.errors import UserInputError

    try:
        metrics = evaluate_run(args.run_dir, args.iw_samples, args.examples, not args.no_pictures)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    test = metrics["test"]
    print(f"test ELBO {test['elbo']:.2f} nats | IW NLL {test['iw_nll']:.2f} nats "
          f"(k={test['iw_samples']}, {test['iw_examples']} images) | "
          f"{test['iw_bits_per_dim']:.4f} bits/dim | reconstruction MSE "
          f"{test['reconstruction_mse']:.4f} | active units {test['active_units']}/{test['latent_dim']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
