"""KL weight schedules: a multiplier in [0, 1] on the KL penalty, a function of the model's step.

Read from `ZooModel.steps_trained` (never `optimizer.iterations`: a model with two optimizers, or
one resumed from a checkpoint, must still see the step it has trained for).
"""

import tensorflow as tf

from vae_zoo.config.schema import is_fraction
from vae_zoo.config.schema import length_in_steps
from vae_zoo.errors import UserInputError

KL_SCHEDULES = ("constant", "linear", "cyclical")


class KLSchedule:
    """The KL weight w(t) after t optimizer steps.

    - `constant`: w = 1.
    - `linear` (KL warm-up, Bowman et al. 2016; Sønderby et al. 2016): w rises from 0 at t = 0 to
      1 at t = `steps`, then stays 1.
    - `cyclical` (Fu et al., 2019): `steps` are split into `cycles` equal cycles; in each, w rises
      linearly from 0 over the first `ratio` of the cycle, then stays 1 for the rest. After `steps`
      w = 1. `linear` is the cyclical schedule with one cycle and ratio 1.

    Args:
        kind: str. `"constant"`, `"linear"` or `"cyclical"`.
        steps: int. Length of the warm-up (`linear`) or of all cycles together (`cyclical`), in
            steps. A fraction of the run (a float <= 1, the configs' default) is accepted only
            by a `constant` schedule, which never reads it: `train.py` turns fractions into
            steps when the run starts (`ZooModel.resolve_schedule_lengths`).
        cycles: int. Number of cycles M (`cyclical`).
        ratio: float. Fraction R of each cycle spent rising, in (0, 1] (`cyclical`).
    """

    def __init__(self, kind="constant", steps=10000, cycles=4, ratio=0.5):
        if kind not in KL_SCHEDULES:
            raise UserInputError(
                f"kl_schedule must be one of {', '.join(KL_SCHEDULES)}, got {kind!r}")
        require_steps("kl_schedule_steps", steps, kind != "constant")
        if int(cycles) < 1:
            raise UserInputError(f"kl_cycles must be >= 1, got {cycles}")
        if not 0.0 < ratio <= 1.0:
            raise UserInputError(f"kl_ratio must be in (0, 1], got {ratio}")
        self.kind = kind
        self.steps = steps if is_fraction(steps) else int(steps)
        self.cycles = int(cycles)
        self.ratio = float(ratio)

    def __call__(self, step):
        """w after `step` steps (an int or an integer tensor), as a float32 scalar tensor."""
        if self.kind == "constant":
            return tf.constant(1.0)
        cycles, ratio = (1, 1.0) if self.kind == "linear" else (self.cycles, self.ratio)
        step = tf.cast(step, tf.float64)  # exact for any step count below 2**53
        period = tf.constant(self.steps / cycles, tf.float64)
        one = tf.constant(1.0, tf.float64)
        tau = tf.math.floormod(step, period) / period  # position within the cycle, in [0, 1)
        rising = tf.minimum(one, tau / tf.constant(ratio, tf.float64))
        return tf.cast(tf.where(step < tf.constant(self.steps, tf.float64), rising, one),
                       tf.float32)

    def get_config(self):
        return {"kind": self.kind, "steps": self.steps, "cycles": self.cycles,
                "ratio": self.ratio}


def require_steps(name, length, in_use):
    """Checks a schedule length given to a model: steps, or a fraction of the run when the
    schedule is off. A model built outside `train.py` has no run to take a fraction of."""
    length_in_steps(length, 1)  # a fraction or a whole number of steps
    if in_use and is_fraction(length):
        raise UserInputError(
            f"model.{name}={length} is a fraction of the run, which train.py turns into steps "
            f"when the run starts; a model built by hand needs the steps (e.g. {name}=10000)")
