from tests.model_harness import ZooModelChecks


class TestConvVAE(ZooModelChecks):
    model_name = "conv_vae"
