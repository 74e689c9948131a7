"""Each sampler on synthetic codes from a known mixture: it recovers what it should, draws what
it fitted, and its stored files round-trip and refuse damage."""

import json

import numpy as np
import pytest

from vae_zoo.errors import UserInputError
from vae_zoo.samplers import SAMPLERS
from vae_zoo.samplers import load_sampler
from vae_zoo.samplers.base import ARRAYS
from vae_zoo.samplers.base import CONFIG

MEANS = np.array([[-4.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 2.0, 0.0]])
WEIGHTS = np.array([0.5, 0.3, 0.2])
SD = 0.5
QUICK = {"normal": {}, "gmm": {"components": 3}, "maf": {"steps": 400},
         "two_stage": {"steps": 600}}


def mixture_codes(n, seed):
    rng = np.random.default_rng(seed)
    k = rng.choice(3, size=n, p=WEIGHTS)
    return MEANS[k] + SD * rng.normal(size=(n, 4))


@pytest.fixture(scope="module")
def codes():
    return mixture_codes(3000, seed=0)


@pytest.fixture(scope="module")
def fitted(codes):
    return {name: SAMPLERS.get(name)(**options).fit(codes, seed=0)
            for name, options in QUICK.items()}


def test_every_sampler_is_registered_and_named_in_the_command():
    from vae_zoo.commands.sample import SAMPLER_NAMES

    assert SAMPLERS.names() == sorted(SAMPLER_NAMES)


def test_normal_recovers_the_mean_and_covariance_and_draws_them(fitted, codes):
    sampler = fitted["normal"]
    factor = sampler.arrays["cholesky"].astype("float64")
    np.testing.assert_allclose(sampler.arrays["mean"], codes.mean(0), atol=1e-5)
    np.testing.assert_allclose(factor @ factor.T, np.cov(codes, rowvar=False, bias=True),
                               rtol=1e-4, atol=1e-4)
    draws = sampler.sample(4000, seed=1).numpy()
    # 4000 draws: the mean's standard error is sd / 63; the covariance's about 2% of var.
    sd = codes.std(0)
    assert (abs(draws.mean(0) - codes.mean(0)) < 4 * sd / np.sqrt(4000)).all()
    np.testing.assert_allclose(np.cov(draws, rowvar=False), factor @ factor.T,
                               atol=0.1 * sd.max() ** 2)


def test_gmm_recovers_the_components_and_draws_their_proportions(fitted):
    sampler = fitted["gmm"]
    means, weights = sampler.arrays["means"], sampler.arrays["weights"]
    order = [int(np.argmin(((means - m) ** 2).sum(1))) for m in MEANS]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(means[order], MEANS, atol=0.1)
    np.testing.assert_allclose(weights[order], WEIGHTS, atol=0.04)
    for factor in sampler.arrays["cholesky"]:
        np.testing.assert_allclose(factor @ factor.T, SD ** 2 * np.eye(4), atol=0.06)
    draws = sampler.sample(4000, seed=2).numpy()
    nearest = np.argmin(((draws[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / 4000, WEIGHTS, atol=0.03)
    # Within a component, the draws spread as its covariance says.
    spread = draws[nearest == 0] - MEANS[0]
    np.testing.assert_allclose(spread.std(0), SD, rtol=0.1)


@pytest.mark.parametrize("name", ["maf", "two_stage"])
def test_trained_samplers_beat_a_standard_normal_on_held_out_codes(fitted, name):
    held_out = mixture_codes(500, seed=9)
    standard_normal = -0.5 * (held_out ** 2).sum(1) - 2 * np.log(2 * np.pi)
    log_p = fitted[name].log_prob(held_out)
    assert log_p.mean() > standard_normal.mean() + 2, (log_p.mean(), standard_normal.mean())
    assert fitted[name].fitted_on["held_out_nll"] is not None


def test_maf_beats_one_gaussian_on_a_mixture(fitted):
    held_out = mixture_codes(500, seed=9)
    maf, normal = (fitted[name].log_prob(held_out).mean() for name in ("maf", "normal"))
    assert maf > normal + 0.5, (maf, normal)


@pytest.mark.parametrize("name", ["maf", "two_stage"])
def test_trained_samplers_draw_near_the_codes(fitted, name):
    draws = fitted[name].sample(2000, seed=3).numpy()
    nearest = np.min(((draws[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
    # Half the draws within 2 sd (in 4 dimensions) of a component's mean.
    assert np.median(np.sqrt(nearest)) < 4 * SD, np.median(np.sqrt(nearest))


def test_a_seed_repeats_its_draws(fitted):
    for name, sampler in fitted.items():
        a, b = sampler.sample(50, seed=4).numpy(), sampler.sample(50, seed=4).numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.shape == (50, 4) and a.dtype == np.float32
        assert not np.array_equal(a, sampler.sample(50, seed=5).numpy()), name


@pytest.mark.parametrize("name", sorted(QUICK))
def test_save_and_load_round_trip(fitted, tmp_path, name):
    sampler = fitted[name]
    sampler.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted([ARRAYS, CONFIG])
    loaded = load_sampler(tmp_path / name, expected_name=name)
    assert loaded.config == sampler.config and loaded.latent_dim == 4
    np.testing.assert_array_equal(loaded.sample(64, seed=6).numpy(),
                                  sampler.sample(64, seed=6).numpy())
    codes = mixture_codes(20, seed=1)
    np.testing.assert_allclose(loaded.log_prob(codes), sampler.log_prob(codes), rtol=1e-5)


@pytest.fixture
def stored_gmm(fitted, tmp_path):
    return fitted["gmm"].save(tmp_path / "gmm")


def rewrite_arrays(folder, **changes):
    with np.load(folder / ARRAYS) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays.update(changes)
    np.savez(folder / ARRAYS, **arrays)


@pytest.mark.parametrize("damage, message", [
    (lambda f: rewrite_arrays(f, means=np.array([{"a": 1}] * 3, dtype=object)), "not plain arrays"),
    (lambda f: rewrite_arrays(f, means=np.zeros((3, 5), "float32")), r"expected float \(3, 4\)"),
    (lambda f: rewrite_arrays(f, weights=np.array([0.5, 0.5, 0.5], "float32")), "summing to 1"),
    (lambda f: rewrite_arrays(f, cholesky=np.ones((3, 4, 4), "float32")), "not a Cholesky"),
    (lambda f: rewrite_arrays(f, means=np.full((3, 4), np.nan, "float32")), "non-finite"),
    (lambda f: (f / ARRAYS).write_bytes(b"PK\x03\x04 not a zip"), "is damaged"),
    (lambda f: (f / CONFIG).write_text("{not json"), "not JSON"),
    (lambda f: (f / CONFIG).write_text(json.dumps({"sampler": "gmm", "latent_dim": 4,
                                                   "options": {"components": 10 ** 9,
                                                               "max_iter": 100}})), "out of"),
    (lambda f: (f / CONFIG).write_text(json.dumps({"sampler": "pickle", "latent_dim": 4,
                                                   "options": {}})), "unknown sampler"),
    (lambda f: (f / ARRAYS).unlink(), "arrays.npz missing"),
])
def test_damaged_or_hostile_files_are_refused_with_a_message(stored_gmm, damage, message):
    damage(stored_gmm)
    with pytest.raises(UserInputError, match=message):
        load_sampler(stored_gmm)


def test_bad_options_and_codes_are_user_errors(codes):
    with pytest.raises(UserInputError, match="takes no option"):
        SAMPLERS.get("normal")(components=3)
    with pytest.raises(UserInputError, match="out of"):
        SAMPLERS.get("gmm")(components=0).fit(codes)
    with pytest.raises(UserInputError, match="at least as many codes"):
        SAMPLERS.get("gmm")(components=20).fit(codes[:10])
    with pytest.raises(UserInputError, match="finite codes"):
        SAMPLERS.get("normal")().fit(np.full((10, 4), np.nan))
