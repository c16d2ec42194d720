"""Who runs a grid's jobs: this process (``local``) or a cluster through submitit (``submitit``).

A grid (a study, or the zoo's builds) is handed to a launcher as a list of :class:`Task`: a
*pretraining* (one checkpoint into the checkpoint store) or an *evaluation* (one cell, which needs
its checkpoint first). Every task writes its result atomically into the same store whichever
launcher ran it (checkpoint folder renamed into place, cell marker written last), so the report,
the leaderboard and ``hfssl study status`` do not care how a cell was run.

* :class:`LocalLauncher` runs the tasks one after the other in this process, in the order given
  (each cell's pretraining just before it): the behaviour ``hfssl study`` always had.
* :class:`SubmititLauncher` submits **one job per task** with `submitit
  <https://github.com/facebookincubator/submitit>`_ (the tool DINO, MAE and DINOv2 submit with):
  ``cluster="slurm"`` on a Slurm cluster, ``"local"`` for real subprocesses on this machine
  through the same submission path (what the tests run), ``"auto"`` for Slurm when ``sbatch``
  exists. Pretraining jobs go first; an evaluation job is submitted **by this driver once its
  checkpoint exists** (the driver polls). We wait instead of using Slurm dependencies
  (``--dependency=afterok``) because waiting is simpler, works identically with the local
  executor, and survives re-runs: a dependency on a job of an earlier driver that failed leaves
  its dependants pending forever (``DependencyNeverSatisfied``), while a waiting driver just looks
  at the store. The cost is that the driver must stay alive (run it in ``tmux`` or as a small
  CPU job); kill it and run the same command again and it picks up where it was.

Invariants of the submitit launcher:

* **Nothing is submitted twice for the same task.** The ledger ``STATE/submitit/jobs.jsonl``
  (one JSON line per state change, appended with a single ``write`` on an ``O_APPEND`` file, so
  concurrent appends never interleave) records task key -> job id, state and times. A re-run
  submits only tasks whose result is not in the store and that have no live job; live jobs of an
  earlier driver are waited for, not resubmitted. One driver per state folder at a time (a lock
  file says who holds it).
* **Failures are contained.** A failed or killed job marks its task failed (and tasks needing
  it blocked); the others finish; the driver then raises :class:`JobsFailed` naming them. Logs
  of every job are under ``STATE/submitit/logs/<job id>/``.
* **Multi-GPU and multi-node pretraining** (``gpus_per_job > 1`` or ``nodes > 1``) run one task
  per node; each task starts ``accelerate launch -m hfssl.pretrain`` with the machine rank from
  ``SLURM_NODEID`` and the main process address / port that the sbatch script exports from
  ``SLURM_JOB_NODELIST`` (its first host, via ``scontrol show hostnames``) and ``SLURM_JOB_ID``
  (:func:`slurm_setup_lines`, :func:`accelerate_launch_command`, :func:`run_accelerate`); the
  study's (``CheckpointStore.ensure_distributed``) and the zoo's (``eval_suite.zoo.pretrain_job``)
  pretraining jobs both take this path. Evaluations and architecture donors are one process on at
  most one GPU (the evaluation runner is not distributed).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfssl.errors import ConfigError, HfsslError
from hfssl.utils.logging import get_logger

logger = get_logger("eval_suite.launchers")

LAUNCHERS = ("local", "submitit")
CLUSTERS = ("local", "slurm", "auto")
SUBMITIT_DIR = "submitit"
LEDGER_FILE = "jobs.jsonl"
LOCK_FILE = "driver.lock"
INSTALL_HINT = "pip install 'hfssl[cluster]' (or: pip install submitit)"
# Slurm job states in which a job may still produce its result
LIVE_SLURM_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}
PORT_BASE = 20000  # main process port = PORT_BASE + SLURM_JOB_ID % 20000: two jobs on a node rarely clash


class JobsFailed(HfsslError):
    """Some jobs of a grid failed (the others finished); the re-run submits only what is missing."""

    exit_code = 1

    def __init__(self, problem: str, hint: str | None = None, failed: Mapping[str, str] | None = None):
        super().__init__(problem, hint)
        self.failed = dict(failed or {})  # task key -> error


# ------------------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """One unit of work: a pretraining (``kind="pretrain"``) or one cell's evaluation (``"eval"``).

    ``fn`` runs the work (it must be picklable: module-level functions and ``functools.partial``),
    ``is_done`` answers from the store whether its result exists, ``needs`` are keys of tasks that
    must be done first. ``nodes``/``gpus`` are what the job asks for (``None``: the launcher's).
    """

    key: str
    kind: str
    label: str
    fn: Callable[[], Any]
    is_done: Callable[[], bool]
    needs: tuple[str, ...] = ()
    multi_process: bool = False  # may use several GPUs / nodes (pretrainings)


@dataclass(frozen=True)
class ClusterOptions:
    """What ``--launcher submitit`` asks the cluster for (the CLI's ``--slurm-*`` options)."""

    cluster: str = "auto"
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    timeout_min: int = 24 * 60
    max_parallel: int | None = None
    slurm_extra: Mapping[str, str] = field(default_factory=dict)
    nodes: int = 1
    poll_s: float | None = None  # seconds between checks (default 1 locally, 30 on Slurm)

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ConfigError(
                f"unknown --submitit-cluster {self.cluster!r}", f"use one of: {', '.join(CLUSTERS)}"
            )
        for name in ("gpus_per_job", "nodes", "timeout_min", "cpus_per_job", "max_parallel"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "gpus_per_job" else 1):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} must be at least {0 if name == 'gpus_per_job' else 1}, got {value}",
                    f"pass a positive {flag}",
                )


def parse_slurm_extra(items: Sequence[str] | None) -> dict[str, str]:
    """``["account=abc", "qos=high"]`` -> ``{"account": "abc", "qos": "high"}`` (``--slurm-extra``)."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ConfigError(
                f"--slurm-extra {item!r} is not KEY=VALUE",
                "write e.g. --slurm-extra account=myproject qos=high",
            )
        out[key] = value
    return out


# ------------------------------------------------------------------------------------- local
class Launcher:
    """Runs a grid's tasks; see the module docstring. ``check`` runs before anything is written."""

    name = "launcher"

    def check(self) -> None:
        """Refuse early (before any file is written) what cannot work, with a one-line error."""

    def run(self, tasks: Sequence[Task], state_dir: Path, *, title: str = "grid") -> None:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """In this process, one task after the other, in the order given; an error stops the run."""

    name = "local"

    def run(self, tasks: Sequence[Task], state_dir: Path, *, title: str = "grid") -> None:
        done: set[str] = set()
        n_eval, i = sum(t.kind == "eval" for t in tasks), 0
        for task in tasks:
            if task.key in done or task.is_done():
                continue
            if task.kind == "eval":
                i += 1
                print(f"[{i}/{n_eval}] {task.label}", flush=True)
            task.fn()
            done.add(task.key)


# ------------------------------------------------------------------------------------- ledger
def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Ledger:
    """``STATE/submitit/jobs.jsonl``: one line per job state change; the last line of a key wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: dict[str, Any]) -> None:
        line = (json.dumps({"time": now(), **event}, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)  # one write on O_APPEND: concurrent appends do not interleave
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """Per task key, its last event merged over the earlier ones of the same job."""
        last: dict[str, dict[str, Any]] = {}
        for ev in self.events():
            key = ev.get("key")
            if not key:
                continue
            prev = last.get(key)
            if prev is not None and prev.get("job_id") == ev.get("job_id"):
                last[key] = {**prev, **ev}
            else:
                last[key] = dict(ev)
        return last


def ledger_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / SUBMITIT_DIR / LEDGER_FILE


def logs_dir(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / SUBMITIT_DIR / "logs"


def job_log_paths(state_dir: str | os.PathLike, job_id: str) -> tuple[Path, Path]:
    """(stdout, stderr) of task 0 of job ``job_id`` (submitit's layout ``logs/<id>/<id>_0_log.*``)."""
    folder = logs_dir(state_dir) / str(job_id)
    return folder / f"{job_id}_0_log.out", folder / f"{job_id}_0_log.err"


def log_tail(state_dir: str | os.PathLike, job_id: str, n: int = 8) -> list[str]:
    """The last ``n`` non-empty lines of a job's stderr (else stdout)."""
    for path in reversed(job_log_paths(state_dir, job_id)):
        try:
            lines = [
                ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
            ]
        except OSError:
            continue
        if lines:
            return lines[-n:]
    return []


def _local_pid_alive(pid: str) -> bool:
    """A submitit local job (its controller's pid) still runs: the process exists, is not a zombie,
    and is a submitit process (guards against a reused pid)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"submitit" in cmdline


def job_is_live(entry: Mapping[str, Any], state_dir: str | os.PathLike) -> bool:
    """Whether the job of a ledger entry can still produce its result (queued or running)."""
    if entry.get("state") not in ("submitted", "running"):
        return False
    job_id = str(entry.get("job_id"))
    if entry.get("cluster") == "local":
        return entry.get("host") == socket.gethostname() and _local_pid_alive(job_id)
    try:
        import submitit

        state = submitit.SlurmJob(logs_dir(state_dir) / "%j", job_id).state
    except Exception:  # noqa: BLE001 - no sacct / no submitit: cannot tell, assume it is gone
        return False
    return state.split()[0] in LIVE_SLURM_STATES if state else False


# ------------------------------------------------------------------------------- multi-node
def accelerate_launch_command(nodes: int, gpus_per_node: int, python: str | None = None) -> str:
    """The ``accelerate launch`` prefix of a multi-process pretraining, as shell text evaluated by
    each task: machine rank from ``SLURM_NODEID`` (set per task by ``srun``), main process address
    and port from the ``HFSSL_MAIN_PROCESS_*`` exports of :func:`slurm_setup_lines` (defaults for one
    machine without Slurm: rank 0, localhost). Append ``-m hfssl.pretrain OPTIONS``."""
    processes = nodes * max(1, gpus_per_node)
    parts = [
        shlex.quote(python or sys.executable), "-m", "accelerate.commands.launch",
        "--num_machines", str(nodes), "--num_processes", str(processes),
        "--machine_rank", '"${SLURM_NODEID:-0}"',
        "--main_process_ip", '"${HFSSL_MAIN_PROCESS_IP:-127.0.0.1}"',
        "--main_process_port", '"${HFSSL_MAIN_PROCESS_PORT:-29500}"',
        "--dynamo_backend", "no",
    ]  # fmt: skip
    if processes > 1:
        parts.append("--multi_gpu")
    if nodes > 1:
        parts += ["--rdzv_backend", "static", "--same_network"]
    return " ".join(parts)


def slurm_setup_lines(nodes: int, gpus_per_node: int, python: str | None = None) -> list[str]:
    """Lines the sbatch script runs before ``srun`` for a multi-process pretraining: the main
    process address (first host of ``SLURM_JOB_NODELIST``) and port (from ``SLURM_JOB_ID``), and
    the ``accelerate launch`` command every task runs (single-quoted: each task's shell expands
    its own ``SLURM_NODEID`` as the machine rank)."""
    command = accelerate_launch_command(nodes, gpus_per_node, python)
    return [
        f"# hfssl: accelerate launch on {nodes} node(s) x {gpus_per_node} GPU(s); the first host is the main process",
        'export HFSSL_MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f'export HFSSL_MAIN_PROCESS_PORT="$(( {PORT_BASE} + SLURM_JOB_ID % 20000 ))"',
        f"export HFSSL_ACCELERATE_LAUNCH={shlex.quote(command)}",
    ]


def split_global_batch(batch: int, world: int, what: str) -> int:
    """The per-process batch that keeps ``batch`` the global batch on ``world`` processes (so a
    multi-process pretraining trains the run its single-process config names), or a one-line error."""
    if world < 1 or batch % world:
        raise ConfigError(
            f"batch size {batch} of {what} does not split over {world} processes",
            "choose --gpus-per-job / --nodes whose product divides the batch size",
        )
    return batch // world


def is_main_node() -> bool:
    """Whether this task is node 0 of its job (``SLURM_NODEID``; true outside Slurm): the node that
    moves a multi-node pretraining's result into place once every node's ``accelerate launch`` ended."""
    return os.environ.get("SLURM_NODEID", "0") == "0"


def run_accelerate(pretrain_args: Sequence[str], nodes: int, gpus_per_node: int) -> None:
    """Run ``hfssl.pretrain`` under ``accelerate launch`` on this node (the command the sbatch script
    exported, else :func:`accelerate_launch_command` for one machine)."""
    prefix = os.environ.get("HFSSL_ACCELERATE_LAUNCH") or accelerate_launch_command(nodes, gpus_per_node)
    script = f"{prefix} -m hfssl.pretrain {shlex.join(pretrain_args)}"
    env = dict(os.environ)
    if nodes == 1 and "HFSSL_MAIN_PROCESS_PORT" not in env:
        # one machine without the sbatch setup (submitit's local executor): a free port, so that two
        # multi-process jobs on this machine do not both take accelerate's default 29500
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            env["HFSSL_MAIN_PROCESS_PORT"] = str(sock.getsockname()[1])
    logger.info(f"node {os.environ.get('SLURM_NODEID', '0')}: {script}")
    subprocess.run(["bash", "-c", script], check=True, env=env)


# ------------------------------------------------------------------------------------ submitit
def import_submitit() -> Any:
    """``submitit``, or a one-line error naming the extra that installs it."""
    try:
        import submitit
    except ImportError as err:
        raise ConfigError(
            f"--launcher submitit needs the submitit package, which is not installed ({err})", INSTALL_HINT
        ) from None
    return submitit


def _slurm_message(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(no message)"])[-1]


@dataclass
class _Running:
    task: Task
    job_id: str
    job: Any | None  # a submitit Job of this driver, or None for a job of an earlier driver
    submitted: float


class SubmititLauncher(Launcher):
    """One submitit job per task (see the module docstring)."""

    name = "submitit"

    def __init__(self, options: ClusterOptions | None = None) -> None:
        self.options = options or ClusterOptions()
        self.submitit = import_submitit()
        self._cluster: str | None = None

    @property
    def cluster(self) -> str:
        if self._cluster is None:
            if self.options.cluster == "auto":
                self._cluster = "slurm" if shutil.which("sbatch") else "local"
            else:
                self._cluster = self.options.cluster
        return self._cluster

    def check(self) -> None:
        """On Slurm: ``sbatch --test-only`` with the job's options, so that a partition (account,
        QOS ...) Slurm rejects is refused with Slurm's own message before anything is submitted."""
        if self.cluster == "local":
            if self.options.nodes > 1:
                raise ConfigError(
                    f"--nodes {self.options.nodes} needs Slurm; the local executor has one machine",
                    "use --submitit-cluster slurm on a cluster, or --nodes 1",
                )
            return
        if not shutil.which("sbatch"):
            raise ConfigError(
                "--submitit-cluster slurm but no sbatch on PATH",
                "run on a Slurm login node or use --submitit-cluster local",
            )
        argv = [
            "sbatch",
            "--test-only",
            f"--time={self.options.timeout_min}",
            f"--nodes={self.options.nodes}",
        ]
        if self.options.partition:
            argv.append(f"--partition={self.options.partition}")
        argv += [f"--{k.replace('_', '-')}={v}" for k, v in self.options.slurm_extra.items()]
        try:
            proc = subprocess.run([*argv, "--wrap=true"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ConfigError(
                f"sbatch --test-only failed: {err}", "check that Slurm answers (sinfo)"
            ) from None
        if proc.returncode != 0:
            raise ConfigError(
                f"Slurm refused the job: {_slurm_message(proc.stderr + proc.stdout)}",
                "check --slurm-partition / --slurm-extra against 'sinfo' and your account",
            )

    def _resources(self, task: Task) -> tuple[int, int, bool]:
        """(nodes, GPUs per node, through accelerate launch) of ``task``'s job: a multi-process task
        (a pretraining) gets the options' nodes and GPUs, any other one node and at most one GPU."""
        o = self.options
        multi = task.multi_process and (o.nodes > 1 or o.gpus_per_job > 1)
        gpus = o.gpus_per_job if task.multi_process else min(o.gpus_per_job, 1)
        nodes = o.nodes if task.multi_process else 1
        return nodes, gpus, multi

    def _executor(self, state_dir: Path, task: Task) -> Any:
        o = self.options
        nodes, gpus, multi = self._resources(task)
        executor = self.submitit.AutoExecutor(folder=logs_dir(state_dir) / "%j", cluster=self.cluster)
        params: dict[str, Any] = {
            "name": f"hfssl-{task.kind}",
            "timeout_min": o.timeout_min,
            "nodes": nodes,
            "tasks_per_node": 1,
            "gpus_per_node": gpus,
            "cpus_per_task": o.cpus_per_job,
        }
        if self.cluster == "slurm":
            params.update(
                slurm_partition=o.partition,
                slurm_array_parallelism=o.max_parallel or 256,
                slurm_additional_parameters=dict(o.slurm_extra) or None,
                slurm_setup=slurm_setup_lines(nodes, gpus) if multi else None,
            )
        executor.update_parameters(**params)
        return executor

    def _submit(self, state_dir: Path, tasks: Sequence[Task], ledger: Ledger) -> list[_Running]:
        """Submit ``tasks`` (same kind and resources) as one job array; record each in the ledger."""
        executor = self._executor(state_dir, tasks[0])
        echoed = io.StringIO()  # submitit echoes a failed sbatch's stderr: keep it for the one-line error
        try:
            with contextlib.redirect_stderr(echoed), executor.batch():
                jobs = [executor.submit(_run_task, t.fn, self.options, t.multi_process) for t in tasks]
        except Exception as err:  # noqa: BLE001 - sbatch's refusal, shown as Slurm said it
            text = f"{echoed.getvalue()}\n{err}"
            raise ConfigError(
                f"submitting {len(tasks)} job(s) failed: {_slurm_message(text)}",
                "check the Slurm options (--slurm-partition, --slurm-extra) and 'sinfo'",
            ) from None
        out = []
        for task, job in zip(tasks, jobs):
            ledger.append(
                {
                    "key": task.key,
                    "label": task.label,
                    "kind": task.kind,
                    "job_id": str(job.job_id),
                    "cluster": self.cluster,
                    "host": socket.gethostname(),
                    "state": "submitted",
                    "submitted_at": now(),
                }
            )
            out.append(_Running(task, str(job.job_id), job, time.time()))
        return out

    def _state(self, run: _Running, state_dir: Path, ledger_entry: Mapping[str, Any]) -> str:
        """``queued`` / ``running`` / ``ended`` for a job of this driver or of an earlier one."""
        if run.job is None:
            return "running" if job_is_live(ledger_entry, state_dir) else "ended"
        state = str(run.job.state).upper()
        if self.cluster == "local":
            return "running" if state == "RUNNING" else "ended"
        word = state.split()[0] if state else "UNKNOWN"
        if word == "PENDING" or word == "REQUEUED":
            return "queued"
        if word in LIVE_SLURM_STATES or word == "UNKNOWN":
            return "running"
        return "ended"

    def run(self, tasks: Sequence[Task], state_dir: Path, *, title: str = "grid") -> None:
        by_key = {t.key: t for t in tasks}
        ledger = Ledger(ledger_path(state_dir))
        poll = self.options.poll_s or (1.0 if self.cluster == "local" else 30.0)
        limit = self.options.max_parallel or ((os.cpu_count() or 1) if self.cluster == "local" else 10_000)
        with _driver_lock(state_dir):
            previous = ledger.latest()
            pending = {t.key: t for t in tasks if not t.is_done()}
            running: dict[str, _Running] = {}
            for key, entry in previous.items():  # jobs of an earlier driver: wait, never resubmit
                if key in pending and job_is_live(entry, state_dir):
                    running[key] = _Running(pending[key], str(entry["job_id"]), None, time.time())
                    print(
                        f"  {pending[key].label}: job {entry['job_id']} of an earlier run is still live",
                        flush=True,
                    )
            failed: dict[str, str] = {}
            n_total = len(pending)
            while pending:
                latest = ledger.latest()
                for key, run in list(running.items()):
                    state = self._state(run, state_dir, latest.get(key, {}))
                    entry = latest.get(key, {})
                    if state == "running" and entry.get("state") == "submitted":
                        ledger.append(
                            {"key": key, "job_id": run.job_id, "state": "running", "started_at": now()}
                        )
                    if state != "ended":
                        continue
                    del running[key]
                    seconds = round(time.time() - run.submitted, 1)
                    if run.task.is_done():
                        ledger.append({"key": key, "job_id": run.job_id, "state": "done", "seconds": seconds})
                        pending.pop(key)
                        print(f"  done   {run.task.label} (job {run.job_id}, {seconds:.0f} s)", flush=True)
                    else:
                        tail = log_tail(state_dir, run.job_id)
                        error = (
                            tail[-1] if tail else "the job ended without its result (killed or pre-empted?)"
                        )
                        ledger.append(
                            {
                                "key": key,
                                "job_id": run.job_id,
                                "state": "failed",
                                "seconds": seconds,
                                "error": error,
                                "tail": tail,
                            }
                        )
                        failed[key] = error
                        pending.pop(key)
                        print(f"  FAILED {run.task.label} (job {run.job_id}): {error}", flush=True)
                for key, task in list(pending.items()):  # a task whose prerequisite failed cannot run
                    bad = [n for n in task.needs if n in failed]
                    if bad and key not in running:
                        failed[key] = f"blocked: {by_key[bad[0]].label} failed"
                        pending.pop(key)
                ready = [
                    t
                    for k, t in pending.items()
                    if k not in running and all(n not in pending and n not in failed for n in t.needs)
                ]
                room = limit - len(running)
                if ready and room > 0:
                    batch = ready[:room]
                    groups: dict[tuple[str, tuple[int, int, bool]], list[Task]] = {}
                    for t in sorted(batch, key=lambda t: t.kind != "pretrain"):  # pretrainings first
                        groups.setdefault((t.kind, self._resources(t)), []).append(t)
                    for group in groups.values():  # one job array per kind of task and resources
                        for r in self._submit(state_dir, group, ledger):
                            running[r.task.key] = r
                            print(f"  submitted {r.task.label} (job {r.job_id})", flush=True)
                    continue
                if not running and pending:  # nothing runs and nothing can start: a needs cycle
                    raise RuntimeError(f"tasks can never start: {sorted(pending)}")  # pragma: no cover
                if pending:
                    time.sleep(poll)
        if failed:
            names = ", ".join(by_key[k].label for k in list(failed)[:6])
            raise JobsFailed(
                f"{len(failed)} of {n_total} jobs of {title} failed: {names}",
                f"see 'hfssl study status {state_dir}' (or 'hfssl zoo status') for their last log lines, "
                "fix the cause, and run the same command again (only the missing jobs are submitted)",
                failed=failed,
            )


def _run_task(fn: Callable[[], Any], options: ClusterOptions, multi_process: bool) -> Any:
    """What a job runs: the task, in the job's own process (``multi_process`` tasks read their
    node's rank and the main address from Slurm's environment themselves)."""
    os.environ.setdefault("HFSSL_DISABLE_PROGRESS_BARS", "1")
    if multi_process:
        os.environ["HFSSL_JOB_NODES"] = str(options.nodes)
        os.environ["HFSSL_JOB_GPUS"] = str(options.gpus_per_job)
    return fn()


@contextlib.contextmanager
def _driver_lock(state_dir: Path) -> Iterator[None]:
    """One driver per state folder: two drivers would both submit the same missing tasks."""
    path = state_dir / SUBMITIT_DIR / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ConfigError(
                f"another hfssl driver ({holder}) is submitting jobs for {state_dir}",
                "wait for it, or stop it before starting a new one",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        yield
    finally:
        fh.close()


# ------------------------------------------------------------------------------------ choose
def make_launcher(name: str = "local", options: ClusterOptions | None = None) -> Launcher:
    """The launcher called ``name`` (``local`` or ``submitit``)."""
    if name == "local":
        return LocalLauncher()
    if name == "submitit":
        return SubmititLauncher(options)
    raise ConfigError(f"unknown --launcher {name!r}", f"use one of: {', '.join(LAUNCHERS)}")


def distributed_world() -> tuple[int, int]:
    """(nodes, GPUs per node) a multi-process task of this job may use (1, 0 outside a job)."""
    return int(os.environ.get("HFSSL_JOB_NODES", "1")), int(os.environ.get("HFSSL_JOB_GPUS", "0"))


__all__ = [
    "CLUSTERS",
    "LAUNCHERS",
    "ClusterOptions",
    "JobsFailed",
    "Launcher",
    "Ledger",
    "LocalLauncher",
    "SubmititLauncher",
    "Task",
    "accelerate_launch_command",
    "distributed_world",
    "is_main_node",
    "job_is_live",
    "ledger_path",
    "log_tail",
    "make_launcher",
    "parse_slurm_extra",
    "run_accelerate",
    "slurm_setup_lines",
    "split_global_batch",
]
