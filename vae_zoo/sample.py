"""`python -m vae_zoo.sample RUN_DIR --sampler gmm`: see `vae_zoo.commands.sample`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vae_zoo.commands.sample import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
