"""Ex-post samplers on a trained run: `python -m vae_zoo.sample` (fit, reuse, pictures, errors)
and `python -m export --sampler`, whose SavedModel, reloaded in a process without vae_zoo, and
TFLite file draw what the sampler draws in process."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vae_zoo.commands import sample as sample_command
from vae_zoo.commands.export import export_run
from vae_zoo.export import as_float32
from vae_zoo.run_folder import RunFolder
from vae_zoo.samplers.codes import sampler_folder
from vae_zoo.samplers.codes import stored_sampler

DRAWS = 2000


def assert_same_distribution(draws, reference, what):
    """Two sets of images drawn independently agree: each pixel's mean within 5 standard
    errors of the difference (784 pixels: a false alarm about once in 2,000 runs, Gaussian
    means), and the total variance (the covariance's trace) within 10%.

    Not the harness's per-pixel spread ratio: on a well-trained model most pixels are near 0
    with rare bright draws, and two sets of 4,000 draws from the same SavedModel differed by
    up to 30% in such a pixel's sd (measured on `ae`, 30 epochs), while the trace agreed to 2%.
    """
    draws = np.asarray(draws, "float64").reshape(len(draws), -1)
    reference = np.asarray(reference, "float64").reshape(len(reference), -1)
    assert draws.shape == reference.shape, what
    error = np.sqrt(draws.var(0) / len(draws) + reference.var(0) / len(reference))
    z = np.abs(draws.mean(0) - reference.mean(0)) / (error + 2e-4)
    assert z.max() < 5, (what, z.max())
    ratio = draws.var(0).sum() / reference.var(0).sum()
    assert abs(ratio - 1) < 0.1, (what, ratio)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A dense_vae trained for 5 epochs on 2,048 embedded digits."""
    from vae_zoo.commands import train

    path = tmp_path_factory.mktemp("samplers") / "run"
    code = train.main(["--model", "dense_vae", "--epochs", "5", "--run-dir", str(path),
                       "--dataset", "mnist_sample", "--set", "data.train_limit=2048",
                       "--set", "data.test_limit=64", "--set", "eval.iw_samples=2",
                       "--set", "eval.iw_examples=8", "--set", "eval.pictures=false"])
    assert code == 0
    return RunFolder(path)


def sample(*args):
    return sample_command.main([str(a) for a in args])


def test_sample_fits_stores_reuses_and_draws_a_picture(run, capsys):
    assert sample(run, "--sampler", "gmm", "--components", "4", "--n", "16") == 0
    out = capsys.readouterr().out
    fitted_codes = int(re.search(r"posterior means of (\d+) training images", out).group(1))
    assert 1800 < fitted_codes <= 2048 and "fitted gmm(components=4" in out
    picture = run.path / "pictures" / "samples_gmm.png"
    from PIL import Image

    with Image.open(picture) as image:  # 4 x 4 digits of 28 pixels and 1-pixel gaps
        assert image.size == (4 * 29 + 1, 4 * 29 + 1)
    stored = json.loads((sampler_folder(run, "gmm") / "sampler.json").read_text())
    assert stored["options"]["components"] == 4 and stored["fitted_on"]["codes"] == fitted_codes

    assert sample(run, "--sampler", "gmm", "--components", "4", "--n", "16") == 0
    assert "using the stored gmm(components=4" in capsys.readouterr().out
    assert sample(run, "--sampler", "gmm", "--components", "4", "--refit", "--seed", "1") == 0
    assert "fitted gmm" in capsys.readouterr().out
    assert json.loads((sampler_folder(run, "gmm") / "sampler.json").read_text())[
        "fitted_on"]["seed"] == 1


def test_trained_samplers_print_their_progress(run, capsys):
    assert sample(run, "--sampler", "maf", "--steps", "50", "--n", "4") == 0
    out = capsys.readouterr().out
    assert out.count("maf: step ") == 5 and "held-out NLL" in out and "Gaussian's" in out
    assert sample(run, "--sampler", "two_stage", "--steps", "50", "--n", "4") == 0
    assert capsys.readouterr().out.count("two_stage: step ") == 5
    assert (run.path / "pictures" / "samples_two_stage.png").is_file()


def test_sample_errors_are_one_line_and_exit_code_2(run, tmp_path, capsys):
    cases = [
        ([tmp_path / "nothing", "--sampler", "gmm"], "holds no model.keras"),
        ([run, "--sampler", "flow"], "unknown sampler 'flow'; known: gmm, maf, normal, two_stage"),
        ([run, "--sampler", "normal", "--components", "3"], "--components does not apply"),
        ([run, "--sampler", "gmm", "--components", "0"], "components=0 is out of"),
        ([run, "--sampler", "gmm", "--n", "0"], "--n must be >= 1"),
    ]
    for args, message in cases:
        assert sample(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)


def test_a_damaged_stored_sampler_is_refused_until_refit(run, capsys):
    folder = sampler_folder(run, "two_stage")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sampler.json").write_text("[1, 2]")
    (folder / "arrays.npz").write_bytes(b"")
    assert sample(run, "--sampler", "two_stage", "--steps", "20", "--n", "4") == 2
    err = capsys.readouterr().err
    assert "sampler.json is damaged: no sampler name (--refit fits it again)" in err, err
    assert sample(run, "--sampler", "two_stage", "--steps", "20", "--n", "4", "--refit") == 0
    assert json.loads((folder / "sampler.json").read_text())["options"]["steps"] == 20


def test_a_model_without_a_continuous_code_is_refused_with_the_models_that_apply(tmp_path, capsys):
    from vae_zoo.testing.harness import build_zoo_model

    folder = RunFolder(tmp_path / "vq")
    folder.save_model(build_zoo_model("vq_vae", (28, 28, 1)))
    assert sample(folder, "--sampler", "gmm") == 2
    err = capsys.readouterr().err
    assert "takes no ex-post sampler: its codes are discrete codebook indices" in err
    applies = set(err.split("samplers apply to ")[1].strip().split(", "))
    assert {"conv_vae", "dense_vae", "ae", "hvae", "vae_iaf"} <= applies
    assert not {"vq_vae", "cvae"} & applies


# Runs in a fresh interpreter that never imports vae_zoo: what TF Serving or a client sees.
RELOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    results, metadata = {}, {}
    for i, folder in enumerate(sys.argv[2:]):
        sample = tf.saved_model.load(folder).signatures["sample"]
        results[str(i)] = sample(n=tf.constant(int(sys.argv[1])))["x_mean"].numpy()
        with open(folder + "/assets.extra/vae_zoo.json") as f:
            metadata[str(i)] = json.load(f)["sample"]
    np.savez("draws.npz", **results)
    assert "vae_zoo" not in sys.modules
    print(json.dumps(metadata))
""")


def reload_samples(folders, cwd, n=DRAWS):
    result = subprocess.run([sys.executable, "-c", RELOAD_SCRIPT, str(n), *map(str, folders)],
                            capture_output=True, text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout.strip().splitlines()[-1])
    with np.load(cwd / "draws.npz") as draws:
        return [draws[str(i)] for i in range(len(folders))], [metadata[str(i)] for i in
                                                              range(len(folders))]


def in_process_samples(run, name, n=DRAWS):
    model = as_float32(run.load_model())  # as exported
    return model.decode(stored_sampler(run, model, name).sample(n, seed=11)).numpy()


def tflite_samples(path, n=DRAWS):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("sample")
    return runner(n=np.array(n, np.int32))["x_mean"]


def test_exported_sample_signature_draws_from_the_baked_in_sampler(run, tmp_path):
    """gmm fitted to the run, and a `normal` sampler written by hand far from the prior (codes
    near 3 * ones), so that a `sample` signature still drawing N(0, I) would fail."""
    assert sample(run, "--sampler", "gmm", "--components", "4", "--n", "4") == 0
    far_normal_sampler(run)

    exports = {name: export_run(run.path, name=name, base_path=tmp_path / "exports",
                                sampler=name, log=lambda _: None)
               for name in ("gmm", "normal")}
    served, metadata = reload_samples(
        [exports["gmm"]["saved_model"], exports["normal"]["saved_model"]], tmp_path)
    assert metadata[0]["sampler"] == "gmm" and metadata[0]["options"]["components"] == 4
    assert metadata[0]["fitted_on"]["codes"] > 1800
    assert metadata[1]["sampler"] == "normal"

    assert_same_distribution(served[0], in_process_samples(run, "gmm"), "SavedModel gmm sample")
    assert_same_distribution(tflite_samples(exports["gmm"]["tflite"]["none"]["path"]),
                             in_process_samples(run, "gmm"), "TFLite gmm sample")
    model = as_float32(run.load_model())
    far_images = model.decode(np.full((1, 16), 3.0, "float32")).numpy()[0]
    for images in (served[1], tflite_samples(exports["normal"]["tflite"]["none"]["path"])):
        assert np.abs(images.mean(0) - far_images).mean() < 0.01
    # ... which the prior's samples are not.
    assert np.abs(model.sample(DRAWS, seed=0).numpy().mean(0) - far_images).mean() > 0.05


@pytest.mark.slow  # 30 s each: an export with TFLite, a fresh process
@pytest.mark.parametrize("name", ["maf", "two_stage"])
def test_trained_samplers_export_to_saved_model_and_tflite(run, tmp_path, name):
    assert sample(run, "--sampler", name, "--steps", "100", "--n", "4", "--refit") == 0
    exported = export_run(run.path, name=name, base_path=tmp_path / "exports", sampler=name,
                          log=lambda _: None)
    assert "sample" in exported["tflite"]["none"]["signatures"]
    expected = in_process_samples(run, name)
    (served,), (metadata,) = reload_samples([exported["saved_model"]], tmp_path)
    assert metadata["sampler"] == name and metadata["options"]["steps"] == 100
    assert_same_distribution(served, expected, f"SavedModel {name} sample")
    assert_same_distribution(tflite_samples(exported["tflite"]["none"]["path"]), expected,
                             f"TFLite {name} sample")


def test_export_sampler_errors(run, tmp_path, capsys):
    from vae_zoo.commands import export

    base = tmp_path / "e"
    assert export.main([str(run.path), "--sampler", "nope", "--base-path", str(base)]) == 2
    assert "unknown sampler 'nope'" in capsys.readouterr().err
    if sampler_folder(run, "maf").exists():
        import shutil

        shutil.rmtree(sampler_folder(run, "maf"))
    assert export.main([str(run.path), "--sampler", "maf", "--base-path", str(base)]) == 2
    err = capsys.readouterr().err
    assert "holds no fitted maf sampler; fit it first with python -m vae_zoo.sample" in err
    assert not base.exists() or not any((base / "dense_vae").glob("*"))


def far_normal_sampler(run, latent_dim=16):
    """A `normal` sampler written by hand, all its codes near 3 * ones: decodes to nearly one
    image, far from the data."""
    far = sampler_folder(run, "normal")
    far.mkdir(parents=True)
    np.savez(far / "arrays.npz", mean=np.full(latent_dim, 3.0, "float32"),
             cholesky=(0.05 * np.eye(latent_dim)).astype("float32"))
    (far / "sampler.json").write_text(json.dumps(
        {"sampler": "normal", "options": {}, "latent_dim": latent_dim, "fitted_on": {}}))


def test_samplers_fitted_one_after_another_share_one_pass_over_the_training_codes(run, tmp_path):
    import shutil

    from vae_zoo.samplers.codes import run_sampler
    from vae_zoo.samplers.codes import shared_training_codes

    copy = RunFolder(shutil.copytree(run.path, tmp_path / "run",
                                     ignore=shutil.ignore_patterns("samplers")))
    model, lines = copy.load_model(), []
    codes = shared_training_codes(copy, model, log=lines.append)
    assert not lines  # nothing computed until a sampler is fitted
    for name in ("normal", "gmm"):
        run_sampler(copy, model, name, lines.append, codes)
    assert [line for line in lines if line.startswith("codes:")] == [
        "codes: the posterior means of 1946 training images of embedded MNIST sample "
        "(16 latents)"]  # 2,048 less the validation split
    assert {p.name for p in (copy.path / "samplers").iterdir()} == {"normal", "gmm"}


def test_evaluate_scores_each_samplers_samples_beside_the_priors(run, tmp_path, capsys):
    import shutil

    from tests.test_train_cli import event_tags
    from vae_zoo.commands import evaluate

    copy = RunFolder(shutil.copytree(run.path, tmp_path / "run",
                                     ignore=shutil.ignore_patterns("samplers")))
    far_normal_sampler(copy)
    config = copy.read_config()
    config["data"]["test_limit"] = 1000  # 64 images leave the FD of 128 features mostly bias
    copy.write_config(config)
    args = [str(copy.path), "-k", "2", "--examples", "8", "--no-pictures", "--quality-images",
            "1000", "--samplers"]
    assert evaluate.main(args + ["gmm", "normal"]) == 0
    out = capsys.readouterr().out
    assert "fitted gmm(components=10" in out and "using the stored normal" in out
    assert "gmm sampler FD" in out and "normal sampler FD" in out
    test = copy.read_metrics()["test"]
    # Nearly one image drawn over and over: far from the test digits, none of them covered.
    # 5 epochs on 2,048 digits: gmm FD 697, precision 0.82; the far sampler's 902 and 0.0.
    assert test["normal_sample_fd"] > 1.15 * test["gmm_sample_fd"]
    assert test["normal_sample_precision"] < 0.1 < 0.5 < test["gmm_sample_precision"]
    tags = event_tags(copy.tensorboard_dir)
    assert {"test/gmm_sample_fd", "test/normal_sample_precision"} <= (tags["scalars"]
                                                                      | tags["tensors"])
    assert (sampler_folder(copy, "gmm") / "arrays.npz").is_file()

    for extra, message in ((["flow"], "unknown sampler 'flow'"),
                           (["gmm", "--quality-images", "0"], "needs --quality-images > 0")):
        assert evaluate.main(args + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
