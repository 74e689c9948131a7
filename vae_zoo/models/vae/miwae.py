import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.iwae import IWAE
from vae_zoo.models.vae.iwae import _log_mean_exp


@register_model
class MIWAE(IWAE):
    """MIWAE (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily Better"):
    the average of M independent K-sample importance-weighted bounds, per example

        loss = -(1/M) sum_m log (1/K) sum_k w_mk,   log w = log p(x|z) + log p(z) - log q(z|x)

    with M * K draws z_mk ~ q(z|x) by reparameterisation (the weights of IWAE and of the IW NLL,
    tempered by a KL schedule or `beta` as IWAE's are). M = 1 is IWAE with K samples, K = 1 the
    VAE's ELBO averaged over M draws. Rainforth et al. show that a large K weakens the encoder's
    gradient signal; MIWAE trades some tightness for a better-trained encoder (their MNIST
    setting M = 8, K = 8 of 64 draws).

    Tracked besides IWAE's terms: `miwae_bound` (the objective's bound); `iwae_bound` is the
    tighter M * K-sample bound from the same draws. The best epoch is chosen by
    `val_miwae_bound`, the bound it trains on.

    Args:
        k: int. K, the draws inside each importance-weighted bound.
        m: int. M, the independent bounds averaged.
        **kwargs: the arguments of `IWAE` (its `k` is K here).
    """

    metric_names = ("reconstruction", "kl", "elbo", "iwae_bound", "miwae_bound")
    bound_name = "miwae_bound"

    def __init__(self, image_shape, k=8, m=8, **kwargs):
        if int(m) < 1:
            raise UserInputError(f"m must be a positive integer, got {m}")
        super().__init__(image_shape, k=k, **kwargs)

        # === Config ===
        self.m = int(m)

    @property
    def draws(self):
        return self.m * self.k

    def bound(self, log_w):
        """`(M * K, batch)` -> the mean over M of the K-sample log-mean-exps: `(batch,)`."""
        groups = tf.reshape(log_w, [self.m, self.k, -1])
        return tf.reduce_mean(_log_mean_exp(tf.transpose(groups, [1, 0, 2])), axis=0)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


@register_model
class CIWAE(IWAE):
    """CIWAE (Rainforth et al., 2018): a convex combination of the ELBO and the K-sample
    importance-weighted bound from the same K draws, per example

        loss = -[ beta_c * (1/K) sum_k log w_k + (1 - beta_c) * log (1/K) sum_k w_k ]

    beta_c = 1 is the VAE's ELBO (averaged over K draws), beta_c = 0 IWAE's bound. The weights
    are IWAE's (tempered by a KL schedule or `beta` as IWAE's are). Rainforth et al.'s MNIST
    setting is K = 64 with beta_c = 0.5.

    Tracked besides IWAE's terms: `ciwae_bound` (the objective's bound); the best epoch is chosen
    by it.

    Args:
        k: int. K, the draws per example.
        combination: float in [0, 1]. beta_c, the ELBO's share.
        **kwargs: the arguments of `IWAE`.
    """

    metric_names = ("reconstruction", "kl", "elbo", "iwae_bound", "ciwae_bound")
    bound_name = "ciwae_bound"

    def __init__(self, image_shape, k=64, combination=0.5, **kwargs):
        if not 0.0 <= combination <= 1.0:
            raise UserInputError(f"combination must be in [0, 1], got {combination}")
        super().__init__(image_shape, k=k, **kwargs)

        # === Config ===
        self.combination = float(combination)

    def bound(self, log_w):
        return (self.combination * tf.reduce_mean(log_w, axis=0)
                + (1.0 - self.combination) * _log_mean_exp(log_w))

    def get_config(self):
        return {**super().get_config(), "combination": self.combination}


@register_model
class PIWAE(MIWAE):
    """PIWAE (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily Better"):
    one set of M * K draws z ~ q(z|x) a step and two objectives on it,

        generative network (decoder):  maximise  log (1/(M K)) sum_mk w_mk        (IWAE, M * K)
        inference network (encoder):   maximise  (1/M) sum_m log (1/K) sum_k w_mk  (MIWAE)

    with IWAE's weights `log w = log p(x|z) + log p(z) - log q(z|x)` (tempered by a KL schedule
    or `beta` as IWAE's are). Why: a tighter bound gives the decoder a better gradient but the
    encoder a noisier one (its signal-to-noise ratio falls as 1/sqrt(K)); PIWAE gives each
    network the bound that suits it, from the same draws (the paper's MNIST setting M = 8, K = 8).

    `train_step` takes both gradients from one forward pass: d(IWAE bound)/d(decoder weights,
    and a learned likelihood scale) and d(MIWAE bound)/d(encoder weights), each of a loss averaged
    over the global batch (so 2 replicas take one device's step), and applies them together with
    the one optimizer. No single loss has this gradient: `loss` is the decoder's (the negative
    M * K-sample bound), `encoder_loss` the encoder's.

    Tracked: MIWAE's terms (`iwae_bound`, `miwae_bound`, `reconstruction`, `kl`, `elbo`). The
    best epoch is chosen by `val_iwae_bound`, the decoder's bound and the tighter bound on log
    p(x) from the same draws (`val_loss` when beta != 1).

    Args:
        k: int. K, the draws inside each of the encoder's importance-weighted bounds.
        m: int. M, the encoder's independent bounds; the decoder's bound uses all M * K draws.
        **kwargs: the arguments of `IWAE`.
    """

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)  # its loss: the negative tempered MIWAE bound
        return {**terms, "loss": -_log_mean_exp(self.tempered_log_weights(outputs)),
                "encoder_loss": terms["loss"]}

    def selection_metric(self, stage=0):
        """The decoder's bound over all M * K draws (at beta = 1)."""
        return ("val_iwae_bound", "max") if self.beta == 1.0 else ("val_loss", "min")

    def train_step(self, data):
        batch = self.as_batch(data)
        with tf.GradientTape(persistent=True) as tape:
            outputs = self(batch, training=True)
            decoder_loss = self.compute_loss(x=batch, y_pred=outputs)  # tracks every term
            encoder_loss = self.average_loss(self.loss_terms(batch, outputs)["encoder_loss"])
            scaled = [self.optimizer.scale_loss(decoder_loss),
                      self.optimizer.scale_loss(encoder_loss)]
        # Each weight's gradient from its own network's bound, at the same weights and draws.
        encoder = self.encoder.trainable_variables
        encoder_ids = {id(v) for v in encoder}
        decoder = [v for v in self.trainable_variables if id(v) not in encoder_ids]
        gradients = dict(zip(map(id, decoder), tape.gradient(scaled[0], decoder)))
        gradients.update(zip(map(id, encoder), tape.gradient(scaled[1], encoder)))
        del tape
        variables = self.trainable_variables  # the order the optimizer's state is built in
        self.optimizer.apply([tf.zeros(v.shape, v.dtype) if gradients[id(v)] is None
                              else gradients[id(v)] for v in variables], variables)
        self.steps_trained.assign_add(1)
        return self.get_metrics_result()
