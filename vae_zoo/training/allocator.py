"""Freed memory stays with the training process instead of going back to the system.

glibc's malloc gives a large buffer (a convolution's im2col, a gradient, a received all-reduce
chunk) its own `mmap` and unmaps it when freed, and hands the top of a thread's heap back once
128 KB of it is free. So every training step mapped its big temporaries afresh and the kernel
faulted and zeroed every page again. Measured on conv_vae, one core per process: a
multi-worker step took 45,000 page faults and 422-490 ms; with freed memory kept, 200-400
faults and 243-252 ms, peak memory 3% higher (`benchmarks/multi_worker.py` shows the effect on
training). This is what tcmalloc and jemalloc do by design, without a preload.
"""

import ctypes
import ctypes.util
import os
import platform

# mallopt(3) parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
OPT_OUT = "VAE_ZOO_SYSTEM_MALLOC"  # set to 1 to keep glibc's defaults


def keep_freed_memory():
    """Makes glibc's malloc serve every allocation from its heaps and never shrink them (no
    per-buffer `mmap`, no trimming), for the rest of the process. A process's memory then stays
    at its peak working set, which does not grow with the dataset (batches are read as they are
    needed). Returns whether it applied: not on other C libraries or systems, nor when the
    environment sets `VAE_ZOO_SYSTEM_MALLOC=1`."""
    if os.environ.get(OPT_OUT, "") not in ("", "0") or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; the trim threshold is an int here, so its largest value.
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
