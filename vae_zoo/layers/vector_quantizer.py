import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="vae_zoo")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-code vector quantisation (van den Oord et al., 2017) over the last axis.

    Each D-vector z_e of the input is replaced by its nearest codebook vector e_k (Euclidean);
    `call` returns the integer codes k and the quantised vectors e_k, which carry gradients to the
    codebook only. `straight_through(z_e, quantized)` passes the decoder's gradient to the encoder
    unchanged (its Jacobian wrt z_e is the identity).

    With `ema_decay` the codebook is not trained by its loss but moved by exponential moving
    averages of the vectors assigned to each code (the paper's appendix A.1), during training
    calls only:

        N_k <- decay * N_k + (1 - decay) * n_k          n_k: vectors assigned to code k
        m_k <- decay * m_k + (1 - decay) * sum of the vectors assigned to code k
        e_k  = m_k / N'_k,  N'_k = (N_k + eps) / (N + K eps) * N,  N = sum_k N_k

    (Laplace smoothing of the counts, as Sonnet's VectorQuantizerEMA, so that no count is zero).
    n_k and the sums are summed over the replicas of a `tf.distribute` strategy before the update,
    so every replica moves the codebook as one device with the global batch would. N_k starts at
    1 and m_k at e_k: a code that is never chosen keeps its vector until its count decays below
    eps, instead of being divided by zero.

    The first training call sets the codebook to K vectors of its (global) batch, drawn with a
    fixed seed. With EMA updates, a code whose count N_k falls below `dead_code_threshold` (it
    has been chosen by fewer than that many vectors per batch, on average) restarts at a vector
    of the batch, with N_k = 1 (as Jukebox does, Dhariwal et al. 2020): the encoder's outputs
    move far in the first epochs, and without restarts most codes are left behind for good
    (measured on MNIST, 64 codes: 3 to 18 in use after 6 epochs, whatever the initial scale, with
    or without the first-batch start; PyTorch-VAE issue #51 is the same collapse).

    Args:
        num_codes: int. K, the codebook size.
        code_dim: int. D, the size of each code vector.
        ema_decay: float or None. The EMA decay (0.99 in the paper); None trains the codebook
            by gradient of the codebook loss.
        epsilon: float. The Laplace smoothing of the EMA counts.
        dead_code_threshold: float. With EMA, restart codes whose count N_k is below this
            (0: never).
    """

    def __init__(self, num_codes, code_dim, ema_decay=None, epsilon=1e-5,
                 dead_code_threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {ema_decay}")
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.epsilon = float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        ema = self.ema_decay is not None
        # Assigned with the same value on every replica (after the all-reduce): keep the first.
        aggregation = "only_first_replica" if ema else "none"
        self.codebook = self.add_weight(
            shape=(self.num_codes, self.code_dim), name="codebook", trainable=not ema,
            initializer=keras.initializers.RandomUniform(-0.05, 0.05), aggregation=aggregation,
        )
        if ema:
            self.ema_counts = self.add_weight(shape=(self.num_codes,), name="ema_counts",
                                              initializer="ones", trainable=False,
                                              aggregation=aggregation)
            self.ema_sums = self.add_weight(shape=(self.num_codes, self.code_dim),
                                            name="ema_sums", initializer="zeros",
                                            trainable=False, aggregation=aggregation)
            self.ema_sums.assign(self.codebook)
        self.updates = self.add_weight(shape=(), name="updates", initializer="zeros",
                                       dtype="int64", trainable=False,
                                       aggregation="only_first_replica")
        self.built = True

    def nearest(self, vectors):
        """Index of the nearest code of each row of `vectors` `(n, D)`, int32 `(n,)`."""
        codebook = tf.convert_to_tensor(self.codebook)
        distances = (tf.reduce_sum(vectors**2, axis=1, keepdims=True)
                     - 2.0 * tf.matmul(vectors, codebook, transpose_b=True)
                     + tf.reduce_sum(codebook**2, axis=1)[None])
        return tf.cast(tf.argmin(distances, axis=1), tf.int32)

    def lookup(self, codes):
        """The code vectors of integer `codes` (any shape): shape `(*codes.shape, D)`."""
        return tf.gather(tf.convert_to_tensor(self.codebook), codes)

    def call(self, z_e, training=None):
        """`(codes, quantized)` for `z_e` `(..., D)`: int32 `(...)` and float32 `(..., D)`."""
        z_e = tf.cast(z_e, tf.float32)
        flat = tf.reshape(z_e, [-1, self.code_dim])
        if training:
            self._initialize_once(tf.stop_gradient(flat))
        codes = self.nearest(flat)
        if training and self.ema_decay is not None:
            self._ema_update(tf.stop_gradient(flat), codes)
        codes = tf.reshape(codes, tf.shape(z_e)[:-1])
        return codes, self.lookup(codes)

    @staticmethod
    def straight_through(z_e, quantized):
        """`quantized` in the forward pass, the identity wrt `z_e` in the backward pass."""
        z_e = tf.cast(z_e, quantized.dtype)
        return z_e + tf.stop_gradient(quantized - z_e)

    def _initialize_once(self, vectors):
        """Sets the codebook to K vectors of the global batch, the first time only."""
        first = tf.cast(tf.equal(self.updates, 0), tf.float32)
        codebook = first * self._draw(vectors) + (1.0 - first) * self.codebook
        self.codebook.assign(codebook)
        if self.ema_decay is not None:
            self.ema_sums.assign(first * codebook + (1.0 - first) * self.ema_sums)
        self.updates.assign_add(1)

    def _draw(self, vectors):
        """K vectors of the global batch, drawn with a seed that the update count sets: the same
        on every replica, and on one device."""
        replica = tf.distribute.get_replica_context()
        if replica is not None:
            vectors = replica.all_gather(vectors, axis=0)  # the global batch, in order
        n = tf.shape(vectors)[0]
        seed = tf.stack([tf.constant(0, tf.int64), tf.cast(self.updates, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
        return tf.gather(vectors, tf.gather(order, tf.range(self.num_codes) % n))

    def _ema_update(self, vectors, codes):
        assigned = tf.one_hot(codes, self.num_codes, dtype=vectors.dtype)  # (n, K)
        counts = tf.reduce_sum(assigned, axis=0)
        sums = tf.matmul(assigned, vectors, transpose_a=True)
        replica = tf.distribute.get_replica_context()
        if replica is not None:  # None in a strategy's cross-replica context
            counts, sums = replica.all_reduce(tf.distribute.ReduceOp.SUM, [counts, sums])
        decay = self.ema_decay
        new_counts = decay * self.ema_counts + (1.0 - decay) * counts
        new_sums = decay * self.ema_sums + (1.0 - decay) * sums
        total = tf.reduce_sum(new_counts)
        smoothed = (new_counts + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        codebook = new_sums / smoothed[:, None]
        if self.dead_code_threshold > 0:
            dead = tf.cast(new_counts < self.dead_code_threshold, tf.float32)
            drawn = self._draw(vectors)
            codebook = dead[:, None] * drawn + (1.0 - dead[:, None]) * codebook
            new_counts = dead + (1.0 - dead) * new_counts
            new_sums = dead[:, None] * drawn + (1.0 - dead[:, None]) * new_sums
        self.ema_counts.assign(new_counts)
        self.ema_sums.assign(new_sums)
        self.codebook.assign(codebook)

    def compute_output_spec(self, z_e, training=None):
        return (keras.KerasTensor(z_e.shape[:-1], "int32"),
                keras.KerasTensor((*z_e.shape[:-1], self.code_dim), "float32"))

    def get_config(self):
        return {**super().get_config(), "num_codes": self.num_codes, "code_dim": self.code_dim,
                "ema_decay": self.ema_decay, "epsilon": self.epsilon,
                "dead_code_threshold": self.dead_code_threshold}
