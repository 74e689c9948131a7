import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.flows.flow_vae import FlowVAE
from vae_zoo.models.flows.made import MADE

tfb = tfp.bijectors


@register_model
class VAEIAF(FlowVAE):
    """VAE with an inverse autoregressive flow (Kingma et al., 2016, "Improved Variational
    Inference with Inverse Autoregressive Flow"): q(z_K|x) is N(mu(x), sigma^2(x)) pushed through
    K IAF steps, each

        z_k = sigma_k * z_{k-1} + (1 - sigma_k) * m_k,   (m_k, s_k) = MADE_k(z_{k-1}, h),
        sigma_k = sigmoid(s_k),   log |det| = sum_i log sigma_k,i

    (their eq. 14, the numerically stable form), with the order of z reversed between steps so
    that each dimension is conditioned on the others in some step. h is a context the encoder
    computes beside mu and sigma (their figure 2), `context_size` numbers per example.

    Each step is TFP's `tfb.Invert(tfb.MaskedAutoregressiveFlow(...))` (`iaf_step`): a MAF's
    inverse is one pass of its network, so an IAF samples (and scores its own samples) in one pass per step, and
    `posterior(x).log_prob(z)` of any z runs the MAF's d-pass forward map. The MADE is the zoo's
    Keras 3 layer (`vae_zoo/models/flows/made.py`): `tfb.AutoregressiveNetwork` is a Keras 2
    layer, which a Keras 3 model would neither train nor save.

    Args:
        num_steps: int. K, the IAF steps.
        made_units: list of ints. Hidden layers of each step's MADE (at least one).
        context_size: int. Size of the context h.
        **kwargs: the arguments of `VAE`.
    """

    def __init__(self, image_shape, num_steps=2, made_units=(320, 320), context_size=16,
                 **kwargs):
        if int(num_steps) < 1 or int(context_size) < 1 or not made_units or min(made_units) < 1:
            raise UserInputError(f"vae_iaf needs num_steps >= 1, context_size >= 1 and at least "
                                 f"one MADE layer, got {num_steps}, {context_size}, {made_units}")
        # === Config === (read by build_networks during super().__init__)
        self.num_steps = int(num_steps)
        self.made_units = [int(u) for u in made_units]
        self.context_size = int(context_size)
        super().__init__(image_shape, **kwargs)

        # === Layers ===
        self.mades = [MADE(self.latent_dim, self.made_units, self.context_size, dtype="float32",
                           name=f"made_{k}") for k in range(self.num_steps)]
        for made in self.mades:
            made.build(None)

    def flow_parameter_count(self):
        return self.context_size

    def bijector(self, parameters):
        """The chain z_0 -> z_K: IAF step 1, reverse, IAF step 2, ... (`tfb.Chain` applies its
        list last first)."""
        reverse = tfb.Permute(list(range(self.latent_dim - 1, -1, -1)))
        steps = []
        for k, made in enumerate(self.mades):
            if k:
                steps.append(reverse)
            steps.append(iaf_step(made, parameters))
        return tfb.Chain(steps[::-1])

    def get_config(self):
        return {**super().get_config(), "num_steps": self.num_steps,
                "made_units": self.made_units, "context_size": self.context_size}


def iaf_step(made, context):
    """One IAF step as TFP's `tfb.Invert(tfb.MaskedAutoregressiveFlow(...))`.

    A MAF's inverse runs its network once on its input y and applies the bijector that
    `bijector_fn(y)` returns, inverted; here that inverse is the gated update
    y -> sigmoid(s) y + (1 - sigmoid(s)) m with (m, s) = MADE(y, h), so the inverted MAF's
    forward map is the IAF step (one pass), with log |det| = sum log sigmoid(s). The gate is
    given to TFP as a `Scale(log_scale=log_sigmoid(s))` and a `Shift(sigmoid(-s) m)` rather than
    as MAF's `shift_and_log_scale_fn`: in that form the same update needs shift = -m exp(-s)
    and log_scale = softplus(-s), whose inverse took inf - inf = nan at strongly negative s.
    """

    def bijector_fn(y, **kwargs):
        m, s = made(y, context)
        return tfb.Invert(tfb.Chain([tfb.Shift(tf.sigmoid(-s) * m),
                                     tfb.Scale(log_scale=tf.math.log_sigmoid(s))]))

    return tfb.Invert(tfb.MaskedAutoregressiveFlow(bijector_fn=bijector_fn))
