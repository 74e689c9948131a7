"""Evaluate a trained run: `python evaluate.py runs/conv_vae`. See `python evaluate.py --help`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from vae_zoo.commands.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
