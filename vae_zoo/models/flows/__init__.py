"""Normalizing-flow posteriors: a diagonal Gaussian pushed through invertible maps whose
log-det-Jacobian gives log q(z|x), planar and radial (VAELinNF, Rezende & Mohamed, 2015) or
inverse autoregressive (VAEIAF, Kingma et al., 2016)."""

from vae_zoo.models.flows.flow_vae import FlowVAE
from vae_zoo.models.flows.vae_iaf import VAEIAF
from vae_zoo.models.flows.vae_lin_nf import VAELinNF
