"""`python train.py`: train a zoo model into a run folder (the command line over
`vae_zoo.training.train`)."""

import argparse
import signal
import sys

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
# Exit codes: 0 done (or already done), 2 bad input, 3 the loss diverged (NaN or inf), 4 another
# worker of a multi-worker run is gone, 130 Ctrl-C, 143 SIGTERM (preemption); after 130 and 143 a
# checkpoint was saved (multi-worker: by every worker, of the same step, whichever got the signal).
EXIT_DIVERGED = 3
EXIT_PEER_LOST = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


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
    parser.add_argument("--strategy", choices=["auto", "default", "one_device", "mirrored",
                                               "multi_worker"],
                        help="auto: multi_worker when TF_CONFIG or Slurm name several workers, "
                        "mirrored over several GPUs, default otherwise")
    parser.add_argument(
        "--from-preset", metavar="PRESET",
        help="fine-tune a preset (a name, a preset folder or hf://user/name): start from its "
        "config and its weights; every other flag overrides the config (e.g. --dataset)")
    parser.add_argument("--run-dir", help="run folder (default runs/<model>, numbered if taken)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="set any config value, e.g. --set model.filters=[32,64,128] (repeatable)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run in --run-dir (default: the newest run of --model) "
        "from its last checkpoint; only --epochs may change. The same command with the same "
        "--run-dir resumes an unfinished run too",
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="run this command as N multi-worker processes on 127.0.0.1, each with its TF_CONFIG "
        "(try multi-worker training before a cluster); worker 0 prints here",
    )
    parser.add_argument(
        "--deterministic", action="store_true",
        help="TensorFlow op determinism (train.deterministic): a resumed run ends with "
        "bit-identical weights",
    )
    return parser


def flag_overrides(args):
    overrides = [
        f"{key}={getattr(args, flag)}"
        for flag, key in FLAG_KEYS.items()
        if getattr(args, flag) is not None
    ]
    return overrides + (["train.deterministic=true"] if args.deterministic else [])


def resolve(args):
    """Returns `(config, run_dir)` for the command line; raises UserInputError on bad input."""
    from vae_zoo.config import RunConfig
    from vae_zoo.config import apply_overrides
    from vae_zoo.config import load_zoo_config
    from vae_zoo.run_folder import RunFolder
    from vae_zoo.run_folder import config_differences
    from vae_zoo.training.precision import keep_recorded_precision

    overrides = flag_overrides(args) + args.set
    model_name = args.model or DEFAULT_MODEL
    run = RunFolder(args.run_dir) if args.run_dir else None
    if not args.resume:
        if args.from_preset:
            base, source = preset_config(args.from_preset, args.model)
            model_name = base["model"]["name"]
        else:
            base, source = load_zoo_config(model_name), f"zoo_configs/{model_name}.yaml"
        config = RunConfig.from_dict(apply_overrides(base, overrides), source=source)
        run = RunFolder(args.run_dir) if args.run_dir else RunFolder.default(model_name)
        config = keep_recorded_precision(config, run)  # `auto` matches the precision it chose
        config = config.with_recorded_schedule_lengths(recorded_config(run))  # fractions, too
        if run.holds_run(config.to_dict()):  # the same command again: a restarted job
            args.resume = True
        else:
            run.check_new(config.to_dict())
            return config, run

    if args.from_preset:
        overrides = overrides + [f"train.from_preset={args.from_preset}"]
    if run is None:
        run = RunFolder.latest(model_name)
    try:
        saved_raw = run.read_config()
    except UserInputError as e:
        raise UserInputError(f"--resume: {e}") from None
    source = f"{run}/{RunFolder.CONFIG}"
    saved = RunConfig.from_dict(saved_raw, source=source).to_dict()
    config = RunConfig.from_dict(apply_overrides(saved_raw, overrides), source=source)
    config = keep_recorded_precision(config, run)
    if args.model and args.model != config.model.name:
        raise UserInputError(f"--resume: {run} holds a {config.model.name} run, not {args.model}")
    changed = [
        line for line in config_differences(saved, config.to_dict())
        if not line.startswith("train.epochs:")
    ]
    if changed:
        raise UserInputError(
            f"--resume continues the saved run as it was; only --epochs may change "
            f"(asked to change {'; '.join(changed)})"
        )
    return config, run


def recorded_config(run):
    """The config.yaml of the run in `run` as a dict, or None (no run, or unreadable: the
    folder's checks report it)."""
    if not (run.path / run.CONFIG).is_file():
        return None
    try:
        recorded = run.read_config()
    except UserInputError:
        return None
    return recorded if isinstance(recorded, dict) else None


def preset_config(preset, model=None):
    """`(config dict, source)` to fine-tune `preset` from: its run config, starting from its
    weights (`train.from_preset`)."""
    from vae_zoo.presets import resolve_preset

    folder = resolve_preset(preset)
    config = folder.read_config()
    if config is None:
        raise UserInputError(f"preset {preset} has no {folder.CONFIG}: it was saved without a run "
                             "config and cannot be fine-tuned with train.py")
    if model and model != config["model"]["name"]:
        raise UserInputError(f"--from-preset {preset} is a {config['model']['name']} model, "
                             f"not --model {model}; leave out --model")
    config.setdefault("train", {})["from_preset"] = preset
    return config, f"{preset}/{folder.CONFIG}"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # over a file-size limit: an OSError to report, not a kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        if args.workers != 1:
            from vae_zoo.distribute.launcher import launch_workers

            return launch_workers(argv, args.workers)
        config, run = resolve(args)
        from vae_zoo.training import train
        from vae_zoo.training.allocator import keep_freed_memory

        keep_freed_memory()  # before training allocates: see vae_zoo/training/allocator.py

        if args.resume and run.is_finished() and config.train.epochs <= _epochs_done(run):
            print(f"run folder: {run} holds this run, finished; nothing to do "
                  f"(raise --epochs to train on)")
            return 0
        if args.resume:
            run.write_config(config.to_dict())  # --epochs may have changed
            print(f"resuming the run in {run}")
        print(f"run folder: {run}")
        metrics = train(config, run, resume=args.resume)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    except OSError as e:
        if not _out_of_space(e):
            raise
        print(f"error: cannot write the run folder ({_out_of_space(e)}): disk full or over a "
              "file-size limit; every checkpoint and result written before is intact: free "
              "space and run the same command again to resume", file=sys.stderr)
        return 2
    except Exception as e:
        from vae_zoo.training import TrainingDiverged
        from vae_zoo.training import TrainingInterrupted

        import tensorflow as tf

        if isinstance(e, (tf.errors.UnavailableError, tf.errors.CancelledError,
                          tf.errors.DeadlineExceededError)):
            print(f"error: another worker of this multi-worker run is gone "
                  f"({type(e).__name__}); start every worker again with the same command to "
                  "resume from the chief's last checkpoint", file=sys.stderr)
            return EXIT_PEER_LOST
        if isinstance(e, TrainingDiverged):
            print(f"error: training diverged: {e}; the last good checkpoint and model.keras are "
                  "untouched (try a lower --set train.learning_rate=...)", file=sys.stderr)
            return EXIT_DIVERGED
        if not isinstance(e, TrainingInterrupted):
            raise
        print(
            f"\ninterrupted: saved a checkpoint at epoch {e.epoch + 1}, batch {e.step} in "
            f"{e.run_dir}; continue with: python train.py --resume --run-dir {e.run_dir}",
            file=sys.stderr,
        )
        return EXIT_SIGTERM if e.signum == signal.SIGTERM else EXIT_SIGINT

    if metrics is None:  # a non-chief worker: the chief reports
        return 0
    from vae_zoo.evaluation.report import summary

    print(f"{summary(metrics['test'])} on {metrics['sizes']['test']} test images; best epoch "
          f"{metrics['best_epoch']}; {metrics['train_images_per_second']} train images/s")
    print(f"run folder: {run}  (model.keras, metrics.json, pictures/; "
          f"tensorboard --logdir {run.path.parent})")
    return 0


def _out_of_space(error):
    """The reason, when `error` means the disk (or a file-size limit) is full; else None.

    h5py and TensorFlow put the OS's reason inside their own multi-line messages."""
    import errno

    reasons = {errno.ENOSPC: "No space left on device", errno.EFBIG: "File too large",
               getattr(errno, "EDQUOT", errno.ENOSPC): "Disk quota exceeded"}
    if error.errno in reasons:
        return reasons[error.errno]
    return next((reason for reason in reasons.values() if reason in str(error)), None)


def _epochs_done(run):
    metrics = run.read_metrics()
    return metrics.get("epochs", 0)


if __name__ == "__main__":
    sys.exit(main())
