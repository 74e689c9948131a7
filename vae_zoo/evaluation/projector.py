"""Codes (latent means) in TensorBoard's embedding projector, with an image sprite and label metadata."""

import math
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from vae_zoo.evaluation.images import image_grid
from vae_zoo.evaluation.pictures import save_png

MAX_SPRITE_PIXELS = 8192


def write_projector(log_dir, codes, images, labels=None):
    """Writes `log_dir/` so that TensorBoard's Projector tab shows `codes` (the model's
    representations of `images`) with thumbnails and labels."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    height, width = images.shape[1:3]
    per_side = MAX_SPRITE_PIXELS // max(height, width)
    count = min(len(codes), per_side**2)
    codes, images = codes[:count], images[:count]
    columns = math.ceil(math.sqrt(count))
    save_png(image_grid(images, columns=columns, pad=0), log_dir / "sprite.png")
    with open(log_dir / "metadata.tsv", "w") as f:
        f.write("index\tlabel\n")
        for i in range(count):
            f.write(f"{i}\t{'' if labels is None else int(labels[i])}\n")
    checkpoint = tf.train.Checkpoint(embedding=tf.Variable(np.asarray(codes), name="latent_means"))
    checkpoint.save(str(log_dir / "embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "metadata.tsv"
    embedding.sprite.image_path = "sprite.png"
    embedding.sprite.single_image_dim.extend([width, height])
    projector.visualize_embeddings(str(log_dir), config)
    return count
