"""The paired bootstrap of an AUROC difference."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.paired import paired_delta, variant_delta_table


def _record(normal: np.ndarray, defect: np.ndarray) -> dict:
    return {"scores": {"normal": normal.tolist(), "defect": defect.tolist()}}


def test_delta_matches_scikit_learn_and_its_interval_holds_it() -> None:
    rng = np.random.default_rng(1)
    normal, defect = rng.normal(0, 1, 60), rng.normal(1, 1, 50)
    better = _record(normal, defect + 0.8)
    worse = _record(normal, defect)
    labels = np.r_[np.zeros(60), np.ones(50)]
    expected = 100 * (
        roc_auc_score(labels, np.r_[normal, defect + 0.8])
        - roc_auc_score(labels, np.r_[normal, defect])
    )
    found = paired_delta([(better, worse)])
    assert found is not None
    delta, low, high = found
    assert np.isclose(delta, expected) and 0 < low < delta < high
    assert paired_delta([(worse, worse)]) == (0.0, 0.0, 0.0)


def test_pairing_narrows_the_interval_against_unpaired_noise() -> None:
    rng = np.random.default_rng(2)
    normal, defect = rng.normal(0, 1, 40), rng.normal(0.7, 1, 40)
    shifted = _record(normal + rng.normal(0, 0.05, 40), defect + rng.normal(0, 0.05, 40))
    found = paired_delta([(shifted, _record(normal, defect))])
    assert found is not None and found[2] - found[1] < 5.0  # points


def test_runs_on_different_cells_are_not_paired() -> None:
    a = _record(np.zeros(5), np.ones(5))
    b = _record(np.zeros(6), np.ones(5))
    assert paired_delta([(a, b)]) is None
    assert paired_delta([]) is None


def test_variant_table_pairs_each_variant_with_none_of_the_same_seed() -> None:
    rng = np.random.default_rng(3)
    records = []
    for seed in (0, 1):
        normal, defect = rng.normal(0, 1, 30), rng.normal(1, 1, 30)
        for variant, shift in (("none", 0.0), ("cbam", 1.5)):
            record = _record(normal, defect + shift)
            record |= {
                "label": f"mobilenet_v2/{variant}",
                "spec": {"backbone": "mobilenet_v2", "weights": "imagenet",
                         "variant": variant, "cell_type": "mono", "seed": seed},
            }  # fmt: skip
            records.append(record)
    text = variant_delta_table(records, ["mono", "poly"])
    row = next(line for line in text.splitlines() if line.startswith("| mobilenet_v2/cbam − none"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("+") and cells[1].endswith("(n=2)") and cells[2] == "–"
    assert "none − none" not in text
