#!/usr/bin/env bash
# Study runner recipes (issue 9). Every command is resumable: kill it and run it again, finished cells
# are skipped and pretrained checkpoints are shared through the checkpoint store
# (--checkpoint-store, else $HFSSL_CHECKPOINT_STORE, else ~/.cache/hfssl/checkpoints).
#
#   scripts/run_study.sh smoke            # all four studies, toy scale (minutes): a plumbing check
#   scripts/run_study.sh cpu              # imbalance + transfer at the cpu preset (2-core CPU: ~1.5-2.5 h, ~1-1.5 h)
#   scripts/run_study.sh cpu-all          # all four at the cpu preset
#   scripts/run_study.sh parity           # scratch ResNet-18 (MedMNIST recipe) vs MedMNIST v2 (hours on CPU)
#   scripts/run_study.sh paper            # the paper's scale on GPUs (see below)
#   PARTITION=gpu scripts/run_study.sh slurm   # the paper's scale on Slurm: one job per cell (pip install 'hfssl[cluster]')
set -euo pipefail
cd "$(dirname "$0")/.."
HFSSL=(python -m hfssl)
STUDIES=(imbalance architecture transfer policies)

case "${1:-smoke}" in
  smoke)
    for s in "${STUDIES[@]}"; do "${HFSSL[@]}" study "$s" --preset smoke --out "studies/$s-smoke"; done ;;
  cpu)
    for s in imbalance transfer; do "${HFSSL[@]}" study "$s" --preset cpu --out "reports/$s-cpu"; done ;;
  cpu-all)
    for s in "${STUDIES[@]}"; do "${HFSSL[@]}" study "$s" --preset cpu --out "reports/$s-cpu"; done ;;
  parity)
    python -m eval_suite.studies.parity --out reports/parity --seeds 0 1 2 ;;
  paper)
    # Paper scale: pretrain every method's checkpoint with accelerate (multi-GPU) into the shared store
    # first, then run the studies on one GPU (evaluations are small). The pretraining lines, one per
    # method and dataset (recipes in scripts/recipes/), e.g.:
    #   accelerate launch --multi_gpu --num_processes 4 -m hfssl.pretrain \
    #       --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr_breastmnist
    # The study's store keys its checkpoints by the preset's pretraining spec, so let the study pretrain
    # (single process, GPU) unless you rename such runs into the store yourself:
    for s in "${STUDIES[@]}"; do "${HFSSL[@]}" study "$s" --preset paper --device cuda --out "studies/$s-paper"; done ;;
  slurm)
    # one submitit job per pretraining / evaluation; the driver waits, keep it alive (tmux). Re-run the same
    # line after a failure: only missing cells are submitted. 'hfssl study status studies/NAME-paper' shows progress.
    for s in "${STUDIES[@]}"; do
      "${HFSSL[@]}" study "$s" --preset paper --out "studies/$s-paper" --launcher submitit \
          --slurm-partition "${PARTITION:-gpu}" --gpus-per-job "${GPUS_PER_JOB:-1}" --max-parallel "${MAX_PARALLEL:-64}"
    done ;;
  *)
    echo "usage: $0 smoke|cpu|cpu-all|parity|paper|slurm" >&2; exit 2 ;;
esac
