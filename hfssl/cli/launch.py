"""The launcher options shared by ``hfssl study`` and ``hfssl zoo build``: who runs the grid's jobs.

``--launcher local`` (default) runs every pretraining and evaluation in this process, as always.
``--launcher submitit`` hands each one to submitit as its own job (Slurm, or local subprocesses),
see :mod:`eval_suite.launchers`. The cluster options below apply to ``submitit`` only; given with
``--launcher local`` they are refused rather than silently ignored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any, Literal

# option -> what it is for (the zoo's argparse help and the study's dataclass share these texts)
HELP = {
    "launcher": "who runs the jobs: local (this process, one after the other) or submitit (one job per "
    "pretraining / evaluation: Slurm, or local subprocesses; pip install 'hfssl[cluster]')",
    "submitit_cluster": "submitit only: slurm, local (subprocesses on this machine) or auto (slurm when sbatch "
    "exists; default)",
    "slurm_partition": "submitit only: the Slurm partition of every job",
    "gpus_per_job": "submitit only: GPUs per pretraining job and node (>1: accelerate launch, multi-GPU); "
    "evaluation jobs get at most 1 (default 0)",
    "cpus_per_job": "submitit only: CPUs per job (default: the cluster's)",
    "timeout_min": "submitit only: wall-time limit of a job in minutes (default 1440)",
    "max_parallel": "submitit only: at most this many jobs queued or running at once (also the Slurm array "
    "throttle; default: the CPU count locally, unlimited on Slurm)",
    "slurm_extra": "submitit only: extra sbatch options KEY=VALUE, e.g. account=proj qos=high constraint=a100",
    "nodes": "submitit only: nodes per pretraining job (>1: multi-node accelerate launch on Slurm; default 1)",
}
CLUSTER_OPTIONS = [k for k in HELP if k != "launcher"]


@dataclass
class LauncherArgs:
    """Options of ``hfssl study`` that choose and size its launcher."""

    launcher: Literal["local", "submitit"] = field(default="local", metadata={"help": HELP["launcher"]})
    submitit_cluster: Literal["local", "slurm", "auto"] | None = field(
        default=None, metadata={"help": HELP["submitit_cluster"]}
    )
    slurm_partition: str | None = field(default=None, metadata={"help": HELP["slurm_partition"]})
    gpus_per_job: int | None = field(default=None, metadata={"help": HELP["gpus_per_job"]})
    cpus_per_job: int | None = field(default=None, metadata={"help": HELP["cpus_per_job"]})
    timeout_min: int | None = field(default=None, metadata={"help": HELP["timeout_min"]})
    max_parallel: int | None = field(default=None, metadata={"help": HELP["max_parallel"]})
    slurm_extra: list[str] | None = field(default=None, metadata={"help": HELP["slurm_extra"]})
    nodes: int | None = field(default=None, metadata={"help": HELP["nodes"]})


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """The same options on a plain argparse parser (``hfssl zoo``)."""
    parser.add_argument("--launcher", default="local", choices=["local", "submitit"], help=HELP["launcher"])
    parser.add_argument(
        "--submitit-cluster", default=None, choices=["local", "slurm", "auto"], help=HELP["submitit_cluster"]
    )
    parser.add_argument("--slurm-partition", default=None, help=HELP["slurm_partition"])
    for name in ("gpus_per_job", "cpus_per_job", "timeout_min", "max_parallel", "nodes"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=HELP[name])
    parser.add_argument(
        "--slurm-extra", nargs="+", default=None, metavar="KEY=VALUE", help=HELP["slurm_extra"]
    )


def launcher_from_args(args: Any) -> Any:
    """The launcher these options ask for (``eval_suite.launchers``), or a one-line ``ConfigError``:
    cluster options with ``--launcher local``, submitit not installed, bad values."""
    from hfssl.errors import ConfigError

    given = [
        f"--{name.replace('_', '-')}" for name in CLUSTER_OPTIONS if getattr(args, name, None) is not None
    ]
    if args.launcher == "local":
        if given:
            raise ConfigError(
                f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to --launcher submitit",
                "add --launcher submitit, or drop " + ("it" if len(given) == 1 else "them"),
            )
        from eval_suite.launchers import LocalLauncher

        return LocalLauncher()
    from eval_suite.launchers import ClusterOptions, SubmititLauncher, parse_slurm_extra

    values = {f.name: getattr(args, f.name, None) for f in fields(LauncherArgs)}
    options = ClusterOptions(
        cluster=values["submitit_cluster"] or "auto",
        partition=values["slurm_partition"],
        gpus_per_job=values["gpus_per_job"] or 0,
        cpus_per_job=values["cpus_per_job"],
        timeout_min=values["timeout_min"] or 24 * 60,
        max_parallel=values["max_parallel"],
        slurm_extra=parse_slurm_extra(values["slurm_extra"]),
        nodes=values["nodes"] or 1,
    )
    return SubmititLauncher(options)
