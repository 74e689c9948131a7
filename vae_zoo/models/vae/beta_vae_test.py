from vae_zoo.testing.harness import ZooModelChecks


class TestBetaVAE(ZooModelChecks):
    model_name = "beta_vae"


class TestCapacityBetaVAE(ZooModelChecks):
    model_name = "beta_vae"
    # C stays near 0 over the few harness steps, so the loss must fall; the schedule itself is
    # checked step by step in vae_test.py.
    model_overrides = {"capacity": True, "capacity_steps": 100000}
    check_export = False  # the same networks and endpoints as TestBetaVAE
