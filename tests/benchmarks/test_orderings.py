"""The tables' checks of the papers' orderings: each verdict from the means and the spread."""

from benchmarks import disentanglement
from benchmarks import generation
from benchmarks import quality


def score(mean, sd):
    return {"mean": mean, "sd": sd, "text": ""}


def test_disentanglement_orderings_weigh_the_gap_against_the_spread():
    rows = [{"row": "vae", "BetaVAE": score(0.60, 0.02), "SAP": score(0.02, 0.01)},
            {"row": "beta_vae", "BetaVAE": score(0.70, 0.03), "MIG": score(0.05, 0.02)},
            {"row": "beta_tcvae", "MIG": score(0.06, 0.02)},
            {"row": "dip_vae/i", "SAP": score(0.01, None)}]
    found = disentanglement.orderings(rows)
    assert len(found) == 3  # factor_vae, dip_vae/ii and capacity rows are absent: no check
    assert found[0].startswith("beta_vae above vae on BetaVAE by 0.100 (largest sd 0.030)")
    assert found[0].endswith(": holds")
    assert found[1].startswith("beta_tcvae above beta_vae on MIG by 0.010")
    assert found[1].endswith(": holds, within 2 sd")
    assert found[2].startswith("dip_vae/i above vae on SAP by -0.010")
    assert found[2].endswith(": does NOT hold")


def test_quality_orderings_weigh_the_gap_against_the_spread():
    rows = [{"dataset": "mnist", "row": "dense_vae", "iw_nll": 100.0, "iw_nll_sd": 0.3},
            {"dataset": "mnist", "row": "iwae/k5", "iw_nll": 99.0, "iw_nll_sd": 0.2},
            {"dataset": "mnist", "row": "iwae/k50", "iw_nll": 99.2, "iw_nll_sd": None}]
    found = quality.orderings(rows)
    assert found[0] == ("mnist: iwae/k5 below dense_vae by 1.00 nats (largest sd 0.30): holds")
    assert found[1].endswith("iwae/k50 below dense_vae by 0.80 nats (largest sd 0.30): holds")
    assert found[2].endswith("iwae/k50 below iwae/k5 by -0.20 nats (largest sd 0.20): "
                             "does NOT hold")


def test_generation_orderings_weigh_the_gap_against_the_spread():
    def row(model, prior, prior_sd, gmm, gmm_sd):
        return {"dataset": "mnist", "model": model, "prior_fd": prior, "prior_fd_sd": prior_sd,
                "gmm_fd": gmm, "gmm_fd_sd": gmm_sd}

    found = generation.orderings([row("vae", 30.0, 2.0, 20.0, 1.0), row("ae", 30.0, 4.0, 25.0, 1.0),
                                  row("vamp", 20.0, 3.0, 21.0, 1.0),
                                  row("svae", 20.0, None, 21.0, None),
                                  row("dip", 20.0, None, 19.0, None),
                                  row("cvae", 20.0, None, None, None)])
    assert [f["text"] for f in found] == [
        "mnist: vae: gmm below prior by 10.0 FD (largest sd 2.0): holds",
        "mnist: ae: gmm below prior by 5.0 FD (largest sd 4.0): holds, within 2 sd",
        "mnist: vamp: gmm below prior by -1.0 FD (largest sd 3.0): does NOT hold",
        "mnist: svae: gmm below prior by -1.0 FD (one seed): does NOT hold (one seed)",
        "mnist: dip: gmm below prior by 1.0 FD (one seed): holds on one seed"]


def test_generation_rows_of_models_without_a_sampler_show_dashes():
    prior_only = {"sample_fd": 40.0, "sample_precision": 0.5, "sample_recall": 0.4}
    runs = [({"test": {**prior_only, "quality_images": 2000}, "epochs": 20}, None),
            ({"test": {**prior_only, "sample_fd": 44.0, "quality_images": 2000}, "epochs": 20},
             {"wall_minutes": 1.0, "cpu_minutes": 2.0})]
    row = generation.summarise("mnist_sample", "cvae", runs, [generation.ROOT / "r0", "r1"])
    assert (row["prior_fd"], row["prior_fd_text"], row["gmm_fd"]) == (42.0, "42.0 ± 2.8", None)
    assert row["best"] == "prior" and row["run_dirs"] == ["r0", "r1"]
    assert generation.orderings([row]) == []  # no gmm: no check

    class Args:
        quality_images, sampler_steps = 2000, None

    line = generation.table([{**row, "commands": []}], Args()).splitlines()[4]
    assert line.startswith("| mnist_sample | cvae | 2 | 20 | 42.0 ± 2.8 | – | – | – | prior |")
    assert "| 0.500 ± 0.000 / 0.400 ± 0.000 | – | 1.0 | 2.0 |" in line
