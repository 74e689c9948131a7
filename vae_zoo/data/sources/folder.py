"""A folder of image files. When every image sits in a subfolder, the subfolders are the classes."""

import numpy as np

from vae_zoo.data.sources.arrays import from_arrays
from vae_zoo.errors import UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def load(folder, config, seed):
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                images.append(image.convert("RGB") if image.mode not in ("L", "RGB") else image.copy())
        except (OSError, ValueError) as e:
            raise UserInputError(f"cannot read image {path}: {e}") from None
    mode = "RGB" if any(im.mode == "RGB" for im in images) else "L"
    sizes = {im.size for im in images}
    if config.image_size is None and len(sizes) > 1:
        (w1, h1), (w2, h2) = sorted(sizes)[:2]
        raise UserInputError(
            f"images in {folder} have different sizes ({h1}x{w1}, {h2}x{w2}, ...); "
            f"choose one with --set data.image_size=[{h1},{w1}]"
        )
    target = None if config.image_size is None else (config.image_size[1], config.image_size[0])
    arrays = []
    for im in images:
        im = im.convert(mode)
        if target is not None and im.size != target:
            im = im.resize(target, Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    found = {"x": np.stack(arrays)}
    classes = sorted({p.relative_to(folder).parts[0] for p in files})
    if all(len(p.relative_to(folder).parts) == 2 for p in files) and len(classes) > 1:
        found["y"] = np.array([classes.index(p.relative_to(folder).parts[0]) for p in files])
    return from_arrays(found, config, seed, f"image folder {folder}")
