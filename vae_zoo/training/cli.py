"""`python train.py`: the command line over `vae_zoo.training.train`."""

import argparse
import sys
from pathlib import Path

from vae_zoo.errors import UserInputError

# Shortcut flags and the config key each one sets.
FLAG_KEYS = {
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "batch_size": "data.batch_size",
    "epochs": "train.epochs",
    "seed": "train.seed",
    "strategy": "train.strategy",
    "latent_dim": "model.latent_dim",
    "beta": "model.beta",
}
DEFAULT_MODEL = "conv_vae"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a vae_zoo model. Defaults come from zoo_configs/<model>.yaml; "
        "every flag below overrides one of its keys.",
    )
    parser.add_argument("--model", help=f"zoo model name (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--dataset",
        help="mnist (TFDS, else the embedded sample), mnist_sample, fashion_mnist, any TFDS "
        "image dataset, a folder of images, or a .npz/.npy file",
    )
    parser.add_argument("--data-dir", help="folder of the dataset's files (IDX files, TFDS data)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch size")
    parser.add_argument("--latent-dim", type=int)
    parser.add_argument("--beta", type=float, help="weight on the KL term")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--strategy", choices=["auto", "default", "one_device", "mirrored"])
    parser.add_argument("--run-dir", help="run folder (default runs/<model>, numbered if taken)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="set any config value, e.g. --set model.filters=[32,64,128] (repeatable)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run in --run-dir (default: the newest run of --model) "
        "from its last checkpoint; only --epochs may change",
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="run this command as N multi-worker processes on 127.0.0.1, each with its TF_CONFIG "
        "(try multi-worker training before a cluster); worker 0 prints here",
    )
    return parser


def flag_overrides(args):
    return [
        f"{key}={getattr(args, flag)}"
        for flag, key in FLAG_KEYS.items()
        if getattr(args, flag) is not None
    ]


def resolve(args):
    """Returns `(config, run_dir)` for the command line; raises UserInputError on bad input."""
    from vae_zoo.config import RunConfig
    from vae_zoo.config import apply_overrides
    from vae_zoo.config import load_zoo_config
    from vae_zoo.training import run_dir as run_files

    overrides = flag_overrides(args) + args.set
    model_name = args.model or DEFAULT_MODEL
    if not args.resume:
        raw = apply_overrides(load_zoo_config(model_name), overrides)
        config = RunConfig.from_dict(raw, source=f"zoo_configs/{model_name}.yaml")
        run_dir = Path(args.run_dir) if args.run_dir else run_files.default_run_dir(model_name)
        run_files.check_new_run_dir(run_dir, config.to_dict())
        return config, run_dir

    run_dir = Path(args.run_dir) if args.run_dir else run_files.latest_run_dir(model_name)
    saved_raw = run_files.read_run_config(run_dir)
    saved = RunConfig.from_dict(saved_raw, source=f"{run_dir}/config.yaml").to_dict()
    config = RunConfig.from_dict(apply_overrides(saved_raw, overrides), source=f"{run_dir}/config.yaml")
    if args.model and args.model != config.model.name:
        raise UserInputError(f"--resume: {run_dir} holds a {config.model.name} run, not {args.model}")
    changed = [
        line for line in run_files.config_differences(saved, config.to_dict())
        if not line.startswith("train.epochs:")
    ]
    if changed:
        raise UserInputError(
            f"--resume continues the saved run as it was; only --epochs may change "
            f"(asked to change {'; '.join(changed)})"
        )
    return config, run_dir


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.workers != 1:
            from vae_zoo.distribute.launcher import launch_workers

            return launch_workers(argv, args.workers)
        config, run_dir = resolve(args)
        from vae_zoo.training import run_dir as run_files
        from vae_zoo.training import train

        if args.resume:
            run_files.write_config(run_dir, config.to_dict())  # --epochs may have changed
        print(f"run folder: {run_dir}")
        metrics = train(config, run_dir, resume=args.resume)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    except Exception as e:
        from vae_zoo.training import TrainingInterrupted

        if not isinstance(e, TrainingInterrupted):
            raise
        print(
            f"\ninterrupted: saved a checkpoint after {e.epochs_done} complete epoch(s) in "
            f"{e.run_dir}; continue with: python train.py --resume --run-dir {e.run_dir}",
            file=sys.stderr,
        )
        return 130

    test = metrics["test"]
    print(
        f"test ELBO {test['elbo']:.2f} nats (reconstruction {test['reconstruction']:.2f}, "
        f"KL {test['kl']:.2f}) on {metrics['sizes']['test']} images; IW NLL {test['iw_nll']:.2f} "
        f"nats (k={test['iw_samples']}, {test['iw_examples']} images); active units "
        f"{test['active_units']}/{test['latent_dim']}; best epoch {metrics['best_epoch']}; "
        f"{metrics['train_images_per_second']} train images/s"
    )
    print(f"run folder: {run_dir}  (model.keras, metrics.json, pictures/; "
          f"tensorboard --logdir {run_dir.parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
