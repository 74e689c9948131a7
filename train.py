"""Train a zoo model: `python train.py --model conv_vae`. See `python train.py --help`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from vae_zoo.commands.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
