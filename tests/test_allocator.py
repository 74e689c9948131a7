"""`keep_freed_memory`: a buffer freed and allocated again is not faulted in afresh."""

import json
import os
import platform
import subprocess
import sys

import pytest

from vae_zoo.training.allocator import OPT_OUT

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")

# Touches a 64 MB malloc'd buffer, frees it, and counts the page faults of doing it again: a step's
# large temporaries, as TensorFlow's CPU allocator gets them from malloc.
FAULTS = """
import ctypes, json, resource, sys
from vae_zoo.training.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def touch():
    buffer = libc.malloc(size)
    ctypes.memset(buffer, 1, size)
    libc.free(buffer)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(json.dumps({"applied": applied,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(mode, **env):
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                         check=True, env={**os.environ, **env})
    return json.loads(out.stdout)


def test_freed_memory_is_reused_without_faults():
    kept, system = faults("keep"), faults("system")
    assert kept["applied"] is True
    assert kept["faults"] <= 8, kept  # the 64 MB come back from the heap, already mapped
    # glibc's default maps 64 MB afresh: 16,384 faults of 4 KB pages (32 with huge pages)
    assert system["faults"] >= 16, system


def test_the_environment_opts_out():
    assert faults("keep", **{OPT_OUT: "1"})["applied"] is False
