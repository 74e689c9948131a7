"""Device strategy and XLA choice: the measured defaults for CPUs and GPUs."""

import tensorflow as tf


def resolve_strategy(name):
    """`auto`: MirroredStrategy over all GPUs when there are several, the default strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def resolve_jit_compile(setting):
    """XLA on GPUs, off on CPUs (where it trains about 1.4x slower), unless set explicitly."""
    if setting == "auto":
        return bool(tf.config.list_logical_devices("GPU"))
    return bool(setting)
