from tests.model_harness import ZooModelChecks


class TestDenseVAE(ZooModelChecks):
    model_name = "dense_vae"
