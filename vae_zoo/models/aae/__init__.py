"""The adversarial autoencoder (Makhzani et al., 2016): the AE's networks, the codes matched to
N(0, I) by a discriminator trained by its own optimizer inside the model's step."""

from vae_zoo.models.aae.adversarial_ae import AdversarialAE
