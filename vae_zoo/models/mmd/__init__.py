"""The MMD family: codes matched to the prior by the maximum mean discrepancy, with a
deterministic encoder (WAE-MMD, Tolstikhin et al., 2018) or a VAE's (InfoVAE, Zhao et al., 2019)."""

from vae_zoo.models.mmd.info_vae import InfoVAE
from vae_zoo.models.mmd.kernels import mmd
from vae_zoo.models.mmd.wae_mmd import WAE
