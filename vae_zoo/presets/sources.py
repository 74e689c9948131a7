"""Where a preset comes from: a name shipped in the package, a local folder, or `hf://user/name`."""

from pathlib import Path

from vae_zoo.errors import UserInputError
from vae_zoo.presets.folder import PresetFolder

BUILTIN_DIR = Path(__file__).resolve().parent
HUB_PREFIX = "hf://"


def list_presets():
    """Names of the presets shipped in the package, sorted."""
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / PresetFolder.CARD).is_file())


def resolve_preset(preset):
    """The `PresetFolder` of a preset name, folder or `hf://user/name[@revision]`."""
    preset = str(preset)
    if preset.startswith(HUB_PREFIX):
        return PresetFolder(hub_snapshot(preset[len(HUB_PREFIX):]), name=preset).validate()
    if preset in list_presets():
        return PresetFolder(BUILTIN_DIR / preset, name=preset)
    path = Path(preset).expanduser()
    if path.exists() or any(sep in preset for sep in ("/", "\\")) or preset.startswith("."):
        return PresetFolder(path, name=preset).validate()
    raise UserInputError(
        f"unknown preset {preset!r}; known presets: {', '.join(list_presets())} "
        "(or a preset folder, or hf://user/name)")


def from_preset(preset):
    """The trained model of a preset (a `ZooModel`, compiled), offline when it is local or cached.

    Args:
        preset: str. A name from `list_presets()`, a folder written by `save_preset`, or
            `hf://user/name[@revision]` (needs `pip install "vae_zoo[hub]"`; downloads go to
            huggingface_hub's own cache, and `HF_HUB_OFFLINE=1` reads only that cache).
    """
    return resolve_preset(preset).load_model()


def hub_snapshot(repo):
    """The local folder of a Hub model repo, through huggingface_hub's cache."""
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise UserInputError(
            f"{HUB_PREFIX}{repo} needs huggingface_hub: pip install 'vae_zoo[hub]'") from None
    repo_id, _, revision = repo.partition("@")
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision or None))
    except errors.HFValidationError as e:
        raise UserInputError(f"{HUB_PREFIX}{repo} is not a Hub repo id ({e}); "
                             f"use {HUB_PREFIX}user/name") from None
    except errors.IncompleteSnapshotError:
        raise UserInputError(f"{HUB_PREFIX}{repo}: the cached copy is incomplete; download it "
                             "again with network") from None
    except errors.LocalEntryNotFoundError:
        raise UserInputError(
            f"{HUB_PREFIX}{repo} is not in the local Hugging Face cache and the Hub cannot be "
            "reached (or HF_HUB_OFFLINE=1): download it once with network") from None
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as e:
        raise UserInputError(f"{HUB_PREFIX}{repo}: no such model repo or revision on the Hub "
                             f"({type(e).__name__}); private repos need `hf auth login`") from None
