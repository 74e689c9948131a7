"""`train.precision: auto`: mixed bfloat16 where the hardware computes bfloat16 fast, float32
elsewhere, chosen once when a run starts (its config.yaml then records the choice, so a resumed or
exported run rebuilds the same dtypes on any machine)."""

import dataclasses
from pathlib import Path

from vae_zoo.config.schema import PRECISIONS
from vae_zoo.errors import UserInputError

# The rule's table (change it here): hardware on which bfloat16 trains faster than float32.
# CPUs: any of these /proc/cpuinfo flags (Linux; elsewhere the CPU counts as without them).
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# NVIDIA GPUs: this compute capability or later (Ampere). Every TPU computes bfloat16 natively.
BFLOAT16_GPU_CAPABILITY = (8, 0)

FAST, SLOW = "mixed_bfloat16", "float32"


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What the rule looks at (`read_hardware()`; tests pass their own).

    Args:
        tpus: int. TPU devices TensorFlow sees.
        gpu_capabilities: tuple. The compute capability `(major, minor)` of each GPU TensorFlow
            sees, None for a GPU that reports none (not NVIDIA).
        cpu_flags: frozenset of /proc/cpuinfo flags, or None where they cannot be read.
    """

    tpus: int = 0
    gpu_capabilities: tuple = ()
    cpu_flags: frozenset | None = frozenset()


def resolve_precision(setting, hardware=None):
    """`(precision, reason)` for `train.precision`: `auto` by the rule, any other value as set.

    Every zoo strategy computes on the GPUs TensorFlow sees when there are any, so those decide;
    all of them must be fast, or float32 is chosen.
    """
    if setting != "auto":
        return setting, "train.precision in the config"
    hardware = hardware or read_hardware()
    if hardware.tpus:
        return FAST, "auto: TPU"
    if hardware.gpu_capabilities:
        slow = [c for c in hardware.gpu_capabilities if c is None or c < BFLOAT16_GPU_CAPABILITY]
        if slow:
            return SLOW, (f"auto: a GPU of compute capability {_capability(slow[0])} (bfloat16 "
                          f"is fast from {_capability(BFLOAT16_GPU_CAPABILITY)})")
        return FAST, f"auto: GPU of compute capability {_capability(hardware.gpu_capabilities[0])}"
    if hardware.cpu_flags is None:
        return SLOW, "auto: CPU features unknown (read from /proc/cpuinfo, on Linux only)"
    for flag in BFLOAT16_CPU_FLAGS:
        if flag in hardware.cpu_flags:
            return FAST, f"auto: CPU has {flag}"
    return SLOW, f"auto: CPU has none of {', '.join(BFLOAT16_CPU_FLAGS)}"


def read_hardware():
    """The `Hardware` of this process, from physical devices only: listing them initialises no
    TensorFlow runtime, so a multi-worker strategy can still be created afterwards."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return Hardware(
        tpus=len(tf.config.list_physical_devices("TPU")),
        gpu_capabilities=tuple(tf.config.experimental.get_device_details(gpu)
                               .get("compute_capability") for gpu in gpus),
        cpu_flags=cpu_flags())


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The flags of the first CPU in `cpuinfo`, or None without that file (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _capability(capability):
    return "unknown" if capability is None else ".".join(map(str, capability))


def keep_recorded_precision(config, run):
    """`config` to continue the run in `run` (a RunFolder) with: `train.precision: auto` becomes
    the precision the run chose when it started, so that a run never switches precision midway
    (restarted on other hardware, say). Unchanged when the folder holds no readable run."""
    if config.train.precision != "auto" or not (run.path / run.CONFIG).is_file():
        return config
    try:
        recorded = run.read_config()["train"]["precision"]
    except (UserInputError, KeyError, TypeError):  # unreadable: the folder's checks report it
        return config
    if recorded in PRECISIONS and recorded != "auto":
        return config.with_precision(recorded)
    return config
