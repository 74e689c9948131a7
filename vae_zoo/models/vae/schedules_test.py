"""KL schedules step by step against their closed forms, and in the loss of every VAE model."""

import keras
import numpy as np
import pytest

from vae_zoo.errors import UserInputError
from vae_zoo.models.vae.schedules import KLSchedule
from vae_zoo.training.callbacks import ScheduleLogger
from vae_zoo.testing.harness import build_zoo_model


def weights(schedule, steps):
    return np.array([float(schedule(t)) for t in steps])


def test_constant_is_one_at_every_step():
    np.testing.assert_array_equal(weights(KLSchedule("constant"), [0, 1, 10**9]), 1.0)


def test_linear_warm_up_rises_from_zero_to_one_then_stays():
    steps = np.arange(0, 250)
    np.testing.assert_allclose(weights(KLSchedule("linear", steps=200), steps),
                               np.minimum(1.0, steps / 200), rtol=1e-7)


def test_cyclical_follows_fu_et_al():
    """T = 100 steps, M = 4 cycles of 25 steps, R = 0.5: within each cycle w rises as
    tau / R over the first 12.5 steps, then is 1; after T it stays 1."""
    schedule = KLSchedule("cyclical", steps=100, cycles=4, ratio=0.5)
    hand = {0: 0.0, 1: 0.08, 5: 0.4, 12: 0.96, 13: 1.0, 24: 1.0, 25: 0.0, 30: 0.4, 50: 0.0,
            74: 1.0, 75: 0.0, 87: 0.96, 88: 1.0, 99: 1.0, 100: 1.0, 10**6: 1.0}
    np.testing.assert_allclose(weights(schedule, list(hand)), list(hand.values()), atol=1e-7)
    steps = np.arange(0, 300)
    tau = (steps % 25) / 25
    closed_form = np.where(steps < 100, np.minimum(1.0, tau / 0.5), 1.0)
    np.testing.assert_allclose(weights(schedule, steps), closed_form, atol=1e-7)


def test_cyclical_with_cycles_that_do_not_divide_the_steps():
    schedule = KLSchedule("cyclical", steps=10, cycles=3, ratio=0.25)  # cycles of 10/3 steps
    steps = np.arange(0, 12)
    tau = np.mod(steps, 10 / 3) / (10 / 3)
    np.testing.assert_allclose(weights(schedule, steps),
                               np.where(steps < 10, np.minimum(1.0, tau / 0.25), 1.0), atol=1e-7)
    assert float(schedule(4)) == pytest.approx(0.8)  # 2/3 of a step into the second cycle


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "sigmoid"}, "kl_schedule must be one of constant, linear, cyclical"),
    ({"kind": "linear", "steps": 0}, r"a fraction of the run in \(0, 1\] .* or a whole number"),
    ({"kind": "linear", "steps": 0.5}, "kl_schedule_steps=0.5 is a fraction of the run"),
    ({"kind": "linear", "steps": 2.5}, "or a whole number of steps"),
    ({"kind": "cyclical", "cycles": 0}, "kl_cycles must be >= 1"),
    ({"kind": "cyclical", "ratio": 0.0}, r"kl_ratio must be in \(0, 1\]"),
])
def test_bad_schedules_are_user_errors(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        KLSchedule(**kwargs)


def _terms_by_hand(outputs, x):
    logits = outputs["x_params"].numpy().astype("float64")
    rec = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    mu, log_var = outputs["z_mean"].numpy(), outputs["z_log_var"].numpy()
    return rec, 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=-1)


@pytest.mark.parametrize("model_name, overrides, penalty", [
    ("conv_vae", {"beta": 2.0}, lambda kl, step: 2.0 * kl),
    ("beta_vae", {"beta": 4.0}, lambda kl, step: 4.0 * kl),
    ("beta_vae", {"capacity": True, "gamma": 10.0, "capacity_max": 20.0, "capacity_steps": 100},
     lambda kl, step: 10.0 * np.abs(kl - min(20.0, 20.0 * step / 100))),
])
def test_the_weight_multiplies_the_penalty_in_the_loss(mnist_images, model_name, overrides,
                                                       penalty):
    model = build_zoo_model(model_name, (28, 28, 1), kl_schedule="cyclical",
                            kl_schedule_steps=40, kl_cycles=2, kl_ratio=0.5, **overrides)
    x = mnist_images[:8]
    for step, weight in ((0, 0.0), (5, 0.5), (15, 1.0), (20, 0.0), (25, 0.5), (60, 1.0)):
        model.steps_trained.assign(step)
        outputs = model(x)
        rec, kl = _terms_by_hand(outputs, x)
        loss = float(model.compute_loss(x=x, y_pred=outputs))
        np.testing.assert_allclose(loss, np.mean(rec + weight * penalty(kl, step)), rtol=1e-4)
        assert model.schedule_values()["kl_weight"] == pytest.approx(weight)


def test_the_weight_moves_during_fit_and_is_logged(mnist_images):
    model = build_zoo_model("dense_vae", (28, 28, 1), kl_schedule="linear", kl_schedule_steps=16)
    assert model.schedule_values() == {"beta": 1.0, "kl_weight": 0.0}
    model.compile(optimizer=keras.optimizers.SGD(1e-6), jit_compile=False)
    history = model.fit(mnist_images[:64], batch_size=16, epochs=3, verbose=0,
                        callbacks=[ScheduleLogger()]).history
    np.testing.assert_allclose(history["kl_weight"], [0.25, 0.5, 0.75])  # 4 steps per epoch
    # With w < 1 the loss is below the negative ELBO (the KL counts less); kl is unweighted.
    assert all(loss < -elbo for loss, elbo in zip(history["loss"], history["elbo"]))


def test_held_out_losses_use_the_final_weight(mnist_images):
    """val_loss picks the best checkpoint: it must not drop where a cycle restarts at w = 0."""
    model = build_zoo_model("dense_vae", (28, 28, 1), kl_schedule="cyclical",
                            kl_schedule_steps=100, kl_cycles=2)
    model.compile(optimizer=keras.optimizers.SGD(1e-6), jit_compile=False)
    model.steps_trained.assign(50)  # a cycle starts: w = 0 in training
    assert float(model.kl_weight()) == 0.0
    results = model.evaluate(mnist_images[:64], batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], -results["elbo"], rtol=1e-5)
    assert float(model.kl_weight()) == 0.0  # training still sees the schedule


def test_schedule_settings_round_trip_through_the_config():
    model = build_zoo_model("beta_vae", (28, 28, 1), kl_schedule="cyclical", kl_schedule_steps=90,
                            kl_cycles=3, kl_ratio=0.25)
    clone = type(model).from_config(model.get_config())
    assert clone.kl_schedule.get_config() == {"kind": "cyclical", "steps": 90, "cycles": 3,
                                              "ratio": 0.25}
