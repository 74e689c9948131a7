"""The three sections of a run config, each a dataclass, and the one way to build them from YAML."""

import dataclasses
import inspect
import re
import types
import typing
from typing import Any

import yaml

from vae_zoo.errors import UserInputError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
ALL_REDUCE_DTYPES = ("float32", "bfloat16")  # train.all_reduce_dtype


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-3` as a string; this loader reads it as the float everyone means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(stream, source="config"):
    """Plain YAML only: tags such as `!!python/object` are refused, never constructed."""
    try:
        return yaml.load(stream, Loader=_Loader)
    except yaml.YAMLError as e:
        problem = str(e).splitlines()[0]
        raise UserInputError(f"{source} is not valid plain YAML: {problem}") from None


def is_fraction(length):
    """True for a schedule length that is a fraction of the run: a float <= 1 (see
    `ZooModel.resolve_schedule_lengths`)."""
    return isinstance(length, float) and length <= 1.0


def length_in_steps(length, run_steps):
    """A schedule length in optimizer steps: `length` of `run_steps` when it is a fraction
    (at least 1 step), else `length` itself. Refuses a length that is neither."""
    if isinstance(length, bool) or not isinstance(length, (int, float)) or not length > 0 or (
            not is_fraction(length) and length != int(length)):
        raise UserInputError(f"a schedule length must be a fraction of the run in (0, 1] (e.g. "
                             f"0.5) or a whole number of steps (e.g. 10000), got {length!r}")
    return max(1, round(length * run_steps)) if is_fraction(length) else int(length)


@dataclasses.dataclass
class ModelConfig:
    """Which class to build and its constructor arguments (all but those taken from the data)."""

    name: str
    class_name: str
    args: dict = dataclasses.field(default_factory=dict)

    def model_class(self):
        from vae_zoo.models import MODELS

        if self.class_name not in MODELS:
            raise UserInputError(
                f"model {self.name!r}: unknown class_name {self.class_name!r}; "
                f"known classes: {', '.join(MODELS.names())}"
            )
        return MODELS.get(self.class_name)

    def valid_args(self):
        """Constructor arguments of the class and its bases, without those taken from the data."""
        from vae_zoo.models import ZooModel

        names = set()
        for cls in self.model_class().__mro__:
            if issubclass(cls, ZooModel):  # the zoo's classes, not keras.Model's arguments
                names |= set(inspect.signature(cls.__init__).parameters)
        return sorted(names - {"self", "kwargs", *self.model_class().data_arguments})

    def validate(self):
        valid = self.valid_args()
        unknown = sorted(set(self.args) - set(valid))
        if unknown:
            raise UserInputError(
                f"unknown config key(s) model.{', model.'.join(unknown)}; "
                f"valid model keys: {', '.join(valid)}"
            )

    def build(self, data_spec, precision="float32"):
        """Builds the Keras model for a dataset's `DataSpec`, its hidden layers in `precision`."""
        return self.model_class().from_data_spec(
            data_spec, name=self.name, dtype=precision, **self.args
        )


@dataclasses.dataclass
class DataConfig:
    """Where images come from and how they are batched.

    `dataset` is a dataset name (mnist, mnist_sample, fashion_mnist, any TFDS image dataset), a
    folder of images, or a `.npz`/`.npy` file.

    Images that are not readable by index as they are (a folder of files, a compressed array
    file, a TFDS split) are prepared once into uint8 records in `cache_dir` (default
    `$VAE_ZOO_CACHE` or `~/.cache/vae_zoo`), which later runs reuse. Training holds the images
    in memory (as uint8) when they fit `memory_budget_mb`, and otherwise reads them from disk a
    batch at a time, so memory does not grow with the dataset. `skip_unreadable` skips (and
    counts, on the console) image files that cannot be decoded instead of refusing the folder.
    `shuffle_buffer` is accepted for older configs and unused: every epoch is a full
    permutation of the training split.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    batch_size: int = 128
    binarize: bool = False
    image_size: list[int] | None = None
    test_fraction: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None
    shuffle_buffer: int = 10000
    memory_budget_mb: float = 256.0
    cache_dir: str | None = None
    skip_unreadable: bool = False

    def validate(self):
        if self.memory_budget_mb < 0:
            raise UserInputError(
                f"data.memory_budget_mb must be >= 0 (0 streams every dataset from disk), got "
                f"{self.memory_budget_mb}")
        if self.batch_size < 1:
            raise UserInputError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.test_fraction < 1.0:
            raise UserInputError(f"data.test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.image_size is not None and (
            len(self.image_size) != 2 or min(self.image_size) < 1
        ):
            raise UserInputError(
                f"data.image_size must be [height, width], got {self.image_size}"
            )
        for key in ("train_limit", "test_limit"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise UserInputError(f"data.{key} must be >= 1, got {getattr(self, key)}")


@dataclasses.dataclass
class TrainConfig:
    """How to optimise, on what devices, in what precision, and how often to log and checkpoint.

    `checkpoint_every` saves a step checkpoint every so many steps, from which an interrupted run
    resumes exactly; an epoch end saves one too when the last is `checkpoint_seconds` old (0:
    every epoch end), and the end of training always does. `image_every` writes the TensorBoard
    pictures every so many epochs (default: about ten times in a run, and after the last epoch). `deterministic` turns on TensorFlow's op
    determinism, so that a resumed run ends with bit-identical weights (slower on some ops).
    `cluster_timeout` bounds how long a multi-worker run waits for all of its workers to start.
    `from_preset` names a preset (`vae_zoo.list_presets()`, a preset folder or `hf://user/name`)
    whose weights the model starts from (fine-tuning; `train.py --from-preset`).

    `precision` is the Keras dtype policy of the hidden layers: `mixed_bfloat16` for CPUs with
    AVX512-BF16 or AMX and for TPUs and Ampere+ GPUs, `mixed_float16` (with loss scaling) for
    older GPUs. The latent head, p(x|z) and the loss are float32 in every mode. `auto` (the
    default) chooses `mixed_bfloat16` or `float32` for the hardware when the run starts
    (`vae_zoo.training.precision`), and the run's config.yaml records the choice: bfloat16
    trained conv_vae to the same IW NLL as float32 within the seed-to-seed spread
    (`benchmarks/quality.py`), at 1.4x the images per CPU-second on AVX512-BF16.

    A model that trains in two stages (`Capabilities.stages`: a learned prior after the
    autoencoder) trains `epochs` epochs of the first and then `prior_epochs` of the second, in
    the same run; other models ignore `prior_epochs`.

    `profile_steps: [first, last]` takes a TensorFlow profiler trace of global training steps
    `first` to `last` (counted from 0 over the whole run, both included) on every worker, into
    `profile_dir/worker<rank>` (default `profile_dir`: the run folder's `profile/`; every
    worker, the chief's temporary-folder peers included, writes there, each its own
    subfolder). Read it with TensorBoard's profile plugin (`tensorboard --logdir
    <run>/profile`, with `tensorboard-plugin-profile` installed) or
    `python benchmarks/multi_worker.py --profile`. Off by default: a trace slows the steps it
    covers and writes several MB per worker.

    `all_reduce_dtype: bfloat16` sums the gradients across workers or devices in bfloat16:
    half the bytes on the network, each gradient rounded to 8 bits of mantissa
    (`vae_zoo.distribute.compression`); `float32` (the default) sums them exactly.
    """

    epochs: int = 30
    prior_epochs: int = 10
    learning_rate: float = 1e-3
    seed: int = 0
    strategy: str = "auto"
    jit_compile: Any = "auto"
    precision: str = "auto"
    image_every: int | None = None
    checkpoint_every: int | None = 500
    checkpoint_seconds: float = 60.0
    deterministic: bool = False
    cluster_timeout: float = 300.0
    from_preset: str | None = None
    profile_steps: list[int] | None = None
    profile_dir: str | None = None
    all_reduce_dtype: str = "float32"

    def validate(self):
        if self.epochs < 1:
            raise UserInputError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.prior_epochs < 1:
            raise UserInputError(f"train.prior_epochs must be >= 1, got {self.prior_epochs}")
        if not self.learning_rate > 0:
            raise UserInputError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        if self.strategy not in STRATEGIES:
            raise UserInputError(
                f"train.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.jit_compile not in ("auto", True, False):
            raise UserInputError(
                f"train.jit_compile must be auto, true or false, got {self.jit_compile!r}"
            )
        if self.all_reduce_dtype not in ALL_REDUCE_DTYPES:
            raise UserInputError(f"train.all_reduce_dtype must be one of "
                                 f"{', '.join(ALL_REDUCE_DTYPES)}, got {self.all_reduce_dtype!r}")
        if self.precision not in PRECISIONS:
            raise UserInputError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.image_every is not None and self.image_every < 1:
            raise UserInputError(f"train.image_every must be >= 1, got {self.image_every}")
        if not self.cluster_timeout > 0:
            raise UserInputError(
                f"train.cluster_timeout must be > 0 seconds, got {self.cluster_timeout}")
        if not self.checkpoint_seconds >= 0:
            raise UserInputError(
                f"train.checkpoint_seconds must be >= 0, got {self.checkpoint_seconds}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise UserInputError(
                f"train.checkpoint_every must be >= 1 (or null: epoch ends only), "
                f"got {self.checkpoint_every}")
        window = self.profile_steps
        if window is not None and (len(window) != 2 or not 0 <= window[0] <= window[1]):
            raise UserInputError(
                f"train.profile_steps must be [first, last] global steps with 0 <= first <= last, "
                f"got {self.profile_steps}")


QUALITY_IMAGES = 500  # the end-of-training sample FD: about 1 s on 2 busy cores (evaluate.py: 2000)
MAX_QUALITY_IMAGES = 10000  # the k-NN step of precision/recall is quadratic in it


@dataclasses.dataclass
class EvalConfig:
    """The held-out evaluation at the end of training (`python evaluate.py` for more).

    The importance-weighted NLL costs k decoder passes per image: k = 5000 (the IWAE paper's) on
    the full MNIST test set takes about an hour on 2 CPU cores, so training ends with a cheaper one.
    `quality_images` samples are scored against as many test images (Fréchet distance,
    precision, recall in the zoo's feature net of the dataset, where it ships one; 0: none).
    """

    iw_samples: int = 100
    iw_examples: int | None = 1000
    pictures: bool = True
    quality_images: int = QUALITY_IMAGES

    def validate(self):
        if self.iw_samples < 1:
            raise UserInputError(f"eval.iw_samples must be >= 1, got {self.iw_samples}")
        if self.iw_examples is not None and self.iw_examples < 1:
            raise UserInputError(f"eval.iw_examples must be >= 1, got {self.iw_examples}")
        if not 0 <= self.quality_images <= MAX_QUALITY_IMAGES:
            raise UserInputError(f"eval.quality_images must be in [0, {MAX_QUALITY_IMAGES}] (0: "
                                 f"no sample FD), got {self.quality_images}")


SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


@dataclasses.dataclass
class RunConfig:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    @classmethod
    def from_dict(cls, raw, source="config"):
        """Validates a plain dict (as read from YAML) into a RunConfig."""
        if not isinstance(raw, dict):
            raise UserInputError(f"{source}: expected a mapping with model, data, train sections")
        unknown = sorted(set(raw) - {"model", *SECTIONS})
        if unknown:
            raise UserInputError(
                f"{source}: unknown section(s) {', '.join(unknown)}; "
                f"valid: model, {', '.join(SECTIONS)}"
            )
        model_raw = dict(raw.get("model") or {})
        for key in ("name", "class_name"):
            if key not in model_raw:
                raise UserInputError(f"{source}: model.{key} is required")
        model = ModelConfig(
            name=model_raw.pop("name"), class_name=model_raw.pop("class_name"), args=model_raw
        )
        model.validate()
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = dict(raw.get(name) or {})
            fields = {f.name: f for f in dataclasses.fields(section_cls)}
            unknown = sorted(set(values) - set(fields))
            if unknown:
                raise UserInputError(
                    f"unknown config key(s) {name}.{f', {name}.'.join(unknown)}; "
                    f"valid {name} keys: {', '.join(fields)}"
                )
            for key, value in values.items():
                values[key] = _check_type(f"{name}.{key}", value, fields[key])
            sections[name] = section_cls(**values)
            sections[name].validate()
        return cls(model=model, **sections)

    def with_precision(self, precision):
        """A copy that trains in `precision` (e.g. what `train.precision: auto` chose)."""
        return dataclasses.replace(self, train=dataclasses.replace(self.train, precision=precision))

    def with_schedule_lengths(self, stage_steps):
        """`(config, warnings)`: a copy whose model arguments give every schedule length in
        optimizer steps (fractions of the run resolved against `stage_steps`, the training steps
        of each stage), and a line for each schedule that cannot finish within the run
        (`ZooModel.resolve_schedule_lengths`)."""
        args, warnings = self.model.model_class().resolve_schedule_lengths(self.model.args,
                                                                           stage_steps)
        return dataclasses.replace(self, model=dataclasses.replace(self.model, args=args)), warnings

    def with_recorded_schedule_lengths(self, recorded):
        """A copy whose schedule lengths given as fractions of the run (or left out) take the
        steps that `recorded`, a run's config.yaml, resolved them to: the command that started
        a run is then recognised as that run's."""
        args = dict(self.model.args)
        for name in self.model.model_class().schedule_lengths:
            model = (recorded or {}).get("model")
            steps = model.get(name) if isinstance(model, dict) else None
            if isinstance(steps, int) and not isinstance(steps, bool) and (
                    name not in args or is_fraction(args[name])):
                args[name] = steps
        return dataclasses.replace(self, model=dataclasses.replace(self.model, args=args))

    def to_dict(self):
        return {
            "model": {"name": self.model.name, "class_name": self.model.class_name,
                      **self.model.args},
            **{name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS},
        }


def _check_type(key, value, field):
    """Checks a YAML value against the field's annotation, accepting ints where floats are due."""
    expected = field.type
    if expected is Any:
        return value
    args = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
    if value is None and type(None) in args:
        return None
    for option in args:
        item_type = typing.get_args(option)[0] if typing.get_origin(option) is list else None
        if item_type is not None and isinstance(value, list):
            if all(_is_instance(v, item_type) for v in value):
                return value
        elif option is float and _is_instance(value, int):
            return float(value)
        elif option is not type(None) and _is_instance(value, option):
            return value
    raise UserInputError(
        f"config key {key} must be of type {_type_name(expected)}, got {value!r}"
    )


def _is_instance(value, cls):
    # YAML's true/false are bools, and bool is an int subclass: never accept one for the other.
    return isinstance(value, cls) and (cls is bool or not isinstance(value, bool))


def _type_name(annotation):
    return getattr(annotation, "__name__", str(annotation))


def apply_overrides(raw, overrides):
    """Applies `section.key=value` strings (values parsed as YAML) to a raw config dict."""
    raw = {section: dict(values or {}) for section, values in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UserInputError(
                f"--set expects section.key=value (e.g. train.epochs=5), got {item!r}"
            )
        if section not in ("model", *SECTIONS):
            raise UserInputError(
                f"--set {item!r}: unknown section {section!r}; valid: model, {', '.join(SECTIONS)}"
            )
        try:
            value = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            raise UserInputError(f"--set {item!r}: the value is not valid YAML") from None
        raw.setdefault(section, {})[name] = value
    return raw
