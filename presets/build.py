"""Trains and saves the presets shipped in vae_zoo/presets/: `python presets/build.py NAME [NAME ...]`.

Each preset is one train.py command (PRESETS below) into runs/presets/NAME, then `save_preset` of
that run folder into vae_zoo/presets/NAME: its weights stored as float16, its config, and a card
with the test metrics of the stored weights. A preset whose data has ground-truth factors
(`"disentanglement": True`) is also scored by `evaluate.py --disentanglement` first. Run again on
a finished run, train.py finds the run done and only the preset is written again.

Adding a preset is an entry here and one run of this script.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRESETS = {
    "conv_vae_mnist": {
        "description": "conv_vae trained on the embedded MNIST sample (5,000 digits, grey pixels)",
        "train": ["--model", "conv_vae", "--dataset", "mnist_sample", "--epochs", "30", "--seed", "0",
                  "--set", "train.precision=float32"],
    },
    "beta_vae_mnist": {
        "description": "beta_vae (beta = 4, latent 10) trained on the embedded MNIST sample",
        "train": ["--model", "beta_vae", "--dataset", "mnist_sample", "--epochs", "30", "--seed", "0",
                  "--set", "train.precision=float32"],
    },
    "conv_vae_fashion_mnist": {
        "description": "conv_vae trained on Fashion-MNIST (60,000 images, grey pixels), 5 epochs",
        "train": ["--model", "conv_vae", "--dataset", "fashion_mnist", "--epochs", "5", "--seed", "0",
                  "--set", "train.precision=float32"],
    },
    "beta_vae_fashion_mnist": {
        "description": "beta_vae (beta = 4, latent 10) trained on Fashion-MNIST, 5 epochs",
        "train": ["--model", "beta_vae", "--dataset", "fashion_mnist", "--epochs", "5", "--seed", "0",
                  "--set", "train.precision=float32"],
    },
    "beta_tcvae_dsprites": {
        "description": "beta_tcvae (beta = 6, latent 10, disentanglement_lib's four stride-2 "
                       "convs) on dSprites drawn in code: 3 epochs of 100,000 images, the "
                       "setting of the disentanglement table's beta_tcvae row in float32, "
                       "seed 1 (the best of its 3 seeds by MIG there)",
        "train": ["--model", "beta_tcvae", "--dataset", "dsprites", "--epochs", "3", "--seed", "1",
                  "--set", "train.precision=float32",
                  "--set", "model.filters=[32,32,64,64]", "--set", "model.hidden_units=[256]",
                  "--set", "model.latent_dim=10", "--set", "data.train_limit=100000"],
        "disentanglement": True,
        "disentanglement_points": 3000,  # as the disentanglement table: sample sizes capped
    },
}


def build(name):
    from vae_zoo.commands.evaluate import evaluate_run
    from vae_zoo.commands.train import main as train_main
    from vae_zoo.config import RunConfig
    from vae_zoo.presets import save_preset
    from vae_zoo.presets.card import machine
    from vae_zoo.presets.sources import BUILTIN_DIR
    from vae_zoo.run_folder import RunFolder

    spec = PRESETS[name]
    run = RunFolder(REPO / "runs" / "presets" / name)
    code = train_main([*spec["train"], "--run-dir", str(run)])
    if code:
        sys.exit(code)
    if spec.get("disentanglement") and "disentanglement" not in run.read_metrics():
        evaluation = RunConfig.from_dict(run.read_config()).eval
        evaluate_run(run, evaluation.iw_samples, evaluation.iw_examples, draw=False,
                     disentanglement=True,
                     disentanglement_points=spec.get("disentanglement_points"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    save_preset(run, BUILTIN_DIR / name, overwrite=True, card={
        "description": spec["description"],
        "command": f"python presets/build.py {name}",
        "train_command": " ".join(["python train.py", *spec["train"],
                                   f"--run-dir runs/presets/{name}"]),
        "training": {"machine": f"{machine()} (a VM shared with other jobs: times are noisy)",
                     "commit": commit},
    })


def main(argv):
    unknown = [name for name in argv if name not in PRESETS]
    if not argv or unknown:
        print(f"usage: python presets/build.py NAME [NAME ...]; names: {', '.join(PRESETS)}",
              file=sys.stderr)
        return 2
    os.chdir(REPO)
    for name in argv:
        build(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
