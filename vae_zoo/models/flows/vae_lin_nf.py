from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.flows.flow_vae import FlowVAE
from vae_zoo.models.flows.linear_flows import FLOWS
from vae_zoo.models.flows.linear_flows import LinearFlowChain
from vae_zoo.models.flows.linear_flows import parameter_count


@register_model
class VAELinNF(FlowVAE):
    """VAE with planar and radial flows (Rezende & Mohamed, 2015, "Variational Inference with
    Normalizing Flows"): q(z_K|x) is N(mu(x), sigma^2(x)) pushed through K flows, each
    `"planar"`, f(z) = z + u_hat tanh(w.z + b), or `"radial"`, f(z) = z + beta (z - z_ref) /
    (alpha + ||z - z_ref||) (`vae_zoo/models/flows/linear_flows.py`, with the paper's
    invertibility constraints), trained on the ELBO with log q(z_K|x) from the log-det-Jacobians
    (`FlowVAE`).

    Every flow's parameters (u, w, b or z_ref, alpha, beta) are outputs of the encoder, one set
    per example (amortised, as the posterior's mean and variance are): a single set shared by
    every x, pythae's `VAE_LinNF`, can only bend every posterior the same way. The flows are
    cheap (O(d) each), so the paper's K of 10 to 80 costs little beside the networks.

    Args:
        flows: list of str. The flows, first applied first: each `"planar"` or `"radial"`.
        **kwargs: the arguments of `VAE`.
    """

    def __init__(self, image_shape, flows=("planar",) * 10, **kwargs):
        flows = [str(kind) for kind in flows]
        unknown = sorted(set(flows) - set(FLOWS))
        if not flows or unknown:
            raise UserInputError(f"flows must be a non-empty list of {' and '.join(FLOWS)}, "
                                 f"got {flows}")
        # === Config === (read by build_networks during super().__init__)
        self.flows = flows
        super().__init__(image_shape, **kwargs)

    def flow_parameter_count(self):
        return sum(parameter_count(kind, self.latent_dim) for kind in self.flows)

    def bijector(self, parameters):
        return LinearFlowChain(self.flows, parameters)

    def flow(self, z0, parameters):
        return LinearFlowChain(self.flows, parameters).apply(z0)  # one pass for both

    def get_config(self):
        return {**super().get_config(), "flows": self.flows}
