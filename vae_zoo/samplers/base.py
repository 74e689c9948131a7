"""The sampler interface, and the safe reading of a stored sampler's files.

An ex-post sampler replaces a trained model's prior p(z) by a density fitted to the codes of its
training images (Ghosh et al., 2020; pythae's `GaussianMixtureSampler`, `MAFSampler`,
`TwoStageVAESampler`): a VAE's aggregate posterior rarely fills N(0, I), and an autoencoder has
no prior at all, so decoding draws of the fitted density gives images nearer the data.

A sampler draws codes with TensorFlow ops only (those that convert to TFLite builtins), so the
same draw is what the exported `sample` signature runs, with no zoo code at serving time.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.registry import Registry

SAMPLERS = Registry("sampler")
CONFIG = "sampler.json"
ARRAYS = "arrays.npz"


def register_sampler(name):
    """Class decorator: a sampler by the name `python -m vae_zoo.sample --sampler` takes."""

    def add(cls):
        cls.name = name
        return SAMPLERS.register(name)(cls)

    return add


class Sampler:
    """A density over codes `(latent_dim,)`, fitted to codes and drawn in TensorFlow.

    Subclasses set `options` (their constructor arguments, stored in `sampler.json`), implement
    `fit_arrays` (codes -> named float arrays), `draw` (TF draws from those arrays), and
    `expected_shapes` (what a stored file must hold, so that a damaged or hostile file is
    refused before it is used).
    """

    name = None
    options = {}

    def __init__(self, **options):
        unknown = set(options) - set(self.options)
        if unknown:
            raise UserInputError(f"sampler {self.name!r} takes no option {sorted(unknown)}; "
                                 f"its options: {', '.join(self.options) or 'none'}")
        self.config = {**self.options, **{k: v for k, v in options.items() if v is not None}}
        self.arrays = None
        self.latent_dim = None
        self.fitted_on = {}

    # --- Fitting and drawing --------------------------------------------------------------------

    def fit(self, codes, seed=0, log=None):
        """Fits the sampler to `codes` `(n, latent_dim)`; returns self."""
        self.check_options()
        codes = np.asarray(codes, dtype="float64")
        if codes.ndim != 2 or len(codes) < 2 or not np.isfinite(codes).all():
            raise UserInputError(f"{self.name} needs finite codes (n >= 2, latent_dim), got "
                                 f"shape {codes.shape}")
        self.latent_dim = codes.shape[1]
        arrays = self.fit_arrays(codes, int(seed), log or (lambda _: None))
        self.arrays = {k: np.asarray(v, "float32") for k, v in arrays.items()}
        self.fitted_on.setdefault("codes", len(codes))
        self.build()
        return self

    def fit_arrays(self, codes, seed, log):
        raise NotImplementedError

    def build(self):
        """Makes TF objects from `self.arrays` (after fitting or loading)."""
        self.tensors = {k: tf.constant(v) for k, v in self.arrays.items()}

    def sample(self, n, seed=None):
        """`n` codes `(n, latent_dim)`, float32; a fixed int `seed` draws the same ones again."""
        if self.arrays is None:
            raise RuntimeError(f"the {self.name} sampler is not fitted")
        return self.draw(n, seed)

    def draw(self, n, seed):
        raise NotImplementedError

    def noise(self, n, seed, stream=0, size=None):
        """N(0, I) draws `(n, size or latent_dim)`: `tf.random.normal` (a TFLite builtin) or,
        with a seed, the stateless op."""
        size = size or self.latent_dim
        if seed is None:
            return tf.random.normal([n, size])
        return tf.random.stateless_normal([n, size], seed=[int(seed), stream])

    def log_prob(self, codes):
        """log density of `codes` under the fitted sampler (a lower bound for `two_stage`)."""
        raise NotImplementedError

    def expected_shapes(self, config, latent_dim):
        """`{array name: shape}` a stored sampler with `config` must hold."""
        raise NotImplementedError

    # Bounds of every option: a stored file cannot make the loader build a huge network.
    limits = {}

    def check_options(self):
        """Refuses options out of `limits` (from the command line or a stored file)."""
        for key, (low, high) in self.limits.items():
            values = self.config[key] if isinstance(self.config[key], list) else [self.config[key]]
            if not values or not all(low <= v <= high for v in values):
                raise UserInputError(f"{self.name}: {key}={self.config[key]!r} is out of "
                                     f"[{low}, {high}]")

    def check_arrays(self, path):
        """Checks a loaded file's arrays beyond their shapes (a Cholesky factor's diagonal...)."""

    def describe(self):
        """One line for logs and the export's metadata."""
        options = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.name}({options})" if options else self.name

    def metadata(self):
        return {"sampler": self.name, "options": dict(self.config), "latent_dim": self.latent_dim,
                "fitted_on": dict(self.fitted_on)}

    # --- Files ----------------------------------------------------------------------------------

    def save(self, folder):
        """Writes `sampler.json` and `arrays.npz` (plain arrays: no pickle) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{ARRAYS}"
        with open(tmp, "wb") as f:
            np.savez(f, **self.arrays)
        tmp.replace(folder / ARRAYS)
        tmp = folder / f".tmp-{CONFIG}"
        tmp.write_text(json.dumps(self.metadata(), indent=2) + "\n")
        tmp.replace(folder / CONFIG)
        return folder


def load_sampler(folder, expected_name=None):
    """The sampler stored in `folder` by `Sampler.save`.

    The files are read as data only: JSON, and `np.load(allow_pickle=False)`; every option is
    checked for its type and range and every array for its shape and finiteness, so a damaged
    or hostile file is refused with one message before anything is built from it.
    """
    folder = Path(folder)
    config_path, arrays_path = folder / CONFIG, folder / ARRAYS
    missing = [p.name for p in (config_path, arrays_path) if not p.is_file()]
    if missing:
        raise UserInputError(f"{folder} holds no fitted sampler ({', '.join(missing)} missing)")
    try:
        meta = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UserInputError(f"{config_path} is damaged: not JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("sampler"), str):
        raise UserInputError(f"{config_path} is damaged: no sampler name")
    name = meta["sampler"]
    if expected_name is not None and name != expected_name:
        raise UserInputError(f"{config_path} holds a {name!r} sampler, not {expected_name!r}")
    cls = SAMPLERS.get(name)
    latent_dim, options = meta.get("latent_dim"), meta.get("options")
    if not _same_kind(latent_dim, 1) or not 0 < latent_dim <= 4096:
        raise UserInputError(f"{config_path} is damaged: latent_dim {latent_dim!r}")
    if not isinstance(options, dict) or set(options) != set(cls.options):
        raise UserInputError(f"{config_path} is damaged: options {options!r}, expected "
                             f"{sorted(cls.options)}")
    for key, default in cls.options.items():
        value = options[key]
        if not _same_kind(value, default):
            raise UserInputError(f"{config_path} is damaged: option {key}={value!r}")
    sampler = cls(**options)
    sampler.check_options()
    expected = sampler.expected_shapes(sampler.config, latent_dim)
    try:
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except ValueError as e:  # object arrays (pickles) and malformed headers
        raise UserInputError(f"{arrays_path} is damaged or not plain arrays ({e})") from None
    except Exception as e:  # not a zip, truncated, ...
        raise UserInputError(f"{arrays_path} is damaged ({type(e).__name__}: {e})") from None
    if set(arrays) != set(expected):
        raise UserInputError(f"{arrays_path} is damaged: arrays {sorted(arrays)}, expected "
                             f"{sorted(expected)}")
    for key, shape in expected.items():
        array = arrays[key]
        if array.dtype.kind != "f" or tuple(array.shape) != tuple(shape):
            raise UserInputError(f"{arrays_path} is damaged: {key} is {array.dtype} "
                                 f"{array.shape}, expected float {tuple(shape)}")
        if not np.isfinite(array).all():
            raise UserInputError(f"{arrays_path} is damaged: {key} holds non-finite numbers")
    sampler.latent_dim = latent_dim
    sampler.arrays = {k: v.astype("float32") for k, v in arrays.items()}
    sampler.check_arrays(arrays_path)
    fitted_on = meta.get("fitted_on")
    sampler.fitted_on = fitted_on if isinstance(fitted_on, dict) else {}
    sampler.build()
    return sampler


def _same_kind(value, default):
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list) and all(_same_kind(v, default[0]) for v in value)
    return isinstance(value, type(default))
