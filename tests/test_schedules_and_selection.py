"""Schedules in units of the run, and the best epoch chosen by a fixed criterion (issue #25)."""

import json

import numpy as np
import pytest
import yaml

from tests.test_train_cli import SMALL
from tests.test_train_cli import train
from vae_zoo.config import RunConfig
from vae_zoo.config import apply_overrides
from vae_zoo.config import load_zoo_config
from vae_zoo.presets import resolve_preset
from vae_zoo.run_folder import RunFolder
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.training.checkpoints import BestModel


def zoo_config(name, *overrides):
    return RunConfig.from_dict(apply_overrides(load_zoo_config(name), overrides))


def test_fractions_of_the_run_resolve_to_steps_once():
    config, warnings = zoo_config("beta_vae", "model.capacity=true",
                                  "model.kl_schedule=linear").with_schedule_lengths([1140])
    assert warnings == []
    # The defaults: the warm-up over the first half of the run, C over its first two thirds.
    assert config.model.args["kl_schedule_steps"] == 570
    assert config.model.args["capacity_steps"] == 760
    again, _ = config.with_schedule_lengths([2280])  # a resumed run reads steps: they stay
    assert again.model.args == config.model.args
    steps, _ = zoo_config("conv_vae", "model.kl_schedule_steps=300").with_schedule_lengths([1140])
    assert steps.model.args["kl_schedule_steps"] == 300  # an int is steps
    one, _ = zoo_config("conv_vae", "model.kl_schedule_steps=1.0").with_schedule_lengths([1140])
    assert one.model.args["kl_schedule_steps"] == 1140  # 1.0: the whole run


def test_the_model_stores_steps_not_fractions():
    config, _ = zoo_config("beta_vae", "model.capacity=true").with_schedule_lengths([90])
    model = build_zoo_model("beta_vae", (28, 28, 1), **config.model.args)
    assert model.get_config()["capacity_steps"] == 60
    assert model.get_config()["kl_schedule_steps"] == 45


def test_a_schedule_longer_than_the_run_warns_once_with_the_numbers():
    _, warnings = zoo_config("conv_vae", "model.kl_schedule=linear",
                             "model.kl_schedule_steps=10000").with_schedule_lengths([1140])
    assert warnings == [
        "warning: model.kl_schedule_steps=10000 but the run trains 1,140 steps: the schedule "
        "stops at 11% of its length (a linear ramp ends at 0.11 of its final value)"]
    # A schedule that is off warns of nothing: an old config's 10,000 steps of an unused C.
    _, warnings = zoo_config("beta_vae", "model.capacity_steps=10000").with_schedule_lengths([1140])
    assert warnings == []


def test_old_configs_with_absolute_steps_keep_loading():
    raw = resolve_preset("beta_vae_mnist").read_config()
    assert raw["model"]["capacity_steps"] == 10000
    config, warnings = RunConfig.from_dict(raw).with_schedule_lengths([1140])
    assert config.model.args["capacity_steps"] == 10000 and warnings == []


def test_held_out_capacity_loss_is_at_c_max(mnist_images):
    """val_loss of the capacity objective uses C_max, not C(t): with C(t), an early epoch of
    small KL and small C has the smallest validation loss."""
    model = build_zoo_model("beta_vae", (28, 28, 1), capacity=True, gamma=10.0,
                            capacity_max=20.0, capacity_steps=100)
    model.compile(jit_compile=False)
    model.steps_trained.assign(10)  # C = 2 in training
    assert float(model.current_capacity()) == pytest.approx(2.0)
    results = model.evaluate(mnist_images[:32], batch_size=32, verbose=0, return_dict=True)
    reconstruction, kl = results["reconstruction"], results["kl"]
    assert kl < 20.0  # so |KL - C| is C - KL on every example, and the means compare
    np.testing.assert_allclose(results["loss"], reconstruction + 10.0 * (20.0 - kl), rtol=1e-4)
    assert float(model.current_capacity()) == pytest.approx(2.0)  # training still ramps


@pytest.mark.parametrize("name, stage, criterion", [
    ("conv_vae", 0, ("val_elbo", "max")),
    ("iwae", 0, ("val_iwae_bound", "max")),
    ("beta_vae", 0, ("val_loss", "min")),
    ("factor_vae", 0, ("val_loss", "min")),
    ("vq_vae", 0, ("val_reconstruction", "min")),
    ("vq_vae", 1, ("val_loss", "min")),
    ("ae", 0, ("val_reconstruction", "min")),
    ("rae_gp", 0, ("val_reconstruction", "min")),
    ("wae_mmd", 0, ("val_reconstruction", "min")),
    ("adversarial_ae", 0, ("val_reconstruction", "min")),
    ("vae_gan", 0, ("val_reconstruction", "min")),
    ("info_vae", 0, ("val_elbo", "max")),
    ("miwae", 0, ("val_miwae_bound", "max")),
    ("ciwae", 0, ("val_ciwae_bound", "max")),
    ("piwae", 0, ("val_iwae_bound", "max")),
    ("msssim_vae", 0, ("val_loss", "min")),
    ("vae_lin_nf", 0, ("val_elbo", "max")),
    ("vae_iaf", 0, ("val_elbo", "max")),
])
def test_each_model_declares_what_chooses_its_best_epoch(name, stage, criterion):
    assert build_zoo_model(name, (28, 28, 1)).selection_metric(stage) == criterion


def test_the_best_epoch_is_chosen_by_the_criterion_not_by_a_scheduled_loss(tmp_path):
    """A warm-up makes the training-time loss smallest early; the ELBO is best at epoch 3."""
    val_loss = [90.0, 95.0, 100.0, 105.0]  # what a scheduled loss would pick: epoch 1
    val_elbo = [-120.0, -115.0, -110.0, -112.0]

    class Model:
        weights = None

        def get_weights(self):
            return [np.array(self.weights)]

        def set_weights(self, weights):
            self.weights = float(weights[0])

    saved = []
    best = BestModel(lambda model, path: saved.append(model.weights), tmp_path / "best.keras",
                     monitor="val_elbo", mode="max")
    best.set_model(Model())
    for epoch, (loss, elbo) in enumerate(zip(val_loss, val_elbo)):
        best.model.weights = float(epoch)
        best.on_epoch_end(epoch, {"val_loss": loss, "val_elbo": elbo})
    best.on_train_end()
    assert saved == [2.0]

    run = RunFolder(tmp_path / "run").create()
    rows = [f"{e},{loss},{elbo}" for e, (loss, elbo) in enumerate(zip(val_loss, val_elbo))]
    run.history_path.write_text("epoch,val_loss,val_elbo\n" + "\n".join(rows) + "\n")
    assert run.best_epoch() == (1, 90.0)
    assert run.best_epoch("val_elbo", "max") == (3, -110.0)


@pytest.mark.slow
def test_a_run_records_its_resolved_schedule_and_criterion_and_resume_keeps_them(tmp_path):
    run = tmp_path / "run"
    args = ["--model", "dense_vae", "--run-dir", str(run), *SMALL, "--set", "eval.iw_samples=2",
            "--set", "eval.pictures=false", "--set", "model.kl_schedule=linear"]
    result = train(*args, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("best epoch chosen by val_elbo (highest)") == 1
    assert "warning" not in result.stdout
    # 4 batches an epoch: the warm-up is the first half of the 8 steps, recorded as steps.
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["kl_schedule_steps"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = metrics["best_epoch_chosen_by"]
    assert chosen["metric"] == "val_elbo" and chosen["mode"] == "max"
    history = (run / "history.csv").read_text().splitlines()
    column = history[0].split(",").index("val_elbo")
    elbos = [float(row.split(",")[column]) for row in history[1:]]
    assert metrics["best_epoch"] == 1 + int(np.argmax(elbos))
    assert chosen["value"] == pytest.approx(max(elbos))

    # The same command again is this run (finished), not another one: fractions match steps.
    again = train(*args, "--epochs", "2")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    # Resumed for longer, the schedule stays the one the run started with (not half of 12).
    longer = train("--resume", "--run-dir", str(run), "--epochs", "3")
    assert longer.returncode == 0, longer.stderr
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["kl_schedule_steps"] == 4
