"""The sample-quality metrics: the Fréchet distance against its closed form, precision/recall on
point sets whose answer is known, and the shipped feature nets on real, blurred and noise images."""

import dataclasses

import numpy as np
import pytest
import scipy.linalg
from scipy.ndimage import gaussian_filter

from vae_zoo.data.idx import read_idx
from vae_zoo.data.sources import fashion_mnist
from vae_zoo.data.sources.arrays import load_npz
from vae_zoo.data.sources.mnist import EMBEDDED_MNIST
from vae_zoo.errors import UserInputError
from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation.feature_nets import load_feature_net
from vae_zoo.evaluation.frechet import frechet_distance
from vae_zoo.evaluation.frechet import frechet_distance_of
from vae_zoo.evaluation.manifold import knn_radii
from vae_zoo.evaluation.manifold import precision_recall
from vae_zoo.evaluation.sample_quality import generation_quality
from vae_zoo.evaluation.sample_quality import sample_quality


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- The Fréchet distance -------------------------------------------------------------------


def test_frechet_distance_of_one_dimensional_gaussians():
    # N(m1, s1^2) and N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)


def test_frechet_distance_of_commuting_covariances():
    # Shared eigenvectors: Tr (S1 S2)^(1/2) = sum sqrt(a_i b_i),
    # so FD = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 4, 6), rng.uniform(0.1, 4, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_the_formula_with_a_matrix_square_root():
    rng = np.random.default_rng(1)
    s1, s2 = random_covariance(rng, 8), random_covariance(rng, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1))


def test_frechet_distance_of_features_estimates_the_gaussians_distance():
    rng = np.random.default_rng(2)
    s1, s2 = random_covariance(rng, 4), random_covariance(rng, 4)
    mu1, mu2 = np.zeros(4), np.full(4, 0.5)
    x1 = rng.multivariate_normal(mu1, s1, size=40000)
    x2 = rng.multivariate_normal(mu2, s2, size=40000)
    expected = frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance_of(x1, x2) == pytest.approx(expected, rel=0.05)


# --- Precision and recall -------------------------------------------------------------------


def grid(offset, side=5):
    return np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) + offset


def test_knn_radii_skip_the_point_itself():
    line = np.arange(10.0)[:, None]
    assert knn_radii(line, k=1) == pytest.approx(np.ones(10))
    # k = 3: the ends' third neighbour is 3 away, the others' 2 (1, 1, 2).
    assert knn_radii(line, k=3) == pytest.approx([3, 2, 2, 2, 2, 2, 2, 2, 2, 3])


def test_precision_and_recall_of_known_point_sets():
    real = np.concatenate([grid(0.0), grid(100.0)])  # two clusters
    same = precision_recall(real, real + 0.1)
    assert same == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(real, real + 1000.0) == {"precision": 0.0, "recall": 0.0}
    # Half the samples on the first cluster, half nowhere near the data: half are realistic,
    # and they cover the first cluster only.
    generated = np.concatenate([grid(0.1), grid(-100.0)])
    assert precision_recall(real, generated) == {"precision": 0.5, "recall": 0.5}
    # Mode collapse: every sample on the first cluster is realistic, half the data is missed.
    assert precision_recall(real, np.concatenate([grid(0.1), grid(0.2)])) == {
        "precision": 1.0, "recall": 0.5}


def test_precision_and_recall_need_more_points_than_k():
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


# --- The shipped feature nets -----------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return load_npz(EMBEDDED_MNIST)


def images(array):
    return array[..., None].astype(np.float32) / 255.0


def test_mnist_feature_net_classifies_as_its_card_says(mnist):
    net = load_feature_net("mnist_sample")
    logits = np.asarray(net.classifier(images(mnist["x_test"][:2000])))
    accuracy = (logits.argmax(1) == mnist["y_test"][:2000]).mean()
    assert accuracy == pytest.approx(net.card["test_accuracy"], abs=0.02)
    assert net.card["feature_dim"] == 128 and net.card["train_images"] == 5000


def test_fashion_mnist_feature_net_classifies_as_its_card_says():
    folder = fashion_mnist._find_idx_folder(None)
    if folder is None:
        pytest.skip("Fashion-MNIST is not installed")
    paths = {key: fashion_mnist._idx_path(folder, stem)
             for key, stem in fashion_mnist.FASHION_MNIST_FILES.items()}
    net = load_feature_net("fashion_mnist")
    x, y = read_idx(paths["x_test"])[:2000], read_idx(paths["y_test"])[:2000]
    accuracy = (np.asarray(net.classifier(images(x))).argmax(1) == y).mean()
    assert accuracy == pytest.approx(net.card["test_accuracy"], abs=0.03)


def test_real_images_score_near_blurred_in_between_noise_far(mnist):
    # 1,000 of each against all 5,000 training digits. Noise's features are a tight cluster:
    # against fewer real images it can fall inside the k-NN ball of one real outlier and count
    # as realistic (precision 0.1 against 1,000 of them; see docs/sample_quality.md).
    n, rng = 1000, np.random.default_rng(0)
    train = images(mnist["x_train"])
    test = images(mnist["x_test"][:n])
    blurred = gaussian_filter(test, sigma=(0, 1, 1, 0))
    noise = rng.uniform(size=test.shape).astype(np.float32)
    real, blur, far = (sample_quality(x, train, "mnist_sample") for x in (test, blurred, noise))
    assert real["fd"] < 0.2 * blur["fd"] and blur["fd"] < 0.5 * far["fd"]
    assert real["fd"] < 0.05 * far["fd"]
    assert real["precision"] > 0.8 and real["recall"] > 0.8
    assert blur["recall"] < 0.3  # blurred digits look like digits but cover little of the data
    assert far["precision"] < 0.02 and far["recall"] == 0.0


def test_sample_quality_refuses_unknown_datasets_and_shapes(mnist):
    with pytest.raises(UserInputError, match="no feature net for dataset 'dsprites'"):
        sample_quality(np.zeros((10, 64, 64, 1)), np.zeros((10, 64, 64, 1)), "dsprites")
    with pytest.raises(UserInputError, match="takes"):
        sample_quality(np.zeros((10, 32, 32, 3)), images(mnist["x_test"][:10]), "mnist")


# --- The registered metric --------------------------------------------------------------------


@dataclasses.dataclass
class _Capabilities:
    conditional: bool = False


class PerfectModel:
    """Samples and reconstructs with real test digits: what a perfect model would give."""

    capabilities = _Capabilities()
    image_shape = (28, 28, 1)

    def __init__(self, pool):
        self.pool = pool

    def sample(self, n, seed=0):
        return self.pool[seed * 500:seed * 500 + n]

    def reconstruct(self, x):
        return x


def test_metric_scores_samples_and_reconstructions(mnist):
    test = images(mnist["x_test"][:300])
    batches = [{"x": test[i:i + 128]} for i in range(0, 300, 128)]
    model = PerfectModel(images(mnist["x_test"][5000:7000]))
    results = generation_quality(model, batches, EvalSettings(dataset="mnist_sample",
                                                              quality_images=400))
    assert results["quality_images"] == 300  # bounded by the test images there are
    assert results["reconstruction_fd"] == pytest.approx(0.0, abs=1e-6)
    assert results["quality_features"] == "mnist_sample classifier (128-d)"
    # Test digits 5,000 on (other writers than the first 5,000) at n = 300: 0.84 and 0.64.
    assert results["sample_precision"] > 0.7 and results["sample_recall"] > 0.5
    noise = PerfectModel(np.random.default_rng(0).uniform(size=(300, 28, 28, 1)))
    worse = generation_quality(noise, batches, EvalSettings(dataset="mnist", quality_images=400))
    assert results["sample_fd"] < 0.2 * worse["sample_fd"]
    assert worse["sample_precision"] < 0.3 and worse["sample_recall"] == 0.0


def test_metric_skips_with_a_note_when_no_feature_net_fits(mnist):
    batches = [{"x": np.zeros((8, 28, 28, 1), np.float32)}]
    model = PerfectModel(None)
    note = generation_quality(model, batches, EvalSettings(dataset="my_digits.npz"))
    assert note == {"sample_quality_skipped":
                    "sample FD, precision and recall skipped: no feature net for my_digits.npz"}
    model.image_shape = (32, 32, 3)
    note = generation_quality(model, batches, EvalSettings(dataset="fashion_mnist"))
    assert "takes other images" in note["sample_quality_skipped"]
    assert generation_quality(model, batches, EvalSettings()) == {}  # no dataset given


def test_sample_counts_out_of_bounds_are_refused(capsys):
    from vae_zoo.commands.evaluate import main
    from vae_zoo.config.schema import EvalConfig

    assert main(["no_run", "--quality-images", "-1"]) == 2
    assert "--quality-images must be in [0, 10000]" in capsys.readouterr().err
    with pytest.raises(UserInputError, match="eval.quality_images must be in"):
        EvalConfig(quality_images=20000).validate()


def test_setup_ships_every_feature_net_file_within_the_budget():
    """setup.py's package_data patterns match every file of every feature net, and the shipped
    weights (presets and feature nets) stay under the package's 20 MB budget."""
    import ast
    import fnmatch
    from pathlib import Path

    from vae_zoo.evaluation.feature_nets import FOLDER
    from vae_zoo.presets.sources import BUILTIN_DIR

    repo = Path(__file__).resolve().parents[2]
    tree = ast.parse((repo / "setup.py").read_text())
    patterns = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and node.targets[0].id == "FEATURE_NET_FILES")
    nets = [d for d in FOLDER.iterdir() if (d / "weights.npz").is_file()]
    assert sorted(d.name for d in nets) == ["fashion_mnist", "mnist_sample"]
    for net in nets:
        for path in net.iterdir():
            assert any(fnmatch.fnmatch(f"{net.name}/{path.name}", p) for p in patterns), path
    weights = [*FOLDER.glob("*/weights.npz"), *BUILTIN_DIR.glob("*/weights.npz")]
    assert sum(p.stat().st_size for p in weights) < 20e6
