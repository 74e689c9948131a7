"""`python evaluate.py RUN_DIR`: held-out metrics and pictures of a trained run.

Reports the test ELBO, the importance-weighted NLL (k = 5000 importance samples by default, as in
Burda et al.), bits per dimension, reconstruction error, active units, and the Fréchet distance,
precision and recall of samples (and the FD of reconstructions) in the zoo's classifier features
of the dataset, from the prior and (--samplers) from ex-post samplers fitted to the codes;
merges them into the run's metrics.json and TensorBoard, and draws the pictures into
RUN_DIR/pictures. With --disentanglement (data with ground-truth factors, such as dsprites),
also the BetaVAE and FactorVAE scores, MIG, DCI and SAP of the model's mean code, with
disentanglement_lib's defaults.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    parser = argparse.ArgumentParser(prog="python evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("-k", "--iw-samples", type=int, default=5000,
                        help="importance samples per image (default 5000)")
    parser.add_argument("--examples", type=int,
                        help="estimate the IW NLL on the first N test images (default: all)")
    parser.add_argument("--iw-precision", choices=["float32", "mixed_bfloat16"],
                        default="float32",
                        help="hidden layers of the IW NLL estimate alone in bfloat16: faster on "
                             "CPUs with AVX512-BF16/AMX, the estimate moves slightly (see "
                             "benchmarks/README.md)")
    parser.add_argument("--quality-images", type=int, default=2000, metavar="N",
                        help="samples scored by Fréchet distance, precision and recall against "
                             "N test images, in the zoo's feature net of the dataset (default "
                             "2000, at most 10000; 0: skip)")
    parser.add_argument("--samplers", nargs="+", metavar="NAME", default=(),
                        help="also score the samples of these ex-post samplers (normal, gmm, maf, "
                             "two_stage) as the prior's: each is the run's stored one, or is "
                             "fitted with its defaults and stored (python -m vae_zoo.sample)")
    parser.add_argument("--no-pictures", action="store_true")
    parser.add_argument("--disentanglement", action="store_true",
                        help="also score the representation against the data's ground-truth "
                             "factors (BetaVAE, FactorVAE, MIG, DCI, SAP)")
    parser.add_argument("--disentanglement-points", type=int, metavar="N",
                        help="cap every disentanglement metric's sample sizes at N, for a quick "
                             "estimate (default: disentanglement_lib's, 5,000 to 10,000)")
    return parser


def evaluate_run(run_dir, num_samples=5000, max_examples=None, draw=True, log=print,
                 disentanglement=False, disentanglement_points=None, iw_precision="float32",
                 quality_images=2000, samplers=()):
    """Evaluates a finished run; returns the updated metrics dict (also written to metrics.json).

    With `disentanglement`, also the five disentanglement metrics (under `disentanglement`), their
    sample sizes capped at `disentanglement_points` when given. `quality_images` samples are
    scored against as many test images (sample FD, precision, recall; 0: not), and as many
    from each of the ex-post `samplers` (names; fitted and stored in the run unless stored).
    """
    from vae_zoo.config import RunConfig
    from vae_zoo.config.schema import MAX_QUALITY_IMAGES
    from vae_zoo.data import load_data
    from vae_zoo.data import make_batches
    from vae_zoo.errors import UserInputError
    from vae_zoo.evaluation import EvalSettings
    from vae_zoo.evaluation.report import evaluate_and_report
    from vae_zoo.run_folder import RunFolder
    from vae_zoo.samplers import SAMPLERS
    from vae_zoo.samplers.codes import run_sampler
    from vae_zoo.samplers.codes import shared_training_codes

    if num_samples < 1 or (max_examples is not None and max_examples < 1):
        raise UserInputError("-k and --examples must be >= 1")
    if not 0 <= quality_images <= MAX_QUALITY_IMAGES:
        raise UserInputError(f"--quality-images must be in [0, {MAX_QUALITY_IMAGES}]")
    if disentanglement_points is not None and disentanglement_points < 10:
        raise UserInputError("--disentanglement-points must be >= 10")
    if samplers and not quality_images:
        raise UserInputError("--samplers scores samples: it needs --quality-images > 0")
    for name in samplers:
        SAMPLERS.get(name)  # an unknown name fails before the model loads
    run = RunFolder(run_dir)
    model = run.load_model()
    codes = shared_training_codes(run, model, log=log)
    fitted = tuple(run_sampler(run, model, name, log, codes) for name in dict.fromkeys(samplers))
    config = RunConfig.from_dict(run.read_config())
    data = load_data(config.data, seed=config.train.seed)
    if data.image_shape != model.image_shape:
        raise UserInputError(f"the run's data now has images of shape {data.image_shape}, "
                             f"but the model takes {model.image_shape}")
    if disentanglement and data.ground_truth is None:
        raise UserInputError(f"--disentanglement needs data with ground-truth factors (such as "
                             f"--dataset dsprites); {data.source} has none")
    if disentanglement and tuple(data.ground_truth.image_shape) != model.image_shape:
        raise UserInputError(f"the ground truth draws images of shape "
                             f"{data.ground_truth.image_shape}, the model takes {model.image_shape}")
    batches = make_batches(data, "test", config.data, seed=config.train.seed)
    log(f"evaluating {run} on {data.sizes['test']} test images of {data.source}")
    settings = EvalSettings(iw_samples=num_samples, iw_examples=max_examples, progress=True,
                            num_examples=data.sizes.get("test"), iw_precision=iw_precision,
                            dataset=config.data.dataset, quality_images=quality_images,
                            samplers=fitted)
    results, drawn = evaluate_and_report(model, batches, run, step=config.train.epochs,
                                         settings=settings, draw=draw)
    metrics = run.read_metrics()
    metrics["test"] = results
    metrics["pictures"] = drawn or metrics.get("pictures", [])
    if disentanglement:
        from vae_zoo.evaluation.disentanglement import report

        log(f"scoring disentanglement against the factors of {data.source}")
        scores = report.score_model(model, data.ground_truth, disentanglement_points)
        report.write_scalars(run, scores, step=config.train.epochs)
        if draw:
            metrics["pictures"] = sorted({*metrics["pictures"], *report.draw_pictures(
                model, data.ground_truth, scores, run, step=config.train.epochs)})
        metrics["disentanglement"] = {**scores, "num_points": disentanglement_points}
    run.write_metrics(metrics)
    return metrics


def main(argv=None):
    args = build_parser().parse_args(argv)
    from vae_zoo.errors import UserInputError

    try:
        metrics = evaluate_run(args.run_dir, args.iw_samples, args.examples, not args.no_pictures,
                               disentanglement=args.disentanglement,
                               disentanglement_points=args.disentanglement_points,
                               iw_precision=args.iw_precision,
                               quality_images=args.quality_images,
                               samplers=args.samplers)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from vae_zoo.evaluation.report import summary

    print(summary(metrics["test"]))
    if args.disentanglement:
        from vae_zoo.evaluation.disentanglement import report

        print(report.summary(metrics["disentanglement"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
