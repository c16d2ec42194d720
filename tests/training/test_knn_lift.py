"""Short CPU pretraining of SimCLR and ROT on BreastMNIST 28 px against the same backbone at random init.

The online kNN monitor scores the random-init backbone at step 0 and the pretrained one at the
end, in the same run (same seed, same initial weights). With 78 validation images one image is
1.3 points and the random-init score moves by several points between seeds (random conv features
already sit near the raw-pixel kNN score, 0.846, on this data), so the claim tested is about the
mean over three seeds, not one run.

Measured on this project's shared 2-core CPU box (test_resnet, one thread; random init -> end):
SimCLR seeds 0/1/2: 0.821 -> 0.808, 0.795 -> 0.833, 0.769 -> 0.833 (mean 0.795 -> 0.825, ~1 min
a run). ROT seeds 0/1/2: 0.821 -> 0.756, 0.795 -> 0.795, 0.769 -> 0.769 (no lift): rotation of
these ultrasound images is predictable from the imaging fan (pretext accuracy reaches ~99 %
within 100 steps), a shortcut that does not help the lesion classes. The ROT case is an
expected failure until that changes; it still runs and prints its numbers.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from hfssl.training.pretrain import parse_args, pretrain

COMMON = [
    "--backbone", "test_resnet",
    "--dataset", "breastmnist",
    "--warmup-ratio", "0.05",
    "--weight-decay", "1e-4",
    "--logging-steps", "50",
    "--eval-strategy", "steps",
    "--eval-steps", "50",
    "--save-strategy", "no",
    "--report-to", "none",
]  # fmt: skip
SETTINGS = {
    "simclr": ["--method", "simclr", "--method-kwargs", '{"temperature": 0.5}', "--learning-rate", "3e-3",
               "--per-device-train-batch-size", "128", "--max-steps", "250"],
    "rot": ["--method", "rot", "--learning-rate", "1e-3", "--per-device-train-batch-size", "64", "--max-steps", "150"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    [
        "simclr",
        pytest.param(
            "rot",
            marks=pytest.mark.xfail(
                reason="ROT learns the ultrasound fan orientation (a shortcut); measured no kNN lift",
                strict=False,
            ),
        ),
    ],
)
def test_short_pretraining_lifts_knn_over_random_init(method: str, tmp_path: Path, data_dir: Path) -> None:
    before, after = [], []
    for seed in (0, 1, 2):
        argv = [*COMMON, *SETTINGS[method], "--seed", str(seed), "--output-dir", str(tmp_path / f"s{seed}")]
        result = pretrain(*parse_args(argv))
        evals = result.evaluations
        assert evals[0]["step"] == 0 and evals[-1]["step"] == result.global_step
        before.append(evals[0]["knn_accuracy"])
        after.append(evals[-1]["knn_accuracy"])
    print(f"{method}: kNN accuracy random init {before} -> pretrained {after}")
    assert statistics.mean(after) > statistics.mean(before)
