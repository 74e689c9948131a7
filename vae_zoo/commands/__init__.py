"""The command lines, one module each with `main(argv) -> exit code`:

    python train.py ...            vae_zoo.commands.train     (console script vae-zoo-train)
    python evaluate.py RUN_DIR     vae_zoo.commands.evaluate  (vae-zoo-evaluate)
    python -m export RUN_DIR       vae_zoo.commands.export    (vae-zoo-export)
    python -m export.serve ...     vae_zoo.commands.serve     (vae-zoo-serve)
    python -m vae_zoo.sample RUN   vae_zoo.commands.sample    (vae-zoo-sample)

Bad input is a `UserInputError`: one line on stderr and exit code 2, nothing half-written.
"""
