"""The tables' checks of the papers' orderings: each verdict from the means and the spread."""

from benchmarks import disentanglement
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
