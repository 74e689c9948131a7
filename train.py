"""Train a zoo model: `python train.py --model conv_vae`. See `python train.py --help`."""

import sys

from vae_zoo.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
