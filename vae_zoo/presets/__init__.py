"""Pretrained presets: a trained zoo model in one line, offline, with a card that a test holds it to.

    vae_zoo.from_preset("conv_vae_mnist")        a preset shipped in the package (list_presets())
    vae_zoo.from_preset("path/to/folder")        a folder written by save_preset
    vae_zoo.from_preset("hf://user/name")        a Hugging Face Hub repo holding such a folder

A preset is a folder (`vae_zoo/presets/<name>/` for the shipped ones):

    card.yaml          what it is: dataset, the command that trained it, seed, training time and
                       machine, test metrics of the stored weights, the float16 storage change
    config.yaml        the run config it was trained with (`train.py --from-preset` starts from it)
    model.json         the model's Keras config (`keras.saving.serialize_keras_object`)
    weights.npz        every variable in `model.weights` order; float weights stored as float16
    check_images.npz   the fixed test images of the card's `check` ELBO (tests recompute it)
"""

from vae_zoo.presets.folder import PresetFolder
from vae_zoo.presets.saving import save_preset
from vae_zoo.presets.sources import from_preset
from vae_zoo.presets.sources import list_presets
from vae_zoo.presets.sources import resolve_preset
