import pytest

from vae_zoo.config import RunConfig
from vae_zoo.config import apply_overrides
from vae_zoo.config import available_models
from vae_zoo.config import load_zoo_config
from vae_zoo.data import DataSpec
from vae_zoo.errors import UserInputError


def test_every_zoo_config_validates_and_builds():
    assert {"dense_vae", "conv_vae", "beta_vae", "iwae", "vamp_vae", "cvae", "vq_vae",
            "factor_vae", "beta_tcvae", "dip_vae", "hvae", "ae", "rae_l2", "rae_gp", "wae_mmd",
            "info_vae", "miwae", "ciwae", "vae_lin_nf", "vae_iaf", "piwae",
            "msssim_vae", "adversarial_ae", "vae_gan"} <= set(available_models())
    for name in available_models():
        config = RunConfig.from_dict(load_zoo_config(name))
        assert config.model.name == name
        model = config.model.build(DataSpec((28, 28, 1), num_classes=10, train_size=1000))
        assert model.name == name


def test_round_trip_through_a_dict():
    config = RunConfig.from_dict(load_zoo_config("beta_vae"))
    assert RunConfig.from_dict(config.to_dict()) == config


def test_overrides_are_parsed_as_yaml():
    raw = apply_overrides(load_zoo_config("conv_vae"), [
        "model.filters=[16, 32, 64]", "train.epochs=3", "data.binarize=true",
        "train.learning_rate=2e-4", "data.image_size=[32,32]",
    ])
    config = RunConfig.from_dict(raw)
    assert config.model.args["filters"] == [16, 32, 64]
    assert config.train.epochs == 3 and config.data.binarize is True
    assert config.train.learning_rate == pytest.approx(2e-4)
    assert config.data.image_size == [32, 32]


def test_ints_are_accepted_where_floats_are_due():
    raw = apply_overrides(load_zoo_config("conv_vae"), ["train.learning_rate=1"])
    assert RunConfig.from_dict(raw).train.learning_rate == 1.0


@pytest.mark.parametrize("override, message", [
    ("model.latnt_dim=3", r"unknown config key\(s\) model.latnt_dim; valid model keys: .*latent_dim"),
    ("data.batchsize=3", r"unknown config key\(s\) data.batchsize; valid data keys: dataset"),
    ("train.epochs=three", r"train.epochs must be of type int, got 'three'"),
    ("train.epochs=0", r"train.epochs must be >= 1"),
    ("data.binarize=1", r"data.binarize must be of type bool"),
    ("train.strategy=tpu", r"train.strategy must be one of auto, default, one_device, mirrored"),
    ("data.image_size=[32]", r"data.image_size must be \[height, width\]"),
    ("train.precision=bf16",
     r"train.precision must be one of auto, float32, mixed_bfloat16, mixed_float16, got 'bf16'"),
    ("train.profile_steps=[5, 2]", r"train.profile_steps must be \[first, last\] global steps"),
    ("train.profile_steps=[5]", r"train.profile_steps must be \[first, last\] global steps"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(UserInputError, match=message):
        RunConfig.from_dict(apply_overrides(load_zoo_config("conv_vae"), [override]))


@pytest.mark.parametrize("override, message", [
    ("epochs=3", r"--set expects section.key=value"),
    ("optimizer.lr=3", r"unknown section 'optimizer'"),
    ("train.epochs=[1", r"not valid YAML"),
])
def test_bad_overrides(override, message):
    with pytest.raises(UserInputError, match=message):
        apply_overrides(load_zoo_config("conv_vae"), [override])


def test_unknown_model_lists_the_zoo():
    with pytest.raises(UserInputError, match=r"unknown model 'vqvae'; available models: .*conv_vae"):
        load_zoo_config("vqvae")


def test_bad_model_values_are_user_errors():
    for override, message in [("model.network=resnet", "unknown network 'resnet'"),
                              ("model.latent_dim=0", "latent_dim must be a positive integer"),
                              ("model.likelihood=poisson", "unknown likelihood")]:
        config = RunConfig.from_dict(apply_overrides(load_zoo_config("conv_vae"), [override]))
        with pytest.raises(UserInputError, match=message):
            config.model.build(DataSpec((28, 28, 1), num_classes=10))
