"""The feature net's architecture, built from code: stored files hold only its weights."""

import keras
from keras import layers

FEATURE_LAYER = "features"
FEATURE_DIM = 128


def build_classifier(image_shape, num_classes, feature_dim=FEATURE_DIM):
    """A small convnet classifier whose penultimate layer (`features`) embeds images.

    Two conv blocks and a dense layer: small enough to train in CPU-minutes and to ship, deep
    enough that its features separate the classes (what makes distances in them meaningful).
    The features are the dense layer's pre-activations: after its ReLU, most units of
    out-of-distribution inputs (noise) are 0 and those inputs collapse onto a point that
    real images' k-NN balls can cover, which makes precision unstable.
    """
    inputs = keras.Input(shape=tuple(image_shape))
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = layers.MaxPooling2D(name="pool1")(h)
    h = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.MaxPooling2D(name="pool2")(h)
    h = layers.Flatten(name="flatten")(h)
    features = layers.Dense(feature_dim, name=FEATURE_LAYER)(h)
    h = layers.ReLU(name="features_relu")(features)
    h = layers.Dropout(0.3, name="dropout")(h)
    logits = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, logits, name="feature_classifier")


def feature_extractor(classifier):
    """The classifier cut at its feature layer: images -> `(n, feature_dim)`."""
    return keras.Model(classifier.input, classifier.get_layer(FEATURE_LAYER).output,
                       name="feature_extractor")
