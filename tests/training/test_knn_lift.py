"""Short CPU pretraining of SimCLR and ROT on BreastMNIST 28 px against the same backbone at random init.

The online kNN monitor scores the random-init backbone at step 0 and the pretrained one at the
end, in the same run (same seed, same initial weights). With 78 validation images one image is
1.3 points and the random-init score moves by several points between seeds (random conv features
already sit near the raw-pixel kNN score, 0.846, on this data), so the claim tested is about the
mean over three seeds, not one run. The monitor centres the embeddings on the memory bank's mean
(CL2N, the default); centring lowers the random-init score, so the pretrained score must also
beat the random-init backbone scored *without* centring (the solo-learn / DINO monitor).

Measured on this project's shared 2-core CPU box (test_resnet, one thread; kNN accuracy on the
78 validation images, per seed 0/1/2, random init -> pretrained, centred monitor; random init
un-centred in brackets). Each run takes 15-65 s here (150 ROT / 250 SimCLR steps: well under
2 minutes unloaded, where 500 ROT steps took 41 s):

* SimCLR: 0.795 -> 0.859, 0.782 -> 0.846, 0.718 -> 0.859; mean 0.765 -> 0.855 (0.795).
* ROT (defaults: random resized crop + flip before the rotation): 0.795 -> 0.833,
  0.782 -> 0.859, 0.718 -> 0.846; mean 0.765 -> 0.846 (0.795).

What did not lift, for the record (means over seeds 0/1/2, 150 steps; see ``hfssl/pretext/rot.py``
and ``hfssl/training/monitor.py``): ROT without augmentation scored 0.773 un-centred (0.812
centred) against 0.795 at random init - the pretext accuracy reaches ~99 % within 100 steps from
the global top-bright/bottom-dark layout of the ultrasound images, and the shared "upright"
response dominates cosine similarity; crop area >= 0.2 + flip 0.782; the reference code's mild
augmentation (zoom 0.85-1.15, brightness/contrast) 0.761; all four rotations per batch 0.765;
a two-layer head 0.795 (all un-centred). Scored un-centred, the pretrained backbones of this
test reach 0.825 (SimCLR) and 0.791 (ROT): for ROT the lift shows only once the component every
embedding shares is removed (``hfssl/training/monitor.py`` explains why the monitor centres).

VICReg, Barlow Twins and DINO get SimCLR's budget (test_resnet, 250 steps, batch 128, warm-up
0.05, weight decay 1e-4, seeds 0/1/2) and must lift at least as much as SimCLR; distill (teacher:
the seed's SimCLR backbone) must reach 90 % of its teachers' mean. Measured on 2026-12-02 on an
Intel Xeon (``benchmarks/knn_lift.py``, command line, two runs at a time, one thread each;
``benchmarks/results/knn_lift.jsonl``) with every method at SimCLR's lr 3e-3 and its defaults,
random init -> pretrained per seed 0/1/2:

* SimCLR: 0.795 -> 0.833, 0.782 -> 0.846, 0.718 -> 0.872; mean lift +0.085.
* VICReg: 0.795 -> 0.808, 0.782 -> 0.821, 0.718 -> 0.756; mean lift +0.030 (below SimCLR's).
* Barlow Twins: 0.795 -> 0.846, 0.782 -> 0.833, 0.718 -> 0.808; mean lift +0.064 (below).
* DINO: 0.795 -> 0.821, 0.782 -> 0.795, 0.718 -> 0.846; mean lift +0.056 (below; the monitor
  then scored DINO's student, not the exported teacher).
* distill: 0.872, 0.910, 0.859 (mean 0.880) vs its teachers 0.833, 0.846, 0.872 (mean 0.850):
  103.5 % of the teacher.

Since 2026-12-05 each method has its own lr and head / method settings (``SETTINGS`` / ``FINAL``
in ``benchmarks/knn_lift.py``, which this test reads), chosen on tuning seeds 10/11 (SimCLR there:
+0.083): VICReg a 512-wide expander (+0.103; with the 2048 default a run took 4-5x SimCLR's
time on the Intel box), Barlow Twins a 512-wide projector with lambda 2e-2 (+0.090), DINO teacher
momentum 0.99 and lr 1e-3, in fp32 (+0.077; at lr 3e-3 in bf16, then the trainer's default on this
CPU, the loss became NaN at step 3 / 6: its wrong bf16 conv2d gradients, now probed) and then a constant teacher temperature 0.02 (+0.083, tied
with SimCLR; 0.04: +0.058; 0.02 with momentum 0.98: +0.071): the logits are cosines, and at the
default 0.04 -> 0.07 the teacher's entropy stayed at 7.3-7.5 of log(2048) = 7.6 (near-uniform
targets), at 0.04 6.8-7.1, at 0.02 1.2-3.2; the monitor now scores the exported encoder (DINO's
teacher). Final runs, AMD EPYC (bf16, DINO fp32), one run at a time, one thread, on a box shared
with other jobs, 2026-12-05, random init -> pretrained per seed 0/1/2:

* SimCLR: 0.795 -> 0.833, 0.769 -> 0.846, 0.744 -> 0.846; mean lift +0.073 (42-48 s a run).
* VICReg (expander 512-512-512): 0.795 -> 0.897, 0.769 -> 0.846, 0.744 -> 0.872; +0.103 (57-61 s).
* Barlow Twins (projector 512, lambda 2e-2): 0.795 -> 0.872, 0.769 -> 0.821, 0.744 -> 0.859;
  +0.081 (55-61 s).
* DINO (momentum 0.99, lr 1e-3, fp32, teacher temperature 0.02): 0.795 -> 0.846, 0.782 -> 0.846,
  0.718 -> 0.833; +0.077 (106-115 s), one image above SimCLR's 17 over the three seeds. With the
  default teacher temperature (0.04 -> 0.07): 0.795 -> 0.808, 0.782 -> 0.859, 0.718 -> 0.782;
  +0.051 (141-219 s), below SimCLR's.

The random-init scores of the fp32 DINO runs equal the Intel (fp32) ones; the bf16 runs score
the random init of seeds 1 / 2 at 0.769 / 0.744 instead of 0.782 / 0.718 (presumably bf16 /
channels-last in the monitor's forward; not checked).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import torch

from hfssl.cli.pretrain import parse_args
from hfssl.training import Pretrainer, TrainerCallback


def _load_benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "knn_lift.py"
    spec = importlib.util.spec_from_file_location("knn_lift_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _load_benchmark()

COMMON = BENCH.COMMON  # test_resnet, breastmnist, warm-up 0.05, weight decay 1e-4, kNN every 50 steps
SETTINGS = {
    "rot": ["--method", "rot", "--learning-rate", "1e-3", "--per-device-train-batch-size", "64", "--max-steps", "150"],
}  # fmt: skip
# SimCLR's setting and the newer methods' (SimCLR's budget: steps, batch, warm-up, weight decay,
# seeds; their own lr and head sizes, chosen on tuning seeds) live in benchmarks/knn_lift.py,
# which records the same runs through the command line: one place for both.
SETTINGS.update({method: BENCH.setting_argv(label) for method, label in BENCH.FINAL.items()})
SEEDS = BENCH.FINAL_SEEDS


def test_settings_keep_simclrs_budget_and_build_the_method() -> None:
    """Every method of the comparison parses, with SimCLR's steps / batch and its own method config."""
    from hfssl.pretext import get_pretext_class

    model_args, _, args = parse_args([*COMMON, *SETTINGS["simclr"], "--output-dir", "unused"])
    budget = (args.max_steps, args.per_device_train_batch_size, args.warmup_ratio, args.weight_decay)
    assert budget == (250, 128, 0.05, 1e-4)
    for method in ("vicreg", "barlow_twins", "dino"):
        m_args, _, m = parse_args([*COMMON, *SETTINGS[method], "--output-dir", "unused"])
        assert m_args.method == method
        assert (m.max_steps, m.per_device_train_batch_size, m.warmup_ratio, m.weight_decay) == budget
        get_pretext_class(method).config_class(**m_args.method_kwargs)  # valid settings of the method


def test_benchmark_summary_compares_settings_with_simclr_on_the_same_seeds(
    tmp_path, monkeypatch, capsys
) -> None:
    """Old unlabelled rows are the plain setting at stage final; tuning and final are apart; failures listed."""

    def row(setting, seed, init, final, **extra):
        return {"cpu": "X", "method": setting.split("/")[0], "setting": setting, "seed": seed,
                "knn_accuracy_init": init, "knn_accuracy": final, "wall_s": 1.0, **extra}  # fmt: skip

    old = row("simclr", 0, 0.70, 0.80)
    del old["setting"]
    data = [old, row("vicreg/w512", 0, 0.70, 0.85, stage="final"),
            row("simclr", 10, 0.70, 0.80, stage="tuning"), row("vicreg/w512", 10, 0.70, 0.75, stage="tuning"),
            {"cpu": "X", "method": "dino", "setting": "dino/x", "seed": 10, "stage": "tuning", "error": "nan"}]  # fmt: skip
    results = tmp_path / "knn_lift.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in data))
    monkeypatch.setattr(BENCH, "RESULTS", results)
    BENCH.summary()
    out = capsys.readouterr().out
    tuning, final = out.split("CPU: X | final")
    assert "failed: X tuning dino/x seed 10: nan" in tuning
    assert "vs simclr +0.100 -> FAIL" in tuning and "vs simclr +0.100 -> PASS" in final


class KeepInitialBackbone(TrainerCallback):
    """A copy of the backbone before the first step (the random-init reference)."""

    backbone: torch.nn.Module | None = None

    def on_train_begin(self, trainer: Pretrainer) -> None:
        self.backbone = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.model).backbone)


@torch.no_grad()
def uncentred_knn_accuracy(backbone: torch.nn.Module, data_dir: Path) -> float:
    """The monitor's kNN (k 20, T 0.07) without centring, on the same train bank / validation split."""
    from hfssl.data import load_source, to_tensor_batch
    from hfssl.training.monitor import online_knn_metrics, online_knn_scores

    dsd = load_source("breastmnist", data_dir=data_dir, image_size=28)
    backbone.eval()
    bank_x, bank_y = to_tensor_batch(dsd["train"][:])
    query_x, query_y = to_tensor_batch(dsd["validation"][:])
    bank, _ = backbone.forward_features(bank_x)
    query, _ = backbone.forward_features(query_x)
    scores = online_knn_scores(bank, bank_y, query, num_classes=2, k=20, temperature=0.07, center=False)
    return online_knn_metrics(scores.argmax(1), query_y, 2)["knn_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simclr", "rot"])
def test_short_pretraining_lifts_knn_over_random_init(method: str, tmp_path: Path, data_dir: Path) -> None:
    before, before_uncentred, after = [], [], []
    for seed in (0, 1, 2):
        argv = [*COMMON, *SETTINGS[method], "--seed", str(seed), "--output-dir", str(tmp_path / f"s{seed}")]
        keep = KeepInitialBackbone()
        result = Pretrainer(*parse_args(argv), callbacks=[keep]).train()
        evals = result.evaluations
        assert evals[0]["step"] == 0 and evals[-1]["step"] == result.global_step
        before.append(evals[0]["knn_accuracy"])
        after.append(evals[-1]["knn_accuracy"])
        assert keep.backbone is not None
        before_uncentred.append(uncentred_knn_accuracy(keep.backbone, data_dir))
    print(
        f"{method}: kNN accuracy random init {before} (un-centred {before_uncentred}) -> pretrained {after}"
    )
    assert statistics.mean(after) > statistics.mean(before)
    assert statistics.mean(after) > statistics.mean(before_uncentred)


def knn_run(method: str, seed: int, output_dir: Path, *extra: str) -> tuple[float, float, Path]:
    """(random-init, final) centred kNN accuracy of one run, and its exported backbone folder."""
    argv = [*COMMON, *SETTINGS[method], *extra, "--seed", str(seed), "--output-dir", str(output_dir)]
    result = Pretrainer(*parse_args(argv)).train()
    evals = result.evaluations
    assert evals[0]["step"] == 0 and evals[-1]["step"] == result.global_step
    return evals[0]["knn_accuracy"], evals[-1]["knn_accuracy"], result.backbone_dir


@pytest.fixture(scope="module")
def simclr_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[float, float, Path]]:
    """SimCLR's runs of ``SEEDS`` (the baseline lift, and distill's teachers), shared by the tests below."""
    root = tmp_path_factory.mktemp("simclr")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {seed: knn_run("simclr", seed, root / f"s{seed}") for seed in SEEDS}
    finally:
        torch.set_num_threads(before)


# Methods whose final runs (seeds 0/1/2, the FINAL settings) lifted less than SimCLR's: they
# stay xfail, with the measured numbers (benchmarks/results/knn_lift.jsonl). None at present:
# DINO (teacher temperature 0.02) lifted +0.077 vs SimCLR +0.073 (AMD EPYC, 2026-12-05).
BELOW_SIMCLR: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    [
        pytest.param(m, marks=pytest.mark.xfail(reason=BELOW_SIMCLR[m], strict=False))
        if m in BELOW_SIMCLR
        else m
        for m in ("vicreg", "barlow_twins", "dino")
    ],
)
def test_method_lifts_knn_at_least_as_much_as_simclr(
    method: str, simclr_runs: dict[int, tuple[float, float, Path]], tmp_path: Path, data_dir: Path
) -> None:
    """Same budget and seeds as SimCLR: mean(final - random init) >= SimCLR's mean lift."""
    runs = [knn_run(method, seed, tmp_path / f"s{seed}")[:2] for seed in SEEDS]
    lift = statistics.mean(after - before for before, after in runs)
    base = statistics.mean(simclr_runs[s][1] - simclr_runs[s][0] for s in SEEDS)
    print(f"{method}: {runs} lift {lift:+.3f}; simclr {[simclr_runs[s][:2] for s in SEEDS]} lift {base:+.3f}")
    assert lift >= base


@pytest.mark.slow
def test_distill_reaches_90_percent_of_its_simclr_teacher(
    simclr_runs: dict[int, tuple[float, float, Path]], tmp_path: Path, data_dir: Path
) -> None:
    """distill from the seed's SimCLR backbone: the student's mean kNN >= 90 % of the teachers'."""
    student, teacher = [], []
    for seed in SEEDS:
        kwargs = json.dumps({"teacher": str(simclr_runs[seed][2])})
        student.append(knn_run("distill", seed, tmp_path / f"s{seed}", "--method-kwargs", kwargs)[1])
        teacher.append(simclr_runs[seed][1])
    print(f"distill: student {student} vs teacher {teacher}")
    assert statistics.mean(student) >= 0.9 * statistics.mean(teacher)
