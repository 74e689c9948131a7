"""No collapsed default (issue #25): every zoo model, at its default config, learns a code that
it uses on the embedded MNIST sample in a short run, and the capacity variant reaches C_max.

One short run per model (512 digits, batch 32, 160 steps, schedules resolved against those
steps as `train.py` does), then the code on 500 held-out digits: the active units
(Cov_x(E_q[z_i]) > 0.01, `vae_zoo.evaluation.latents`) and the test KL must clear a floor per
family, stated in FLOORS. The capacity objective as it was (per-example |KL(x) - C|, gamma =
1000) fails here: 0 of 10 active units at KL 24.6 (4 of 10 with gamma = 10; the batch-mean form
at gamma = 10 gives 10 of 10). vq_vae has no KL: its codebook perplexity must clear a floor.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.config import RunConfig
from vae_zoo.config import apply_overrides
from vae_zoo.config import load_zoo_config
from vae_zoo.config.zoo import available_models
from vae_zoo.data import DataSpec
from vae_zoo.data.sources.mnist import EMBEDDED_MNIST
from vae_zoo.evaluation.codebook import codebook_usage
from vae_zoo.evaluation.latents import latent_statistics

BATCH, EPOCHS = 32, 10  # 512 digits: 16 steps an epoch, 160 steps
# The floors, per family: at least half the latents active, and a test KL that a collapsed
# posterior (KL ~ 0.001 nats) cannot reach. After 160 steps the ELBO models carry 3 to 8 nats,
# the penalised ones (beta > 1, a TC or covariance penalty) 0.9 to 14 (seed 0, measured when
# this test was written); the floors sit well under those and far above a collapse.
ELBO_KL, PENALISED_KL = 1.5, 0.3
# svae's von Mises-Fisher KL to the uniform grows slower (kappa starts near 0): 1.14, 2.10 and
# 1.74 nats over seeds 0-2 on one machine (a Xeon with AMX), above 1.5 on another; a collapsed
# posterior (kappa -> 0) carries ~0.
SPHERE_KL = 0.5
CODE_ONLY = "active units only"  # deterministic encoders: no KL to floor
FLOORS = {  # case -> least test KL (nats); None: the capacity variant, KL near C_max (below)
    **dict.fromkeys(["conv_vae", "dense_vae", "iwae", "vamp_vae", "cvae", "hvae", "miwae",
                     "ciwae", "vae_lin_nf", "vae_iaf", "piwae"], ELBO_KL),
    "svae": SPHERE_KL,
    **dict.fromkeys(["beta_vae", "beta_tcvae", "factor_vae", "dip_vae", "dip_vae type ii",
                     "info_vae", "msssim_vae", "vae_gan"], PENALISED_KL),
    **dict.fromkeys(["ae", "rae_l2", "rae_gp", "wae_mmd", "adversarial_ae"], CODE_ONLY),
    "beta_vae capacity": None,
}
CAPACITY_TOLERANCE = 0.2  # |KL - C_max| <= 20% of C_max, C_max reached at 2/3 of the run
VARIANTS = {"dip_vae type ii": ("dip_vae", ["model.dip_type=ii"]),
            "beta_vae capacity": ("beta_vae", ["model.capacity=true"])}
MIN_PERPLEXITY = 4.0  # vq_vae: codes in use, of its 64


def cases():
    names = {name: (name, []) for name in available_models() if name != "vq_vae"}
    return sorted({**names, **VARIANTS}.items())


def short_run(model_name, overrides, train_x, train_y):
    raw = apply_overrides(load_zoo_config(model_name), overrides)
    config = RunConfig.from_dict(raw)
    steps = EPOCHS * len(train_x) // BATCH
    config, warnings = config.with_schedule_lengths([steps])
    assert warnings == []  # every default schedule finishes inside the run
    conditional = config.model.model_class().capabilities.conditional
    spec = DataSpec((28, 28, 1), num_classes=10 if conditional else None,
                    train_size=len(train_x))
    keras.utils.set_random_seed(0)
    model = config.model.build(spec, precision="float32")
    model.compile(**model.make_optimizers(config.train.learning_rate), jit_compile=False)
    examples = {"x": train_x, **({"y": train_y} if conditional else {})}
    model.fit(tf.data.Dataset.from_tensor_slices(examples).batch(BATCH), epochs=EPOCHS,
              verbose=0, shuffle=False)
    return model, config


@pytest.fixture(scope="module")
def digits():
    with np.load(EMBEDDED_MNIST) as data:
        order = np.random.default_rng(0).permutation(5000)[:512]
        train = (data["x_train"][order][..., None] / 255.0).astype("float32")
        test = (data["x_test"][:500][..., None] / 255.0).astype("float32")
        return train, data["y_train"][order].astype("int64"), test, data["y_test"][:500]


def held_out(model, test_x, test_y):
    examples = {"x": test_x}
    if model.capabilities.conditional:
        examples["y"] = test_y.astype("int64")
    return tf.data.Dataset.from_tensor_slices(examples).batch(100)


@pytest.mark.slow
@pytest.mark.parametrize("case, model_and_overrides", cases(), ids=[c for c, _ in cases()])
def test_the_default_config_uses_its_code(case, model_and_overrides, digits):
    assert case in FLOORS, f"state the floor of {case} in FLOORS (a new zoo model)"
    train_x, train_y, test_x, test_y = digits
    model, config = short_run(*model_and_overrides, train_x, train_y)
    batches = held_out(model, test_x, test_y)
    units = latent_statistics(model, batches)["active_units"]
    kl = model.evaluate(batches, verbose=0, return_dict=True).get("kl", float("nan"))
    print(f"{case}: {units}/{model.latent_dim} active units, test KL {kl:.2f}")
    assert units >= model.latent_dim / 2, (case, units, kl)
    if FLOORS[case] == CODE_ONLY:
        return
    if FLOORS[case] is not None:
        assert kl >= FLOORS[case], (case, units, kl)
    else:  # the capacity variant: C reached C_max inside the run and the KL followed it
        c_max = config.model.args["capacity_max"]
        assert float(model.current_capacity()) == c_max
        assert abs(kl - c_max) <= CAPACITY_TOLERANCE * c_max, (case, units, kl)


@pytest.mark.slow
def test_the_vq_vae_default_uses_its_codebook(digits):
    train_x, train_y, test_x, test_y = digits
    model, _ = short_run("vq_vae", [], train_x, train_y)
    usage = codebook_usage(model, held_out(model, test_x, test_y))
    print(f"vq_vae: perplexity {usage['perplexity']:.1f} of {usage['num_codes']}")
    assert usage["perplexity"] >= MIN_PERPLEXITY, usage


def test_every_zoo_model_is_covered():
    covered = {name for name, _ in cases()} | {"vq_vae"}
    assert set(available_models()) <= covered
    assert set(FLOORS) == {name for name, _ in cases()}
