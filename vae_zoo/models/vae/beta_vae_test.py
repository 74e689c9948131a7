import numpy as np
import tensorflow as tf

from vae_zoo.models.vae.beta_vae import global_batch_mean
from vae_zoo.testing.harness import ZooModelChecks


class TestBetaVAE(ZooModelChecks):
    model_name = "beta_vae"


class TestCapacityBetaVAE(ZooModelChecks):
    model_name = "beta_vae"
    # C stays near 0 over the few harness steps, so the loss must fall; the schedule itself is
    # checked step by step in vae_test.py.
    model_overrides = {"capacity": True, "capacity_steps": 100000}
    global_batch_objective = True  # the mean KL is all-reduced: 2 replicas = one device
    check_export = False  # the same networks and endpoints as TestBetaVAE



def test_the_capacity_penalty_reads_the_global_batch_on_two_replicas():
    """On 2 replicas each one's penalty uses the mean KL over both replicas' examples, and the
    step's gradient reaches every example as on one device (1/N each): the training step's
    per-replica loss, averaged over the global batch (`compute_average_loss`), sums to the one
    device's loss."""
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    halves = [tf.constant([1.0, 2.0, 3.0]), tf.constant([10.0, 20.0, 30.0])]

    def step():
        values = halves[tf.distribute.get_replica_context().replica_id_in_sync_group]
        with tf.GradientTape() as tape:
            tape.watch(values)
            mean = global_batch_mean(values)
            loss = tf.nn.compute_average_loss(tf.fill(tf.shape(values), mean))
        return mean, tape.gradient(loss, values)

    means, gradients = strategy.run(step)
    for mean in strategy.experimental_local_results(means):
        np.testing.assert_allclose(float(mean), 11.0)  # 66 / 6, not a replica's own 2 or 20
    for gradient in strategy.experimental_local_results(gradients):
        np.testing.assert_allclose(gradient.numpy(), [1 / 6] * 3, rtol=1e-6)
