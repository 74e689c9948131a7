"""What a trained model is worth: held-out metrics (one module each) and pictures.

A metric is a function `(model, batches, settings) -> dict` registered with `@register_metric`;
`requires` names the `Capabilities` it needs, so a model without a density is never asked for an
ELBO. Every module here is imported, so a new metric is a new file.
"""

import dataclasses

from vae_zoo.registry import Registry
from vae_zoo.registry import import_submodules

METRICS = Registry("metric")


@dataclasses.dataclass(frozen=True)
class Metric:
    compute: object
    requires: tuple = ()

    def applies_to(self, model):
        return all(getattr(model.capabilities, need) for need in self.requires)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How much held-out work to do.

    Args:
        iw_samples: int. Importance samples per image for the IW NLL (k).
        iw_examples: int or None. Estimate the IW NLL on the first N test images (None: all).
        progress: bool. Show progress bars on long metrics.
        num_examples: int or None. Size of the test split, if known (sizes progress bars).
        iw_precision: str. Dtype policy of the hidden layers for the IW NLL alone: `float32`,
            or `mixed_bfloat16` (faster on CPUs with AVX512-BF16/AMX; see benchmarks/README.md
            for how far it moves the estimate).
        dataset: str or None. The run's `data.dataset`: picks the feature net of the sample
            quality metrics (None: they are not computed).
        quality_images: int. Samples drawn for the Fréchet distance, precision and recall, each
            set against as many test images (0: not computed; see `sample_quality`).
        samplers: tuple of fitted ex-post samplers (`vae_zoo.samplers`) whose samples are
            scored as the prior's are, under `<name>_sample_fd`, `..._precision`, `..._recall`.
    """

    iw_samples: int = 100
    iw_examples: int | None = None
    progress: bool = False
    num_examples: int | None = None
    iw_precision: str = "float32"
    dataset: str | None = None
    quality_images: int = 2000
    samplers: tuple = ()


def register_metric(name, requires=()):
    """Decorator: registers `compute(model, batches, settings) -> dict` as a held-out metric."""

    def add(compute):
        METRICS.register(name)(Metric(compute, tuple(requires)))
        return compute

    return add


def evaluate_metrics(model, batches, settings):
    """Every registered metric that applies to `model`, merged into one dict."""
    results = {}
    for _, metric in METRICS.items():
        if metric.applies_to(model):
            results.update(metric.compute(model, batches, settings))
    return results


import_submodules(__name__, __path__)
