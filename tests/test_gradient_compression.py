"""`train.all_reduce_dtype: bfloat16`: the gradients are summed across replicas in bfloat16, and
exactly as before in float32 or in one replica."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.config import RunConfig
from vae_zoo.config import apply_overrides
from vae_zoo.config import load_zoo_config
from vae_zoo.distribute.compression import compress_all_reduce
from vae_zoo.errors import UserInputError

# 1 + 2^-10 is a float32 but not a bfloat16 (8 bits of mantissa): it rounds to 1.
GRADIENT = 1.0 + 2.0 ** -10


def summed_update(dtype, replicas):
    """The change of a weight that SGD (learning rate 1) makes when every replica's gradient is
    GRADIENT: minus the sum over the replicas as the optimizer received it."""
    strategy = two_replicas() if replicas > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        weight = keras.Variable(np.zeros(3, np.float32))
        optimizer = compress_all_reduce(keras.optimizers.SGD(1.0), dtype)
        optimizer.build([weight])

    @tf.function
    def step():
        def replica_step():
            optimizer.apply([tf.fill([3], tf.constant(GRADIENT))], [weight])
        strategy.run(replica_step)

    step()
    return -weight.numpy()


def two_replicas():
    """Two replicas on the two logical CPUs of the test session (conftest.py); reduced on one
    device, as the harness does: collective all-reduces would reuse each other's instance keys
    across strategies in one process."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())


def test_bfloat16_sums_the_rounded_gradients_and_float32_sums_them_exactly():
    np.testing.assert_array_equal(summed_update("bfloat16", 2), [2.0] * 3)  # 2 x round(GRADIENT)
    np.testing.assert_allclose(summed_update("float32", 2), [2 * GRADIENT] * 3, rtol=1e-7)
    assert summed_update("float32", 2)[0] != 2.0


def test_one_replica_sends_nothing_and_keeps_float32():
    np.testing.assert_allclose(summed_update("bfloat16", 1), [GRADIENT] * 3, rtol=1e-7)


def test_the_config_refuses_other_dtypes_with_the_choices():
    with pytest.raises(UserInputError, match="train.all_reduce_dtype must be one of float32, "
                                             "bfloat16, got 'float16'"):
        RunConfig.from_dict(apply_overrides(load_zoo_config("conv_vae"),
                                            ["train.all_reduce_dtype=float16"]))
    with pytest.raises(ValueError, match="must be one of"):
        compress_all_reduce(keras.optimizers.SGD(1.0), "int8")
