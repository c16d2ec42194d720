"""The pretraining engine: :class:`Pretrainer` and :func:`pretrain_backbone`.

A Hugging Face style trainer around the pretext contract (:mod:`hfssl.pretext.base`): the model
makes its own views from ``pixel_values`` in [0, 1] and returns a loss; the trainer feeds it,
optimises it, monitors it, checkpoints it and exports its backbone. A run is
setup (:mod:`hfssl.training.build`, and the ``--init-from`` checkpoint loaded by
:mod:`hfssl.training.init_from`; nothing written until every input is checked) -> outputs
and devices -> start or resume -> the loop -> export (:mod:`hfssl.training.outputs`).

Accelerate does the distributed work: ``prepare`` (DDP, device placement, mixed precision,
data sharding), ``accumulate`` (gradient accumulation with ``no_sync``), ``reduce`` /
``gather_for_metrics`` (logged numbers, kNN embeddings), ``save_state`` / ``load_state``
(checkpoints), trackers (TensorBoard by default) and main-process-only logging.

Reproducibility (a killed and resumed run ends bit-identical to an uninterrupted one):

* the data order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone
  (:class:`~hfssl.data.samplers.EpochShuffleSampler`), so the sampler position is just
  "micro-batches consumed in this epoch", restored with ``skip_first_batches``; each epoch holds
  a whole number of optimiser steps (:class:`~hfssl.training.build.Schedule`);
* the pretext model draws its views from a ``torch.Generator`` owned by the trainer (one per
  process), saved in every checkpoint; dropout and other global RNG draws are covered by
  Accelerate's RNG states; EMA targets, queues and BYOL's step counter are model buffers;
* optimiser, scheduler and Accelerate's step counter are restored by ``load_state``.

The command line (argv, ``--config``, exit codes) lives in :mod:`hfssl.cli.pretrain`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hfssl.errors import HfsslError
from hfssl.training import build, outputs
from hfssl.training.callbacks import TrainerCallback
from hfssl.training.checkpointing import (
    CheckpointManager,
    TrainerState,
    check_resume_compatible,
    load_training_state,
    save_training_state,
    validate_checkpoint,
)
from hfssl.training.outputs import PretrainResult
from hfssl.training.runtime import (
    RuntimePlan,
    hardware_description,
    make_accelerator,
    resolve_pretraining_runtime,
    resolve_runtime,
    runtime_device_type,
    to_memory_format,
)
from hfssl.utils.io import write_json_atomic
from hfssl.utils.logging import get_logger, progress_disabled

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

    from hfssl.data.samplers import EpochShuffleSampler
    from hfssl.pretext.base import PretextModel
    from hfssl.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfssl.training.init_from import InitSource
    from hfssl.training.monitor import OnlineKnnMonitor

logger = get_logger(__name__)

__all__ = ["Pretrainer", "PretrainResult", "TrainingError", "pretrain_backbone"]


class TrainingError(HfsslError):
    """Training cannot go on (non-finite loss, out of memory); the last checkpoint is kept."""


@dataclass
class _Run:
    """What the loop works with, built by :meth:`Pretrainer._setup` and :meth:`Pretrainer._to_devices`."""

    schedule: build.Schedule
    desc: Any
    unlabelled: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    warmup: int
    plan: RuntimePlan
    monitor: OnlineKnnMonitor | None
    resume_path: Path | None = None
    resumed: TrainerState | None = None
    sampler: EpochShuffleSampler | None = None
    loader: Any = None
    unwrapped: PretextModel | None = None
    generator: torch.Generator | None = None
    # --init-from: the checkpoint loaded at the start, and what the run record says of it (on a resumed
    # run only the record, carried over from the session that loaded it)
    init: InitSource | None = None
    init_record: dict[str, Any] | None = None

    @property
    def channels_last(self) -> bool:
        return self.plan.channels_last


class Pretrainer:
    """One pretraining run. ``Pretrainer(model_args, data_args, args).train()`` does everything.

    Attributes available to callbacks: ``accelerator``, ``model`` (prepared), ``state``
    (:class:`TrainerState`), ``args``.
    """

    def __init__(
        self,
        model_args: ModelArguments,
        data_args: DataArguments,
        args: PretrainingArguments,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        self.model_args = model_args
        self.data_args = data_args
        self.args = args
        self.callbacks = list(callbacks)
        self.output_dir = Path(args.output_dir).expanduser()
        self.checkpoints = CheckpointManager(self.output_dir, args.save_total_limit)
        self.state = TrainerState()
        self.accelerator: Accelerator | None = None
        self.model: torch.nn.Module | None = None
        self.evaluations: list[dict[str, Any]] = []
        self._started = time.monotonic()

    @property
    def _acc(self) -> Accelerator:
        assert self.accelerator is not None
        return self.accelerator

    # ------------------------------------------------------------------------------ run
    def train(self) -> PretrainResult:
        """Run (or resume) the pretraining and export the backbone; returns what was written."""
        args = self.args
        outputs.check_output_dir(self.output_dir, bool(args.overwrite_output_dir or args.resume_from))
        # Accelerate needs the precision before the data is loaded; a 3D backbone is known by its
        # name (3D CNN training may need fp32: resolve_runtime's note [4]); _setup resolves the
        # memory format with the built model
        from hfssl.models import BACKBONES_3D

        spatial_dims = 3 if self.model_args.backbone in BACKBONES_3D else 2
        precision = resolve_runtime(
            runtime_device_type(args),
            self.model_args.backbone,
            spatial_dims,
            mixed_precision=args.mixed_precision,
        ).mixed_precision
        accelerator = self.accelerator = make_accelerator(
            args, self.output_dir, self.output_dir / outputs.RUNS_DIR, mixed_precision=precision
        )
        self._started = time.monotonic()
        try:
            return self._train()
        finally:
            accelerator.end_training()

    def _train(self) -> PretrainResult:
        from accelerate.utils import set_seed

        set_seed(self.args.seed)
        run = self._setup()
        self._write_run_record(run)
        self._to_devices(run)
        self._start_or_resume(run)
        if self._acc.is_main_process:
            logger.info(outputs.run_banner(self, run))
        for cb in self.callbacks:
            cb.on_train_begin(self)
        last_logs = self._loop(run)
        result = self._export(run, last_logs)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return result

    # ------------------------------------------------------------------------------ setup
    def _setup(self) -> _Run:
        """Everything that can fail on user input, before anything is written."""
        accelerator, args = self._acc, self.args
        init = self._resolve_init()  # before the data: a missing checkpoint fails fast
        dsd, desc = build.load_data(self.data_args, accelerator)
        unlabelled = build.unlabelled_images(dsd, self.data_args)
        schedule = build.plan_schedule(len(unlabelled), args, accelerator.num_processes)
        if init is not None:
            build.check_init(init, self.model_args, desc)
        model = build.build_pretext_model(self.model_args, desc, schedule.total_steps)
        if init is not None:
            from hfssl.training.init_from import apply_init

            apply_init(model, init)
        build.check_batch_size(model, args.per_device_train_batch_size)
        plan = self._runtime_plan(model, desc.spatial_dims)
        model = build.place_model(model, args, accelerator, plan.channels_last, desc.spatial_dims)
        optimizer, scheduler, warmup = build.build_optimization(model, args, schedule.total_steps)
        run = _Run(schedule, desc, unlabelled, model, optimizer, scheduler, warmup, plan, None)
        run.init = init
        run.init_record = init.provenance() if init is not None else None
        if args.resume_from:
            run.resume_path = self.checkpoints.resolve(args.resume_from)
            run.resumed = validate_checkpoint(run.resume_path, accelerator.num_processes)
            check_resume_compatible(
                run.resumed,
                per_device_train_batch_size=args.per_device_train_batch_size,
                gradient_accumulation_steps=args.gradient_accumulation_steps,
                steps_per_epoch=schedule.steps_per_epoch,
                method=self.model_args.method,
                backbone=self.model_args.backbone,
                dataset=self.data_args.dataset,
                image_size=int(desc.image_size),
            )
            if run.resumed.seed != args.seed:
                logger.warning(
                    "resuming a run trained with seed %d under seed %d", run.resumed.seed, args.seed
                )
            from hfssl.training.init_from import init_record_of

            run.init_record = init_record_of(self.output_dir)  # what the first session started from
        run.monitor = build.make_knn_monitor(dsd, self.data_args, args, accelerator)
        if run.monitor is not None:
            run.monitor.channels_last = plan.channels_last
        return run

    def _resolve_init(self) -> InitSource | None:
        """The ``--init-from`` checkpoint (the main process downloads a Hub repo first), or None.

        ``--resume-from`` wins: the resumed checkpoint already holds the initialisation (and its record).
        """
        spec = self.model_args.init_from
        if not spec:
            return None
        if self.args.resume_from:
            if self._acc.is_main_process:
                logger.info(
                    "--init-from %s is not used: --resume-from continues a run that already contains its "
                    "initialisation",
                    spec,
                )
            return None
        from hfssl.training.init_from import resolve_init_source

        with self._acc.main_process_first():
            return resolve_init_source(spec)

    def _runtime_plan(self, model: torch.nn.Module, spatial_dims: int) -> RuntimePlan:
        backbone = getattr(model, "backbone", None)
        kind_of = backbone if isinstance(backbone, torch.nn.Module) else self.model_args.backbone
        return resolve_pretraining_runtime(
            self._acc, kind_of, spatial_dims, self.args.mixed_precision, self.args.channels_last
        )

    def _arguments(self) -> tuple[Any, ...]:
        return (self.model_args, self.data_args, self.args)

    def _write_run_record(self, run: _Run) -> None:
        """``training_args.json`` (main process) and the trackers' config."""
        accelerator, s = self._acc, run.schedule
        if accelerator.is_main_process:
            outputs.prepare_output_dir(
                self.output_dir, bool(self.args.overwrite_output_dir and not self.args.resume_from)
            )
            extra = {
                "num_processes": s.num_processes,
                "total_batch_size": s.global_batch,
                "steps_per_epoch": s.steps_per_epoch,
                "total_steps": s.total_steps,
                "warmup_steps": run.warmup,
                "mixed_precision": run.plan.mixed_precision,
                "channels_last_resolved": run.plan.channels_last,
                "memory_format": run.plan.memory_format,
                "runtime_reason": run.plan.reason,
                "unlabelled_images": len(run.unlabelled),
                "hardware": hardware_description(accelerator.device, s.num_processes),
            }
            if run.init_record is not None:
                extra["init_source"] = run.init_record
            write_json_atomic(
                self.output_dir / outputs.ARGS_FILE, outputs.training_args_record(self._arguments(), extra)
            )
        accelerator.wait_for_everyone()
        if accelerator.log_with:
            record = outputs.training_args_record(self._arguments(), {"total_steps": s.total_steps})
            tracker_config = outputs.flat_config(record)
            tracker_config.pop("versions", None)
            accelerator.init_trackers("pretrain", config=tracker_config)

    def _to_devices(self, run: _Run) -> None:
        """Sampler and loader, ``accelerator.prepare``, and this process's view generator."""
        from hfssl.data.samplers import EpochShuffleSampler
        from hfssl.data.torch_data import MedicalImageDataset, make_dataloader

        accelerator, args, s = self._acc, self.args, run.schedule
        run.sampler = EpochShuffleSampler(len(run.unlabelled), s.samples_per_epoch, args.seed)
        loader = make_dataloader(
            MedicalImageDataset(run.unlabelled, label_column=None),
            batch_size=s.per_device_batch,
            sampler=run.sampler,
            drop_last=True,
            num_workers=self.data_args.dataloader_num_workers,
            seed=args.seed,
            pin_memory=accelerator.device.type == "cuda",
        )
        run.model, run.optimizer, run.scheduler, run.loader = accelerator.prepare(
            run.model, run.optimizer, run.scheduler, loader
        )
        self.model = run.model
        run.unwrapped = accelerator.unwrap_model(run.model)
        run.generator = torch.Generator(device=accelerator.device)
        run.generator.manual_seed((args.seed * 7_919 + 104_729 * (accelerator.process_index + 1)) % (2**63))

    def _start_or_resume(self, run: _Run) -> None:
        s, m, d = run.schedule, self.model_args, self.data_args
        self.state = TrainerState(
            max_steps=s.total_steps,
            steps_per_epoch=s.steps_per_epoch,
            num_processes=s.num_processes,
            per_device_train_batch_size=s.per_device_batch,
            gradient_accumulation_steps=s.accumulation,
            seed=self.args.seed,
            method=m.method,
            backbone=m.backbone,
            dataset=d.dataset,
            image_size=int(run.desc.image_size),
            hfssl_version=outputs.hfssl_version(),
        )
        if run.resume_path is not None and run.resumed is not None:
            assert run.generator is not None
            self._load_checkpoint(run.resume_path, run.resumed, run.generator)
        elif self._acc.is_main_process:
            outputs.reset_metrics_file(self.output_dir, None)

    # ------------------------------------------------------------------------------ loop
    def _loop(self, run: _Run) -> dict[str, Any]:
        """Optimiser steps until ``total_steps``; returns the last logged record."""
        from tqdm.auto import tqdm

        accelerator, args, state = self._acc, self.args, self.state
        progress = tqdm(
            total=run.schedule.total_steps,
            initial=state.global_step,
            desc="pretraining",
            disable=not accelerator.is_local_main_process or args.disable_tqdm or progress_disabled(),
        )
        if run.monitor is not None and state.global_step == 0 and args.eval_strategy != "no":
            self._evaluate(run)  # the random-init reference
        meter = build.LogMeter()
        meter.restart(state.global_step)
        run.model.train()
        while self.state.global_step < run.schedule.total_steps:
            epoch = self.state.epoch
            for batch_data in self._epoch_batches(run, epoch):
                pixels = to_memory_format(batch_data["pixel_values"], run.channels_last)
                self._micro_step(run, pixels, meter.running)
                meter.count += 1
                self.state.batches_in_epoch += 1
                if accelerator.sync_gradients and self._after_optimizer_step(run, epoch, progress, meter):
                    break  # mid-epoch stop (--max-steps); an epoch's loader otherwise runs out by itself
        progress.close()
        return meter.last_logs

    def _epoch_batches(self, run: _Run, epoch: int) -> Iterable[dict[str, torch.Tensor]]:
        """The loader of ``epoch``, past the micro-batches a resumed run already consumed."""
        assert run.sampler is not None
        run.sampler.set_epoch(epoch)
        loader = run.loader
        if self.state.batches_in_epoch:
            loader = self._acc.skip_first_batches(run.loader, self.state.batches_in_epoch)
        loader.set_epoch(epoch)
        return loader

    def _micro_step(self, run: _Run, pixels: torch.Tensor, running: dict[str, torch.Tensor]) -> float:
        """Forward, loss check, backward and (on the last micro-batch) the optimiser step."""
        accelerator, args, model, optimizer = self._acc, self.args, run.model, run.optimizer
        try:
            with accelerator.accumulate(model):
                out = model(pixel_values=pixels, generator=run.generator)
                loss = out.loss
                # one reduced value per micro-batch: every process takes the same decision
                loss_value = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
                if not math.isfinite(loss_value):
                    last = self.checkpoints.latest()
                    raise TrainingError(
                        f"the loss became {loss_value} at step {self.state.global_step + 1}; training stopped "
                        f"(last good checkpoint: {last if last else 'none yet'})",
                        "lower --learning-rate, add --warmup-ratio 0.05 or --max-grad-norm 1.0, or use "
                        "--mixed-precision no; then resume with --resume-from latest",
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as err:
            raise TrainingError(
                f"out of memory at step {self.state.global_step + 1} with {args.per_device_train_batch_size} "
                "images per device",
                f"lower --per-device-train-batch-size (e.g. {max(args.per_device_train_batch_size // 2, 2)}) and raise "
                f"--gradient-accumulation-steps (e.g. {args.gradient_accumulation_steps * 2}) to keep the total batch, "
                "or use --mixed-precision bf16",
            ) from err
        running["loss"] = running.get("loss", torch.zeros((), dtype=torch.float64)) + loss_value
        for key, value in (out.metrics or {}).items():
            value = value.detach().float().mean().cpu().double()
            running[f"pretext/{key}"] = (
                running.get(f"pretext/{key}", torch.zeros((), dtype=torch.float64)) + value
            )
        return loss_value

    def _after_optimizer_step(self, run: _Run, epoch: int, progress: Any, meter: build.LogMeter) -> bool:
        """Schedule, counters, and what is due at this step: log, kNN monitor, checkpoint. True when done."""
        args, state, s = self.args, self.state, run.schedule
        run.scheduler.step()
        after = getattr(run.unwrapped, "after_optimizer_step", None)
        if callable(after):
            after()
        state.global_step += 1
        if state.batches_in_epoch >= s.micro_batches_per_epoch:
            state.epoch, state.batches_in_epoch = epoch + 1, 0
        progress.update(1)
        step = state.global_step
        done = step >= s.total_steps
        epoch_end = state.batches_in_epoch == 0
        if step % args.logging_steps == 0 or done:
            elapsed = time.perf_counter() - meter.tic
            logs = self._log(meter.running, meter.count, run.scheduler, step, s.steps_per_epoch)
            logs["images_per_second"] = round(
                s.global_batch * (step - meter.tic_step) / max(elapsed, 1e-9), 2
            )
            self._emit(logs)
            progress.set_postfix(loss=f"{logs['loss']:.4f}")
            meter.last_logs = logs
            meter.restart(step)
        if run.monitor is not None and build.strategy_due(
            args.eval_strategy, args.eval_steps, step, epoch_end, done
        ):
            started = time.perf_counter()
            self._evaluate(run)
            meter.exclude(started)  # images/s counts training time only
        if build.strategy_due(args.save_strategy, args.save_steps, step, epoch_end, done):
            started = time.perf_counter()
            assert run.generator is not None
            self._save_checkpoint(run.generator)
            meter.exclude(started)
        for cb in self.callbacks:
            cb.on_step_end(self)
        return done

    def _log(
        self, running: dict[str, torch.Tensor], count: int, scheduler: Any, step: int, steps_per_epoch: int
    ) -> dict[str, Any]:
        accelerator = self._acc
        keys = sorted(running)
        values = torch.stack([running[k] for k in keys]).to(accelerator.device, torch.float32) / max(count, 1)
        values = accelerator.reduce(values, reduction="mean").cpu().tolist()
        logs: dict[str, Any] = {"step": step, "epoch": round(step / steps_per_epoch, 4)}
        logs.update({k: round(float(v), 6) for k, v in zip(keys, values)})
        logs["learning_rate"] = float(scheduler.get_last_lr()[0])
        return logs

    def _emit(self, record: dict[str, Any], kind: str = "log") -> None:
        """Send a record to the trackers, metrics.jsonl and the callbacks (files on the main process)."""
        accelerator = self._acc
        step = int(record["step"])
        scalars = {k: v for k, v in record.items() if k not in ("step",) and isinstance(v, (int, float))}
        prefix = "eval/" if kind == "eval" else "train/"
        accelerator.log({f"{prefix}{k}": v for k, v in scalars.items()}, step=step)
        if accelerator.is_main_process:
            outputs.append_metrics_record(self.output_dir, record)
            if kind == "eval":
                logger.info(
                    "step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k != "epoch")
                )
        for cb in self.callbacks:
            (cb.on_evaluate if kind == "eval" else cb.on_log)(self, record)

    def _evaluate(self, run: _Run) -> dict[str, Any]:
        assert run.monitor is not None and run.unwrapped is not None
        # the exported encoder (DINO: the teacher by default), the backbone users get
        metrics = run.monitor.evaluate(run.unwrapped.encoder_to_export(self.args.export_backbone))
        record: dict[str, Any] = {
            "step": self.state.global_step,
            "epoch": round(self.state.global_step / max(self.state.steps_per_epoch, 1), 4),
        }
        record.update({k: round(v, 6) for k, v in metrics.items()})
        self.evaluations.append(record)
        self._emit(record, kind="eval")
        return record

    # ------------------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, generator: torch.Generator) -> Path:
        final = save_training_state(self._acc, self.checkpoints, self.state, generator)
        for cb in self.callbacks:
            cb.on_save(self, final)
        return final

    def _load_checkpoint(self, path: Path, saved: TrainerState, generator: torch.Generator) -> None:
        load_training_state(self._acc, path, generator)
        max_steps = self.state.max_steps
        self.state = saved
        self.state.max_steps = max_steps
        if self._acc.is_main_process:
            self.checkpoints.drop_newer_than(saved.global_step)
            outputs.reset_metrics_file(self.output_dir, saved.global_step)
        self._acc.wait_for_everyone()

    # ------------------------------------------------------------------------------ export
    def _export(self, run: _Run, last_logs: dict[str, Any]) -> PretrainResult:
        accelerator = self._acc
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            assert run.unwrapped is not None
            provenance = {
                "pretrain_dataset": self.data_args.dataset,
                "pretrain_image_size": int(run.desc.image_size),
                "pretrain_epochs": int(run.schedule.num_epochs),
                "pretrain_seed": int(self.args.seed),
                "hfssl_version": outputs.hfssl_version(),
            }
            if run.init_record is not None:
                provenance["pretrain_init_from"] = run.init_record
            outputs.export_models(run.unwrapped, self.output_dir, self.args.export_backbone, provenance)
            outputs.record_train_runtime(self.output_dir, time.monotonic() - self._started)
        accelerator.wait_for_everyone()
        return PretrainResult(
            output_dir=self.output_dir,
            global_step=self.state.global_step,
            backbone_dir=self.output_dir / outputs.BACKBONE_DIR,
            pretext_model_dir=self.output_dir / outputs.PRETEXT_DIR,
            last_logs=last_logs,
            evaluations=list(self.evaluations),
        )


def pretrain_backbone(
    model_args: ModelArguments,
    data_args: DataArguments,
    args: PretrainingArguments,
    callbacks: Sequence[TrainerCallback] = (),
) -> PretrainResult:
    """Pretrain a backbone with a pretext task and export it; the public entry of the engine.

    Runs (or, with ``args.resume_from``, resumes) one pretraining in ``args.output_dir`` under the
    current process setup (one process, or each process of ``accelerate launch``), and returns a
    :class:`PretrainResult`: ``backbone_dir`` (load it with ``HfsslModel.from_pretrained`` or
    ``hfssl.hub.load_feature_extractor``), ``pretext_model_dir``, ``global_step``, ``last_logs``
    (the last logged losses) and ``evaluations`` (the online kNN monitor's records). User errors
    raise :class:`~hfssl.errors.HfsslError` (``TrainingError`` for a diverged loss or out of memory).
    """
    return Pretrainer(model_args, data_args, args, callbacks).train()
