"""What a model needs to know about its data before it sees any: the shape of x, and y or factors."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The structure of a dataset's examples, from which models are built.

    Every example is a dict with `x` (an image or vector); a labelled source adds `y` (an int
    class label in `[0, num_classes)`), and a ground-truth-factor source adds `factors` (one int
    per factor, each in `[0, factor_sizes[i])`).

    Args:
        image_shape: tuple of ints. Shape of one `x`.
        num_classes: int or None. Number of classes of `y`; None when the source has no labels.
        factor_sizes: tuple of ints or None. Number of values of each ground-truth factor.
        factor_names: tuple of str or None. Their names, in the same order.
        train_size: int or None. Number of training examples, N (minibatch estimators of the
            aggregate posterior q(z) weight by it); `Data` fills it in from its split sizes.
    """

    image_shape: tuple
    num_classes: int | None = None
    factor_sizes: tuple | None = None
    factor_names: tuple | None = None
    train_size: int | None = None

    @property
    def keys(self):
        """The keys of every example dict."""
        return ("x",) + (("y",) if self.num_classes else ()) + (
            ("factors",) if self.factor_sizes else ())


@dataclasses.dataclass
class Data:
    """A loaded dataset: three splits of example dicts, their structure, and where they came from.

    `splits["validation"]` is held out of the training split (model selection never looks at
    `test`). Each split is a `Split`: indices into an `ExampleStore` that holds, reads from disk
    or renders the examples (see `DataSpec`), so that the pipeline reads a batch at a time.

    Args:
        splits: dict `train`/`validation`/`test` -> `Split`.
        spec: the `DataSpec` of every example.
        sizes: dict split -> number of examples.
        source: str. Where the data came from, for logs and metrics.json.
        ground_truth: a `GroundTruthFactors` when the source can render images from factors.
        notes: tuple of str. What loading decided (prepared or reused a cache, held the images
            in memory or streams them), for the console.
    """

    splits: dict
    spec: DataSpec
    sizes: dict
    source: str
    ground_truth: object = None
    notes: tuple = ()

    def __post_init__(self):
        train = self.sizes.get("train")
        if self.spec.train_size is None and train is not None and train > 0:
            self.spec = dataclasses.replace(self.spec, train_size=int(train))

    @property
    def image_shape(self):
        return self.spec.image_shape
