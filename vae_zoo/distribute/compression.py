"""`train.all_reduce_dtype: bfloat16`: the gradients cross the network in bfloat16.

Between workers the gradient all-reduce is a large share of a step on CPUs (conv_vae: 1.7 M
float32, 25 ms of a 118 ms step on 2 workers over loopback) and its cost grows with its bytes:
in bfloat16 the all-reduce of conv_vae's gradients took 7.1 ms against 14.8 ms in float32
(2 workers, `benchmarks/multi_worker.py`). Each worker's gradient is rounded to bfloat16 (8
bits of mantissa, float32's range), summed in bfloat16 and cast back; Adam divides by the
gradients' running scale, so that relative error of at most 2^-8 per step is noise beside the
batch's own (PyTorch DDP's `bf16_compress_hook` and Horovod's `Compression.fp16` do the same).
Runs in one process and the equality tests keep float32, the default.
"""

import tensorflow as tf

from vae_zoo.config.schema import ALL_REDUCE_DTYPES


def compress_all_reduce(optimizer, dtype):
    """Makes `optimizer` sum its gradients across replicas in `dtype` (see the module).

    Keras 3 sums them in the optimizer (`TFOptimizer._all_reduce_sum_gradients`, called by
    `apply` in a replica context) and has no option for the dtype, so that method of this one
    optimizer is replaced; a loss-scaling optimizer's inner optimizer is the one that sums.
    `tests/test_gradient_compression.py` fails if Keras stops calling it.

    Args:
        optimizer: a Keras optimizer (or `LossScaleOptimizer`).
        dtype: one of `ALL_REDUCE_DTYPES`; `"float32"` leaves the optimizer as it is.
    """
    if dtype not in ALL_REDUCE_DTYPES:
        raise ValueError(f"all-reduce dtype must be one of {ALL_REDUCE_DTYPES}, got {dtype!r}")
    if dtype == "float32":
        return optimizer
    summing = getattr(optimizer, "inner_optimizer", optimizer)
    plain = type(summing)._all_reduce_sum_gradients

    def all_reduce_sum_gradients(grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        context = tf.distribute.get_replica_context()
        if context is None or tf.distribute.get_strategy().num_replicas_in_sync == 1:
            return plain(summing, grads_and_vars)
        present = [i for i, (g, _) in enumerate(grads_and_vars) if g is not None]
        sent = [tf.cast(tf.convert_to_tensor(grads_and_vars[i][0]), dtype) for i in present]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, sent)
        reduced = list(grads_and_vars)
        for i, value in zip(present, summed):
            gradient, variable = grads_and_vars[i]
            reduced[i] = (tf.cast(value, gradient.dtype), variable)
        return reduced

    summing._all_reduce_sum_gradients = all_reduce_sum_gradients
    return optimizer
