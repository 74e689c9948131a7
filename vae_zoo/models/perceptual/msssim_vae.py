import math

import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.vae import VAE

# Wang et al.'s (2003) first three scale weights (0.0448, 0.2856, 0.3001), renormalised to sum
# to 1: their five scales with an 11-pixel window need 176 pixels a side, a 28x28 digit has three.
DEFAULT_POWER_FACTORS = (0.0711, 0.4530, 0.4759)


def scale_sizes(size, scales):
    """The side of each scale of `tf.image.ssim_multiscale`: it pads an odd side by one pixel
    and halves it (2x2 average pooling) between scales."""
    sizes = [int(size)]
    for _ in range(scales - 1):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


@register_model
class MSSSIMVAE(VAE):
    """A VAE with a perceptual reconstruction term (Snell et al., 2017, "Learning to Generate
    Images with Perceptual Similarity Metrics"): the multiscale structural similarity (MS-SSIM,
    Wang et al., 2003) of the image and its decoded mean replaces -log p(x|z), per example

        loss = weight * (1 - MS-SSIM(x, x_hat)) + w(t) * beta * KL(q(z|x) || N(0, I))

    with z ~ q(z|x) drawn once and x_hat the mean of the decoder's p(x|z) (pixel probabilities
    for `bernoulli`), MS-SSIM from `tf.image.ssim_multiscale` with `max_val` 1 (pixels in
    [0, 1]), averaged over channels. Why: a pixel-wise likelihood scores every pixel on its own
    and blurs edges it is unsure of; MS-SSIM compares local means, contrasts and structure at
    several scales, closer to what a viewer sees (Snell et al.'s VAE reconstructions were
    sharper by their human ratings).

    The term is not a log-likelihood, so the objective bounds no density (`has_density=False`):
    no ELBO, no IW NLL. Evaluation reports the loss, `reconstruction` (the weighted term above),
    `ms_ssim` (higher is better, 1 for a perfect reconstruction), the KL, the reconstruction MSE
    and the code statistics. The best epoch is the one of the lowest `val_loss` (the objective,
    at the KL schedule's end).

    The networks are conv_vae's. Each of the `len(power_factors)` scales halves the image, and
    the last must still hold the `filter_size` window: with the defaults (3 scales, a 7-pixel
    window) an image needs at least 25 pixels a side (28 -> 14 -> 7); smaller images are refused.

    Args:
        reconstruction_weight: float > 0. The weight on 1 - MS-SSIM, which lies in [0, 1]: it
            sets the exchange rate against the KL, in nats.
        power_factors: list of floats. The exponent of each scale, finest first (its length is
            the number of scales).
        filter_size: int. Side of the Gaussian window of SSIM (11 in Wang et al.).
        filter_sigma: float. Width of that window.
        **kwargs: the arguments of `VAE` (`likelihood` only maps the decoder's output to x_hat).
    """

    capabilities = Capabilities(has_density=False)
    objective_is_elbo = False
    metric_names = ("reconstruction", "kl", "ms_ssim")

    def __init__(self, image_shape, reconstruction_weight=1000.0,
                 power_factors=DEFAULT_POWER_FACTORS, filter_size=7, filter_sigma=1.5, **kwargs):
        power_factors = [float(p) for p in power_factors]
        if reconstruction_weight <= 0:
            raise UserInputError(
                f"reconstruction_weight must be > 0, got {reconstruction_weight}")
        if not power_factors or min(power_factors) < 0:
            raise UserInputError(f"power_factors must be a non-empty list of numbers >= 0, got "
                                 f"{power_factors}")
        if int(filter_size) < 1 or filter_sigma <= 0:
            raise UserInputError(f"filter_size must be >= 1 and filter_sigma > 0, got "
                                 f"{filter_size}, {filter_sigma}")
        height, width = image_shape[0], image_shape[1]
        smallest = min(scale_sizes(height, len(power_factors))[-1],
                       scale_sizes(width, len(power_factors))[-1])
        if smallest < int(filter_size):
            raise UserInputError(
                f"images of {height}x{width} are too small for MS-SSIM with "
                f"{len(power_factors)} scales and filter_size {filter_size}: the last scale is "
                f"{smallest} pixels a side, smaller than the window; use fewer power_factors "
                f"or a smaller filter_size")
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.reconstruction_weight = float(reconstruction_weight)
        self.power_factors = power_factors
        self.filter_size = int(filter_size)
        self.filter_sigma = float(filter_sigma)

    def ms_ssim(self, x, x_hat):
        """MS-SSIM per example of two batches of images in [0, 1], in float32: the mean over
        channels of `tf.image.ssim_multiscale`'s per-channel values, as it returns them.

        That function clips each scale's term at 0 before raising it to its power, so a channel
        whose structure is anticorrelated at some scale scores 0, where the power's derivative
        is infinite: its gradient is NaN (0 * inf), and it spread to every weight after 15 steps
        of the default on MNIST. Such a channel's score is flat at 0 (its true gradient is 0),
        so it is scored on x against itself, a finite gradient, and given 0 and no gradient.
        """
        def channels_apart(images):  # (batch, h, w, c) -> (batch, c, h, w, 1)
            return tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2])[..., None]

        def score(a, b):  # (batch, c)
            return tf.image.ssim_multiscale(
                a, b, max_val=1.0, power_factors=self.power_factors,
                filter_size=self.filter_size, filter_sigma=self.filter_sigma)

        x, x_hat = channels_apart(x), channels_apart(x_hat)
        clipped = tf.stop_gradient(score(x, x_hat)) <= 0.0
        safe = tf.where(clipped[..., None, None, None], x, x_hat)
        return tf.reduce_mean(tf.where(clipped, 0.0, score(x, safe)), axis=-1)

    def loss_terms(self, batch, outputs):
        ms_ssim = self.ms_ssim(batch["x"], self.likelihood.mean(outputs["x_params"]))
        reconstruction = self.reconstruction_weight * (1.0 - ms_ssim)
        kl = self.kl_divergence(outputs)
        return {"loss": reconstruction + self.kl_weight() * self.regularizer(kl),
                "reconstruction": reconstruction, "kl": kl, "ms_ssim": ms_ssim}

    def log_importance_weights(self, x, num_samples):
        raise NotImplementedError("msssim_vae has no density: its reconstruction term is not "
                                  "a log-likelihood")

    def get_config(self):
        return {**super().get_config(), "reconstruction_weight": self.reconstruction_weight,
                "power_factors": self.power_factors, "filter_size": self.filter_size,
                "filter_sigma": self.filter_sigma}
