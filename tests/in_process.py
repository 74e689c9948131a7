"""A command's `main` run in the test process, for inputs it refuses before any training or
export: the same `main`, exit code and output as `python train.py` or `python -m export` (each
is `sys.exit(main())`) without a subprocess's 5 s of importing TensorFlow. The tests of a real
process's exit (signals, exit codes the shell sees) stay subprocesses."""

import os
import subprocess

from vae_zoo.training.allocator import OPT_OUT


def run_main(capfd, main, *args):
    """`main(args)` as a `CompletedProcess` (returncode, stdout, stderr: capfd also catches what
    C code or a child would print on the process's file descriptors)."""
    capfd.readouterr()
    kept = os.environ.get(OPT_OUT)
    os.environ[OPT_OUT] = "1"  # the test process's malloc stays as it is (allocator.py)
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    finally:
        if kept is None:
            del os.environ[OPT_OUT]
        else:
            os.environ[OPT_OUT] = kept
    out = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)
