#!/usr/bin/env bash
# Pretrain a backbone with a recipe through `accelerate launch`.
#
#   scripts/pretrain.sh RECIPE [extra hfssl.pretrain options]
#   scripts/pretrain.sh scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr
#   NUM_PROCESSES=4 scripts/pretrain.sh scripts/recipes/byol_breastmnist.yaml --sync-batchnorm
#
# Environment: NUM_PROCESSES (default: 1), ACCELERATE_CONFIG (a file like
# scripts/accelerate_config_example.yaml; when set, it replaces the flags below).
# Resume an interrupted run with the same command plus `--resume-from latest`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

if [[ $# -lt 1 ]]; then
    echo "usage: $0 RECIPE.yaml [hfssl.pretrain options]" >&2
    exit 2
fi
recipe="$1"
shift
num_processes="${NUM_PROCESSES:-1}"
launch=("$HFSSL_VENV/bin/accelerate" launch)

if [[ -n "${ACCELERATE_CONFIG:-}" ]]; then
    # everything (processes, machines, mixed precision) comes from the config file
    launch+=(--config_file "$ACCELERATE_CONFIG")
elif [[ "$num_processes" -gt 1 ]]; then
    # Multi-GPU on one machine (DDP). On a machine without GPUs the same line starts
    # num_processes CPU processes with the gloo backend (hfssl asks Accelerate for the CPU
    # itself). Note: `accelerate launch --cpu --num_processes 2` silently starts ONE process.
    launch+=(--multi_gpu --num_processes "$num_processes" --num_machines 1 --dynamo_backend no)
else
    # Single GPU (or CPU) - equivalent to `hfssl pretrain --config RECIPE ...`.
    launch+=(--num_processes 1 --num_machines 1 --dynamo_backend no)
fi

# Multi-node (2 machines x 8 GPUs): run on every machine, with its own --machine_rank:
#   accelerate launch --multi_gpu --num_machines 2 --num_processes 16 --machine_rank 0 \
#       --main_process_ip 10.0.0.1 --main_process_port 29500 \
#       -m hfssl.pretrain --config RECIPE --output-dir /shared/runs/x
# The output dir must be on a file system every machine sees (checkpoints are written by
# each process into one folder). The per-device batch stays the recipe's; the total batch is
# per_device_train_batch_size x processes x gradient_accumulation_steps - scale the learning
# rate of LARS/SGD recipes with it (lr x total_batch / 256).
#
# With torchrun instead of accelerate:
#   torchrun --nproc_per_node 4 -m hfssl.pretrain --config RECIPE --output-dir runs/x

exec "${launch[@]}" -m hfssl.pretrain --config "$recipe" "$@"
