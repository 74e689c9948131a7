from vae_zoo.errors import UserInputError
from vae_zoo.layers import Sampling
from vae_zoo.models.ae.ae import AE
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.mmd.kernels import IMQ_SCALES
from vae_zoo.models.mmd.kernels import check_kernel
from vae_zoo.models.mmd.penalty import MMDPenalty


@register_model
class WAE(MMDPenalty, AE):
    """Wasserstein autoencoder with the MMD penalty (Tolstikhin et al., 2018, "Wasserstein
    Auto-Encoders", WAE-MMD, Algorithm 2) and a deterministic encoder: the AE's networks, per
    example

        loss = -log p(x|D(z)) + mmd_weight * MMD^2(q(z), p(z)),   z = E(x), p(z) = N(0, I)

    MMD^2 is the unbiased estimate over the batch's n codes and n fresh draws from the prior
    (`vae_zoo/models/mmd/kernels.py`), with the inverse multiquadric kernel
    k(a, b) = C / (C + ||a - b||^2), C = 2 d, summed over the scales 0.1 .. 10 of C as in the
    authors' code. Every example carries the batch's MMD, so the batch loss is the mean
    reconstruction plus mmd_weight * MMD^2; on several replicas each penalises its own examples'
    codes (a batch-dependent objective, as DIP-VAE's) and the step averages the replicas'
    penalties.

    The penalty matches the aggregate code distribution to N(0, I), so `sample(n)` (z ~ N(0, I),
    decoded) is the model's generator, as in the paper. It has no density: it reports the
    reconstruction and the MMD.

    mmd_weight = 10 is the paper's MNIST lambda. Their reconstruction cost is the squared error;
    the zoo's Bernoulli cross-entropy (about 60-100 nats an image) is larger, so the penalty
    weighs relatively less here.

    Args:
        mmd_weight: float. lambda, the weight on MMD^2.
        kernel: str. `"imq"` (the paper's) or `"rbf"`.
        kernel_scales: list of floats. Multiples of C the kernel is summed over.
        **kwargs: the arguments of `AE`.
    """

    capabilities = Capabilities(has_density=False, batch_dependent_objective=True)
    metric_names = ("reconstruction", "mmd")

    def __init__(self, image_shape, mmd_weight=10.0, kernel="imq", kernel_scales=IMQ_SCALES,
                 **kwargs):
        check_kernel(kernel, kernel_scales)
        if mmd_weight < 0:
            raise UserInputError(f"mmd_weight must be >= 0, got {mmd_weight}")
        super().__init__(image_shape, **kwargs)

        # === Layers ===
        self.sampling = Sampling(dtype="float32", name="prior_draws")

        # === Config ===
        self.mmd_weight = float(mmd_weight)
        self.kernel = kernel
        self.kernel_scales = [float(s) for s in kernel_scales]

    def get_config(self):
        return {**super().get_config(), "mmd_weight": self.mmd_weight, "kernel": self.kernel,
                "kernel_scales": self.kernel_scales}
