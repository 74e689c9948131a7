"""`python -m vae_zoo.sample RUN_DIR --sampler gmm`: better samples from a trained run.

Fits an ex-post sampler (a density over the model's codes: normal, gmm, maf, two_stage) to the
posterior means of the run's training images, stores it in RUN_DIR/samplers/NAME/ (or reuses the
stored one), and draws a picture grid of its samples, RUN_DIR/pictures/samples_NAME.png.
`python -m export RUN_DIR --sampler NAME` then bakes it into the exported `sample` signature.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SAMPLER_NAMES = ("normal", "gmm", "maf", "two_stage")  # checked against the registry in a test


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m vae_zoo.sample",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder written by train.py (holds model.keras)")
    parser.add_argument("--sampler", required=True,
                        help=f"the code density: {', '.join(SAMPLER_NAMES)}")
    parser.add_argument("--components", type=int,
                        help="gmm: mixture components (default 10, as pythae)")
    parser.add_argument("--steps", type=int,
                        help="maf, two_stage: training steps (default: maf 1000, two_stage 2000)")
    parser.add_argument("--n", type=int, default=100, help="images in the picture (default 100)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the fit and of the pictured draws (default 0)")
    parser.add_argument("--codes", type=int, metavar="N",
                        help="fit to the first N training images' codes (default: all)")
    parser.add_argument("--refit", action="store_true",
                        help="fit again even if the run holds this sampler already")
    return parser


def options_of(args):
    """The sampler options the flags set (None: the sampler's default), by sampler."""
    from vae_zoo.errors import UserInputError

    given = {"components": args.components, "steps": args.steps}
    takes = {"gmm": {"components"}, "maf": {"steps"}, "two_stage": {"steps"}}.get(args.sampler,
                                                                                  set())
    for flag, value in given.items():
        if value is not None and flag not in takes:
            raise UserInputError(f"--{flag} does not apply to the {args.sampler} sampler")
    return {k: v for k, v in given.items() if v is not None}


def sample_run(run_dir, sampler, options=None, n=100, seed=0, refit=False, codes=None, log=print):
    """Fits or loads the run's sampler and writes `pictures/samples_<sampler>.png`; returns
    `(sampler, picture path)`."""
    from vae_zoo.errors import UserInputError
    from vae_zoo.evaluation.images import image_grid
    from vae_zoo.evaluation.pictures import save_png
    from vae_zoo.run_folder import RunFolder
    from vae_zoo.samplers import SAMPLERS
    from vae_zoo.samplers.codes import fitted_sampler
    from vae_zoo.samplers.codes import sampler_images

    if n < 1 or (codes is not None and codes < 2):
        raise UserInputError("--n must be >= 1 and --codes >= 2")
    SAMPLERS.get(sampler)  # an unknown name fails before the model loads
    run = RunFolder(run_dir)
    model = run.load_model()
    fitted = fitted_sampler(run, model, sampler, options, refit=refit, seed=seed, limit=codes,
                            log=log)
    images = sampler_images(model, fitted, n, seed).numpy()
    run.pictures_dir.mkdir(parents=True, exist_ok=True)
    path = run.pictures_dir / f"samples_{sampler}.png"
    save_png(image_grid(images), path)
    log(f"{n} samples from {fitted.describe()}: {path}")
    return fitted, path


def main(argv=None):
    args = build_parser().parse_args(argv)
    from vae_zoo.errors import UserInputError

    try:
        sample_run(args.run_dir, args.sampler, options_of(args), n=args.n, seed=args.seed,
                   refit=args.refit, codes=args.codes)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
