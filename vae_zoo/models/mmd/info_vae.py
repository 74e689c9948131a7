from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.mmd.kernels import check_kernel
from vae_zoo.models.mmd.penalty import MMDPenalty
from vae_zoo.models.vae.vae import VAE


@register_model
class InfoVAE(MMDPenalty, VAE):
    """InfoVAE with the MMD divergence (Zhao, Song & Ermon, 2019, "InfoVAE: Balancing Learning
    and Inference in Variational Autoencoders", eq. 6 with D = MMD): the VAE's model and density,
    per example

        loss = -log p(x|z) + (1 - alpha) * w(t) * beta * KL(q(z|x) || N(0, I))
               + (alpha + lam - 1) * MMD^2(q(z), p(z))

    with z ~ q(z|x) drawn once, and MMD^2 the unbiased estimate between the batch's codes z and
    as many fresh draws from N(0, I) (`vae_zoo/models/mmd/kernels.py`), carried by every example
    of the batch as WAE's is (a batch-dependent objective: each replica penalises its own
    examples). The defaults alpha = 0, lam = 10 keep the KL at full weight and add 9 * MMD, with
    the paper's Gaussian kernel exp(-||a - b||^2 / (2 d)); the paper's lam = 1000 collapses the
    posterior in a short run here (0 of 16 active units after 160 steps) and underfits in 30
    epochs. pythae's
    defaults (alpha = 0, lbd = 1e-3) weigh the MMD by -0.999, rewarding a *larger* divergence;
    a negative weight is refused here.

    It keeps the VAE's density: the ELBO and the IW NLL apply, and the best epoch is chosen by
    the validation ELBO (the objective's MMD against fresh prior draws is noisy on held-out
    batches, and the MMD weight would magnify that noise).

    Tracked besides the loss, per example: `mmd` (the batch's MMD^2) and, as in every VAE,
    `reconstruction`, `kl` and `elbo`.

    Args:
        alpha: float <= 1. The KL weight is 1 - alpha.
        lam: float > 0. lambda of the paper; the MMD weight is alpha + lam - 1 (>= 0).
        kernel: str. `"rbf"` (the paper's) or `"imq"`.
        kernel_scales: list of floats. Multiples of C = 2 d the kernel is summed over.
        **kwargs: the arguments of `VAE`.
    """

    capabilities = Capabilities(batch_dependent_objective=True)
    objective_is_elbo = False
    metric_names = ("reconstruction", "kl", "elbo", "mmd")

    def __init__(self, image_shape, alpha=0.0, lam=10.0, kernel="rbf", kernel_scales=(1.0,),
                 **kwargs):
        check_kernel(kernel, kernel_scales)
        if alpha > 1 or lam <= 0 or alpha + lam - 1 < 0:
            raise UserInputError(f"InfoVAE needs alpha <= 1, lam > 0 and alpha + lam - 1 >= 0 "
                                 f"(the KL's and the MMD's weights), got alpha={alpha}, lam={lam}")
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.alpha = float(alpha)
        self.lam = float(lam)
        self.kernel = kernel
        self.kernel_scales = [float(s) for s in kernel_scales]

    @property
    def mmd_weight(self):
        return self.alpha + self.lam - 1.0

    def regularizer(self, kl):
        return (1.0 - self.alpha) * super().regularizer(kl)

    def selection_metric(self, stage=0):
        return "val_elbo", "max"

    def schedule_values(self):
        return {**super().schedule_values(), "alpha": self.alpha,
                "mmd_weight": self.mmd_weight}

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "lam": self.lam,
                "kernel": self.kernel, "kernel_scales": self.kernel_scales}
