"""Presets: every shipped preset against its card, the folder round trip, the Hub cache read
offline, fine-tuning and export from a preset, and bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import vae_zoo
from vae_zoo.errors import UserInputError
from vae_zoo.presets import PresetFolder
from vae_zoo.presets.card import check_elbo
from vae_zoo.presets.card import check_tolerance
from vae_zoo.presets.sources import BUILTIN_DIR

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("conv_vae_mnist", "beta_vae_mnist", "conv_vae_fashion_mnist", "beta_vae_fashion_mnist")


@pytest.fixture(scope="module")
def small_preset(tmp_path_factory):
    """A small untrained conv VAE saved as a preset without a run config: `(model, folder)`."""
    model = vae_zoo.VAE((28, 28, 1), latent_dim=3, filters=[4, 8], hidden_units=[16])
    model.steps_trained.assign(7)
    before = model.get_weights()
    folder = tmp_path_factory.mktemp("presets") / "small"
    vae_zoo.save_preset(model, folder, card={"description": "test"}, log=lambda *a: None)
    for a, b in zip(before, model.get_weights()):  # the caller's model keeps its own weights
        np.testing.assert_array_equal(a, b)
    return model, folder


def test_the_issue_presets_ship():
    assert set(SHIPPED) <= set(vae_zoo.list_presets())


@pytest.mark.parametrize("name", vae_zoo.list_presets())
def test_preset_matches_its_card(name):
    """The card's check ELBO, recomputed from the stored weights on the stored check images, is
    within 4 sd of the difference of two independent Monte Carlo estimates (see CHECK_SIGMAS):
    a card cannot drift from its weights."""
    preset = PresetFolder(BUILTIN_DIR / name)
    card = preset.read_card()
    model = vae_zoo.from_preset(name)
    assert model.sample(4).shape == (4, *card["model"]["image_shape"])
    check = preset.read_check()
    assert len(check["x"]) == card["check"]["images"]
    recomputed = check_elbo(model, check, draws=card["check"]["draws"], seed=card["check"]["seed"] + 1)
    assert abs(recomputed["elbo"] - card["check"]["elbo"]) <= check_tolerance(card["check"]), (
        recomputed, card["check"])
    # The card lists what the issue asks for.
    for key in ("dataset", "command", "train_command", "training", "test", "float16_storage"):
        assert key in card, key
    for key in ("elbo", "iw_nll", "iw_samples", "iw_examples", "active_units"):
        assert key in card["test"], key
    command = card["train_command"].split()
    assert card["training"]["seed"] == int(command[command.index("--seed") + 1])
    assert card["training"]["train_seconds"] > 0


def test_shipped_weights_fit_the_budget():
    total = sum((BUILTIN_DIR / n / PresetFolder.WEIGHTS).stat().st_size for n in vae_zoo.list_presets())
    assert total < 20e6


def test_setup_ships_every_preset_file():
    """setup.py's package_data patterns match every file of every preset folder."""
    import ast
    import fnmatch

    tree = ast.parse((REPO / "setup.py").read_text())
    patterns = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and node.targets[0].id == "PRESET_FILES")
    for name in vae_zoo.list_presets():
        for path in (BUILTIN_DIR / name).iterdir():
            relative = f"{name}/{path.name}"
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_round_trip_gives_float16_rounded_weights(small_preset):
    model, folder = small_preset
    loaded = vae_zoo.from_preset(str(folder))
    assert type(loaded) is type(model) and loaded.latent_dim == 3
    for original, restored in zip(model.weights, loaded.weights):
        expected = np.asarray(original)
        if np.issubdtype(expected.dtype, np.floating):
            expected = expected.astype(np.float16).astype(expected.dtype)
        np.testing.assert_array_equal(np.asarray(restored), expected)
    assert int(loaded.steps_trained.numpy()) == 7
    card = PresetFolder(folder).read_card()
    assert card["description"] == "test" and card["weights"]["storage"] == "float16"
    assert not (folder / PresetFolder.CONFIG).exists()  # a bare model has no run config


def test_save_refuses_to_overwrite_unless_asked(small_preset, tmp_path):
    model, folder = small_preset
    with pytest.raises(UserInputError, match="holds a preset already; pass overwrite=True"):
        vae_zoo.save_preset(model, folder, log=lambda *a: None)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="holds no preset; choose another folder"):
        vae_zoo.save_preset(model, tmp_path, overwrite=True, log=lambda *a: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_check_elbo_mc_sd_on_a_known_case():
    """Per-image ELBOs that are constant across draws have no Monte Carlo sd, whatever they are."""

    class Fixed:
        def __call__(self, batch, training=False):
            return {}

        def loss_terms(self, batch, outputs):
            return {"elbo": batch["x"][:, 0] * 10.0}

    check = check_elbo(Fixed(), {"x": np.array([[1.0], [2.0], [3.0]], "float32")}, draws=3)
    assert check["elbo"] == pytest.approx(20.0) and check["elbo_mc_sd"] == 0.0


def test_bad_input_gets_one_line(small_preset, tmp_path):
    _, folder = small_preset
    with pytest.raises(UserInputError, match=r"unknown preset 'conv_vae_mnst'; known presets: .*"
                                             r"conv_vae_mnist"):
        vae_zoo.from_preset("conv_vae_mnst")
    with pytest.raises(UserInputError, match="is not a vae_zoo preset \\(no card.yaml"):
        vae_zoo.from_preset(str(tmp_path))
    # Weights of another config: latent_dim 4 instead of 3.
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    config = json.loads((mixed / "model.json").read_text())
    config["config"]["latent_dim"] = 4
    (mixed / "model.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match="has shape .* the weights do not match the model's"):
        vae_zoo.from_preset(str(mixed))
    (mixed / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="cannot read .*weights.npz .*damaged"):
        vae_zoo.from_preset(str(mixed))
    (mixed / "model.json").write_text('{"class_name": "Nope", "config": {}}')
    with pytest.raises(UserInputError, match="model.json does not describe a vae_zoo model"):
        vae_zoo.from_preset(str(mixed))


def test_commands_refuse_bad_presets_with_one_line_and_exit_2(capsys, small_preset, tmp_path):
    from vae_zoo.commands import export
    from vae_zoo.commands import train

    out = tmp_path / "out"
    images = tmp_path / "rgb.npz"
    np.savez(images, x=np.zeros((20, 32, 32, 3), np.uint8))
    cases = {
        "error: conv_vae_mnst holds no model.keras (not a run folder that train.py finished) "
        "and is not a preset; known presets: beta_tcvae_dsprites, beta_vae_fashion_mnist": lambda: export.main(
            ["conv_vae_mnst", "--base-path", str(out)]),
        "error: unknown preset 'conv_vae_mnst'": lambda: train.main(
            ["--from-preset", "conv_vae_mnst", "--run-dir", str(out)]),
        "is a conv_vae model, not --model beta_vae": lambda: train.main(
            ["--from-preset", "conv_vae_mnist", "--model", "beta_vae", "--run-dir", str(out)]),
        "was saved without a run config and cannot be fine-tuned": lambda: train.main(
            ["--from-preset", str(small_preset[1]), "--run-dir", str(out)]),
        "takes images of shape (28, 28, 1), the data has (32, 32, 3)": lambda: train.main(
            ["--from-preset", "conv_vae_mnist", "--dataset", str(images), "--run-dir", str(out)]),
    }
    for message, command in cases.items():
        assert command() == 2, message
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and message in errors[0], (message, errors)
    assert not out.exists()


@pytest.mark.slow
def test_fine_tuning_starts_from_the_preset_weights(tmp_path):
    """Two steps at a tiny learning rate leave the weights at the preset's, the step counter
    continues from it, and the run's config names the preset; the run saves as a preset."""
    from vae_zoo.commands import train

    run = tmp_path / "run"
    code = train.main(["--from-preset", "conv_vae_mnist", "--epochs", "1", "--batch-size", "64",
                       "--run-dir", str(run), "--set", "train.learning_rate=1e-9",
                       "--set", "data.train_limit=128", "--set", "data.test_limit=64",
                       "--set", "eval.iw_samples=2", "--set", "eval.iw_examples=8",
                       "--set", "eval.pictures=false"])
    assert code == 0
    preset = vae_zoo.from_preset("conv_vae_mnist")
    tuned = vae_zoo.RunFolder(run).load_model()
    assert int(tuned.steps_trained.numpy()) == int(preset.steps_trained.numpy()) + 2
    for a, b in zip(preset.trainable_weights, tuned.trainable_weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["from_preset"] == "conv_vae_mnist" and config["model"]["name"] == "conv_vae"

    # The finished run saved as a preset: the card measured on the run's test split (64 images).
    folder = vae_zoo.save_preset(run, tmp_path / "tuned", card={"description": "tuned"},
                                 log=lambda *a: None)
    card = folder.read_card()
    assert card["sizes"]["test"] == 64 and card["check"]["images"] == 64
    assert card["test"]["iw_samples"] == 2 and card["training"]["epochs"] == 1
    assert abs(card["float16_storage"]["elbo_change_nats"]) < 0.05
    assert folder.read_check()["x"].shape == (64, 28, 28, 1)
    assert folder.read_config()["train"]["from_preset"] == "conv_vae_mnist"
    reloaded = vae_zoo.from_preset(str(folder.path))
    again = check_elbo(reloaded, folder.read_check(), draws=4, seed=1)
    assert abs(again["elbo"] - card["check"]["elbo"]) <= check_tolerance(card["check"])


def test_export_writes_a_saved_model_of_a_preset(tmp_path):
    from vae_zoo.commands.export import export_run

    result = export_run("conv_vae_mnist", base_path=tmp_path, quantize=(), log=lambda *a: None)
    assert Path(result["saved_model"]) == tmp_path / "conv_vae_mnist" / "1"
    assert (Path(result["saved_model"]) / "saved_model.pb").is_file()


@pytest.mark.slow
def test_hub_id_loads_from_a_prefilled_cache_offline(small_preset, tmp_path):
    """`hf://user/name` through huggingface_hub, in a fresh process with HF_HUB_OFFLINE=1 and
    HF_HOME at a cache laid out as huggingface_hub writes it (refs/main -> snapshots/<commit>)."""
    pytest.importorskip("huggingface_hub")
    model, folder = small_preset
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--someone--small-vae"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    script = (
        "import vae_zoo\n"
        "m = vae_zoo.from_preset('hf://someone/small-vae')\n"
        "print(m.latent_dim, int(m.steps_trained.numpy()))\n"
        "for bad in ('hf://someone/absent', 'hf://not a repo'):\n"
        "    try:\n"
        "        vae_zoo.from_preset(bad)\n"
        "    except vae_zoo.UserInputError as e:\n"
        "        print(e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "3 7"
    assert "hf://someone/absent is not in the local Hugging Face cache" in lines[1]
    assert "hf://not a repo is not a Hub repo id" in lines[2]
