"""The launcher options of ``hfssl study`` and ``hfssl zoo build`` become the same ``ClusterOptions``."""

from __future__ import annotations

import pytest

from hfssl.errors import ConfigError

pytest.importorskip("submitit")

ARGV = ["--launcher", "submitit", "--submitit-cluster", "local", "--slurm-partition", "gpu"]
ARGV += ["--gpus-per-job", "1", "--cpus-per-job", "6", "--timeout-min", "90", "--max-parallel", "3"]
ARGV += ["--slurm-extra", "account=proj", "qos=high"]


def _expected():
    from eval_suite.launchers import ClusterOptions

    return ClusterOptions(
        cluster="local", partition="gpu", gpus_per_job=1, cpus_per_job=6, timeout_min=90, max_parallel=3,
        slurm_extra={"account": "proj", "qos": "high"}, nodes=1,
    )  # fmt: skip


def test_study_options_make_a_submitit_launcher():
    from hfssl.cli.launch import LauncherArgs, launcher_from_args
    from hfssl.utils.args import make_parser, parse

    (args,) = parse(make_parser("hfssl study", "", [LauncherArgs]), ARGV)
    launcher = launcher_from_args(args)
    assert launcher.name == "submitit" and launcher.options == _expected() and launcher.cluster == "local"
    (local,) = parse(make_parser("hfssl study", "", [LauncherArgs]), [])
    assert launcher_from_args(local).name == "local"


def test_zoo_options_make_the_same_launcher():
    from hfssl.cli.zoo import _launcher, _parser

    launcher = _launcher(_parser().parse_args(["build", "rot-tiny", *ARGV]))
    assert launcher.options == _expected()
    assert _launcher(_parser().parse_args(["build", "rot-tiny"])) is None  # in-process, entry by entry
    # several GPUs / nodes per pretraining job: accepted (accelerate launch, tests/zoo/test_zoo_multinode.py);
    # several nodes need Slurm, which the launcher's check says before anything is written
    multi = _launcher(_parser().parse_args(["build", "--all", *ARGV, "--gpus-per-job", "8", "--nodes", "2"]))
    assert (multi.options.nodes, multi.options.gpus_per_job) == (2, 8)
    with pytest.raises(ConfigError, match="--nodes 2 needs Slurm"):
        multi.check()


def test_bad_values_are_refused():
    from eval_suite.launchers import ClusterOptions, parse_slurm_extra

    with pytest.raises(ConfigError, match="--max-parallel must be at least 1"):
        ClusterOptions(max_parallel=0)
    with pytest.raises(ConfigError, match="unknown --submitit-cluster"):
        ClusterOptions(cluster="pbs")
    assert parse_slurm_extra(["--mem=64G", "gres=gpu:2"]) == {"mem": "64G", "gres": "gpu:2"}
