import keras
import tensorflow as tf

from vae_zoo.errors import UserInputError


class DiscriminatorTraining:
    """Mixin of a zoo model with a discriminator on its codes z, trained by a second optimizer
    (`discriminator_optimizer`) inside the model's own step.

    One step (`train_step`) takes both gradients from one forward pass, at the same weights: the
    model's loss (`compute_loss`, every tracked term) with respect to every trainable variable
    but the discriminator's, applied with `optimizer`, and the discriminator's loss
    (`discriminator_loss(outputs)`, per example, averaged over the global batch) with respect to
    the discriminator's, applied with `discriminator_optimizer`: a simultaneous update.
    `optimizer_variables` names both, so `.keras` files and step checkpoints hold both states.

    The discriminator works on z only, computes in float32 whatever the precision of the
    networks, and is part of no serving endpoint (export carries what the endpoints read).
    The model calls `add_discriminator` in its constructor, after its latent size is known, and
    puts `discriminator_config()` in its `get_config`.
    """

    def add_discriminator(self, units, outputs, activation, learning_rate, beta_1, beta_2):
        """Builds `self.discriminator`, an MLP on z: Dense layers of `units` (`activation`), then
        `outputs` logits; and keeps its Adam's settings (`learning_rate` None: the model's)."""
        units = [int(u) for u in units]
        if not units or min(units) < 1:
            raise UserInputError(
                f"discriminator_units must be a non-empty list of positive ints, got {units}")
        self.discriminator = keras.Sequential(
            [keras.Input((self.latent_dim,)),
             *[keras.layers.Dense(u, activation=activation, dtype="float32", name=f"hidden_{i}")
               for i, u in enumerate(units)],
             keras.layers.Dense(outputs, dtype="float32", name="logits")],
            name="discriminator")
        self.discriminator_units = units
        self.discriminator_learning_rate = None if learning_rate is None else float(learning_rate)
        self.discriminator_beta_1 = float(beta_1)
        self.discriminator_beta_2 = float(beta_2)

    def discriminator_config(self):
        return {"discriminator_units": self.discriminator_units,
                "discriminator_learning_rate": self.discriminator_learning_rate,
                "discriminator_beta_1": self.discriminator_beta_1,
                "discriminator_beta_2": self.discriminator_beta_2}

    def discriminator_loss(self, outputs):
        """The discriminator's per-example loss, from the outputs of the model's forward pass."""
        raise NotImplementedError

    def make_optimizers(self, learning_rate):
        return {
            **super().make_optimizers(learning_rate),
            "discriminator_optimizer": keras.optimizers.Adam(
                (learning_rate if self.discriminator_learning_rate is None
                 else self.discriminator_learning_rate), beta_1=self.discriminator_beta_1,
                beta_2=self.discriminator_beta_2),
        }

    def optimizer_variables(self):
        discriminator = self.discriminator.trainable_variables
        ids = {id(v) for v in discriminator}
        return {"optimizer": [v for v in self.trainable_variables if id(v) not in ids],
                "discriminator_optimizer": discriminator}

    def train_step(self, data):
        batch = self.as_batch(data)
        with tf.GradientTape(persistent=True) as tape:
            outputs = self(batch, training=True)
            loss = self.compute_loss(x=batch, y_pred=outputs)  # tracks every term
            discriminator_loss = tf.nn.compute_average_loss(self.discriminator_loss(outputs))
            scaled = {"optimizer": self.optimizer.scale_loss(loss),
                      "discriminator_optimizer":
                          self.discriminator_optimizer.scale_loss(discriminator_loss)}
        # Both gradients at the same weights, then each optimizer updates its own variables.
        updates = [(getattr(self, name), tape.gradient(scaled[name], variables), variables)
                   for name, variables in self.optimizer_variables().items()]
        del tape
        for optimizer, gradients, variables in updates:
            optimizer.apply(gradients, variables)
        self.steps_trained.assign_add(1)
        return self.get_metrics_result()
