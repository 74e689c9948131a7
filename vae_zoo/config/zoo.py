"""The zoo: every `<name>.yaml` in the zoo_configs folder is a model you can train by name."""

from pathlib import Path

from vae_zoo.config.schema import load_yaml
from vae_zoo.errors import UserInputError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# A wheel carries the configs inside the package; a source checkout has them at the top level.
_CONFIG_DIRS = (_PACKAGE_DIR / "zoo_configs", _PACKAGE_DIR.parent / "zoo_configs")


def config_dir():
    for path in _CONFIG_DIRS:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"no zoo_configs folder in {', '.join(map(str, _CONFIG_DIRS))}")


def available_models():
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def load_zoo_config(name):
    """The raw (unvalidated) config dict of a zoo model."""
    path = config_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UserInputError(
            f"unknown model {name!r}; available models: {', '.join(available_models())}"
        )
    with open(path) as f:
        return load_yaml(f, source=str(path))
