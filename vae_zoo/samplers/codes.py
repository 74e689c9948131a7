"""A trained run's side of the samplers: which models take one, the codes they are fitted to,
the stored sampler of a run, and the `sample` endpoint that draws from it.

Codes are the posterior means, `representation(x)`, of the run's training images (pythae fits
its samplers to the same embeddings): they are defined for every model with a continuous
encoder, deterministic autoencoders included (which have no q(z|x) to draw from), and they are
the codes the decoder reconstructs the training images from. Draws from q(z|x) would add the
posterior's noise, which the decoder was trained to average over, not to decode sharply.
"""

import functools

import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.samplers.base import SAMPLERS
from vae_zoo.samplers.base import load_sampler

FOLDER = "samplers"


def unsupported_reason(model_class):
    """Why a model class takes no ex-post sampler, or None when it does."""
    capabilities = model_class.capabilities
    if capabilities.discrete_codes:
        return "its codes are discrete codebook indices (its learned prior already draws them)"
    if capabilities.conditional:
        return "its samples are conditioned on labels (a code density per label is not built)"
    return None


def applicable_models():
    """The zoo model names whose runs take a sampler: a continuous, unconditional code."""
    from vae_zoo.config import available_models
    from vae_zoo.config import load_zoo_config
    from vae_zoo.models import MODELS

    names = []
    for name in available_models():
        class_name = load_zoo_config(name)["model"].get("class_name")
        if class_name in MODELS and unsupported_reason(MODELS.get(class_name)) is None:
            names.append(name)
    return names


def check_model(model):
    reason = unsupported_reason(type(model))
    if reason is not None:
        raise UserInputError(
            f"{model.name} ({type(model).__name__}) takes no ex-post sampler: {reason}; "
            f"samplers apply to {', '.join(applicable_models())}")


def training_codes(run, model, limit=None, log=print):
    """`representation(x)` of the run's training images (the first `limit`), `(n, latent_dim)`."""
    from vae_zoo.config import RunConfig
    from vae_zoo.data import load_data
    from vae_zoo.data import make_batches
    from vae_zoo.evaluation.latents import representations

    config = RunConfig.from_dict(run.read_config())
    data = load_data(config.data, seed=config.train.seed)
    if data.image_shape != model.image_shape:
        raise UserInputError(f"the run's data now has images of shape {data.image_shape}, "
                             f"but the model takes {model.image_shape}")
    batches = make_batches(data, "train", config.data, seed=config.train.seed, limit=limit)
    codes = representations(model, batches)
    log(f"codes: the posterior means of {len(codes)} training images of {data.source} "
        f"({codes.shape[1]} latents)")
    return codes


def shared_training_codes(run, model, limit=None, log=print):
    """A function returning `training_codes(...)`, computed on its first call only: samplers
    fitted one after another share one pass over the data, and a stored one needs none."""
    return functools.cache(lambda: training_codes(run, model, limit, log))


def sampler_folder(run, name):
    return run.path / FOLDER / name


def stored_sampler(run, model, name):
    """The sampler `name` stored in the run, checked against the model's latent size."""
    sampler = load_sampler(sampler_folder(run, name), expected_name=name)
    if sampler.latent_dim != model.latent_dim:
        raise UserInputError(f"{sampler_folder(run, name)} was fitted to {sampler.latent_dim} "
                             f"latents; the model has {model.latent_dim}")
    return sampler


def fitted_sampler(run, model, name, options=None, refit=False, seed=0, limit=None, log=print,
                   codes=None):
    """The run's sampler `name`: the stored one unless `refit` or other `options` are asked
    for, else fitted to the training codes (`codes()`, from `shared_training_codes`, when
    given) and stored in `RUN/samplers/NAME/`."""
    check_model(model)
    sampler = SAMPLERS.get(name)(**(options or {}))
    sampler.check_options()
    folder = sampler_folder(run, name)
    if not refit and folder.exists():
        try:
            stored = stored_sampler(run, model, name)
        except UserInputError as e:
            raise UserInputError(f"{e} (--refit fits it again)") from None
        if stored.config == sampler.config:
            log(f"using the stored {stored.describe()} in {folder} (--refit fits it again)")
            return stored
        log(f"the stored sampler is {stored.describe()}; fitting {sampler.describe()}")
    sampler.fitted_on.update(codes_of="representation(x) of training images", seed=int(seed))
    codes = codes or shared_training_codes(run, model, limit, log)
    sampler.fit(codes(), seed=seed, log=log)
    sampler.save(folder)
    log(f"fitted {sampler.describe()}; stored in {folder}")
    return sampler


def run_sampler(run, model, name, log=print, codes=None):
    """The run's sampler `name` to evaluate: the stored one whatever its options (fitted by
    `python -m vae_zoo.sample`), else one fitted with the defaults to `codes()` and stored."""
    check_model(model)
    if not sampler_folder(run, name).exists():
        return fitted_sampler(run, model, name, log=log, codes=codes)
    sampler = stored_sampler(run, model, name)
    log(f"using the stored {sampler.describe()} in {sampler_folder(run, name)}")
    return sampler


def sampler_images(model, sampler, n, seed=None):
    """`n` decoded images `(n, H, W, C)` of codes drawn from `sampler` (a fixed int `seed`
    draws the same ones again)."""
    return model.decode(model.onto_latent_space(sampler.sample(n, seed=seed)))


def sampler_endpoint(model, sampler):
    """The `sample` endpoint `(function, input_signature)` drawing codes from `sampler`: the
    model's own signature (`n` -> `x_mean`) with the sampler in place of the prior."""
    n_spec = tf.TensorSpec([], tf.int32, name="n")

    def sample(n):
        return {"x_mean": sampler_images(model, sampler, n)}

    return sample, [n_spec]
