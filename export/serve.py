"""`python -m export.serve --model_base_path exports/conv_vae --model_name conv_vae`: see --help."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vae_zoo.commands.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
