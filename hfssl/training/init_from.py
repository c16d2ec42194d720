"""Continued pretraining: ``--init-from SPEC`` starts a run from an existing backbone or pretext model.

:func:`resolve_init_source` turns ``SPEC`` into an :class:`InitSource` (one place for the CLI, recipes
and the library); :func:`apply_init` loads it into a freshly built pretext model. Spec forms:

* a local hfssl **backbone** folder (``config.json`` with ``model_type: hfssl`` + ``model.safetensors``,
  e.g. ``OUTPUT_DIR/backbone``): its weights go into the pretext model's backbone and into the
  method's momentum / teacher copies of it (which start equal to the backbone, as at a fresh init);
  the method's heads stay freshly initialised. Works for every method;
* a local **pretext-model** folder (``model_type: hfssl_<method>``, ``OUTPUT_DIR/pretext_model``):
  the whole state dict - backbone, heads, decoders, momentum / teacher encoders, queues, centres -
  for a run of the same method (a combination such as ``rot:0.5+simclr`` takes a pretext model of
  the same combination);
* a folder holding ``pretext_model/`` and / or ``backbone/`` (a pretraining ``OUTPUT_DIR``, a zoo
  entry): ``pretext_model/`` is preferred;
* ``ORG/NAME[@REV]``: a Hub repo holding any of the above (a checkpoint at its root, or
  ``pretext_model/`` + ``backbone/`` subfolders), downloaded through the Hugging Face cache exactly as
  :mod:`hfssl.hub.load_any` does, so ``HF_HUB_OFFLINE=1`` works once it is cached;
* ``PREFIX:REST`` for a prefix registered with :func:`register_spec_resolver` (the model zoo's
  ``zoo:NAME``: a resolver maps ``REST`` to a local folder or to another spec such as a repo id).

Only ``model.safetensors`` is read (never a pickle, never remote code). Whatever does not fit -
another method, another backbone or backbone settings that change the weights' shapes, 2D vs 3D,
other input channels, a missing or unreadable checkpoint - is a one-line :class:`InitFromError`
naming both sides, raised while the run is set up, before anything is written.

**Step counters.** ``ema_steps`` buffers (BYOL, DINO) count the optimiser steps of the run that wrote
the checkpoint and drive its momentum / teacher-temperature schedules. They restart at 0, so the new
run's schedules span the new run (carried over, a finished schedule would leave a DINO teacher or a
BYOL target frozen at momentum 1 for the whole continuation). Every other tensor loads bit-exact.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hfssl.errors import CheckpointError, HfsslError
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from hfssl.pretext.base import PretextModel

logger = get_logger(__name__)

__all__ = [
    "InitFromError",
    "InitSource",
    "SpecResolver",
    "apply_init",
    "check_init_compatible",
    "register_spec_resolver",
    "registered_spec_prefixes",
    "resolve_init_source",
]

BACKBONE = "backbone"
PRETEXT_MODEL = "pretext_model"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# buffers that count the optimiser steps of the run that wrote a checkpoint (see the module doc)
SCHEDULE_COUNTERS = ("ema_steps",)
# what a Hub repo may hold: a checkpoint at its root and / or the two subfolders of a run's output
_HUB_WEIGHTS = (WEIGHTS_NAME, f"{PRETEXT_MODEL}/{WEIGHTS_NAME}", f"{BACKBONE}/{WEIGHTS_NAME}")
_HUB_CONFIGS = (CONFIG_NAME, f"{PRETEXT_MODEL}/{CONFIG_NAME}", f"{BACKBONE}/{CONFIG_NAME}")
# backbone settings that can change the weights' shapes (dims, channels and the name are checked first)
_BACKBONE_SHAPE_FIELDS = ("backbone_kwargs", "small_input_stem", "feature_indices", "image_size")
# a resolver prefix: two or more characters, so that a Windows drive (C:) is never taken for one
_PREFIX = re.compile(r"^[a-z][a-z0-9_-]+$")
_MAX_RESOLVER_DEPTH = 4


class InitFromError(CheckpointError):
    """An ``--init-from`` checkpoint is missing, unreadable or does not fit the run's model."""


# ---------------------------------------------------------------------------------- resolver hook
SpecResolver = Callable[[str], "str | os.PathLike[str]"]
"""Maps the part of a spec after ``PREFIX:`` to a local folder, or to another spec (``ORG/NAME@REV``)."""

_RESOLVERS: dict[str, SpecResolver] = {}
# prefixes whose resolver a module registers when it is imported: imported on first use, if installed
_RESOLVER_MODULES = {"zoo": "hfssl.zoo"}


def register_spec_resolver(prefix: str, fn: SpecResolver, *, replace: bool = False) -> None:
    """Make ``--init-from PREFIX:REST`` resolve through ``fn(REST)``.

    ``fn`` returns a local folder (any form :func:`resolve_init_source` accepts: a backbone or
    pretext-model folder, or one holding ``pretext_model/`` / ``backbone/``) or another spec, e.g. a
    Hub repo id ``ORG/NAME@REV``, which is then resolved (and downloaded through the Hugging Face
    cache) as usual. It raises an :class:`~hfssl.errors.HfsslError` for a name it does not know.
    The model zoo registers ``zoo`` this way; ``hfssl.zoo`` is imported on the first ``zoo:`` spec.

    Args:
        prefix: lower-case letters, digits, ``-`` and ``_``, two characters or more (``"zoo"``).
        fn: the resolver.
        replace: replace a different resolver already registered for ``prefix``.
    """
    if not _PREFIX.match(prefix):
        raise ValueError(f"spec resolver prefix must match {_PREFIX.pattern}, got {prefix!r}")
    current = _RESOLVERS.get(prefix)
    if current is not None and current is not fn and not replace:
        raise ValueError(f"a spec resolver for {prefix!r} is already registered ({current!r})")
    _RESOLVERS[prefix] = fn


def registered_spec_prefixes() -> list[str]:
    """The prefixes that have a resolver now (``zoo`` only once the zoo module has registered it)."""
    return sorted(_RESOLVERS)


def _resolver_for(prefix: str, spec: str) -> SpecResolver:
    if prefix not in _RESOLVERS and prefix in _RESOLVER_MODULES:
        import importlib

        module = _RESOLVER_MODULES[prefix]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is None or not module.startswith(err.name):
                raise  # the module exists but one of its own imports is missing
    if prefix not in _RESOLVERS:
        known = ", ".join(f"{p}:" for p in registered_spec_prefixes()) or "none"
        missing = f" (this hfssl has no {_RESOLVER_MODULES[prefix]})" if prefix in _RESOLVER_MODULES else ""
        raise InitFromError(
            f"init-from spec {spec!r} has the prefix {prefix}:, for which no resolver is registered{missing} "
            f"(registered: {known})",
            "give a checkpoint folder or a Hub repo ORG/NAME[@REV]",
        )
    return _RESOLVERS[prefix]


# -------------------------------------------------------------------------------------- the source
@dataclass(frozen=True)
class InitSource:
    """A resolved ``--init-from`` checkpoint.

    ``spec``: what the user gave; ``kind``: ``"backbone"`` or ``"pretext_model"``; ``folder``: the
    local folder with ``config.json`` + ``model.safetensors`` (in the Hugging Face cache for Hub
    specs); ``config``: its ``config.json``; ``sha256``: the hash of its ``model.safetensors``;
    ``shapes``: every tensor's shape, read from the safetensors header; ``pretrain_dataset``: the
    data it was pretrained on, when recorded.
    """

    spec: str
    kind: Literal["backbone", "pretext_model"]
    folder: Path
    config: dict[str, Any]
    sha256: str
    shapes: dict[str, tuple[int, ...]] = field(repr=False)
    pretrain_dataset: str | None = None

    @property
    def weights_file(self) -> Path:
        return self.folder / WEIGHTS_NAME

    @property
    def backbone_config(self) -> dict[str, Any]:
        """The backbone's config (the config itself for a backbone, its ``backbone_config`` otherwise)."""
        if self.kind == BACKBONE:
            return self.config
        return dict(self.config.get("backbone_config") or {})

    @property
    def methods(self) -> list[str]:
        """The pretext method(s): the model's own for a pretext model, the recorded ones for a backbone."""
        if self.kind == BACKBONE:
            return [str(m) for m in self.config.get("pretext_methods") or []]
        name = str(self.config.get("model_type", "")).removeprefix("hfssl_")
        if name == "multi":
            return [str(m) for m in self.config.get("methods") or []]
        return [name]

    @property
    def backbone_folder(self) -> Path | None:
        """The sibling ``backbone/`` folder of a pretext model (a run's or a zoo entry's), if there is one."""
        sibling = self.folder.parent / BACKBONE
        if self.kind == PRETEXT_MODEL and (sibling / CONFIG_NAME).is_file():
            return sibling
        return None

    def provenance(self) -> dict[str, Any]:
        """What the run record and the exported backbone's ``pretrain_init_from`` say about the source."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "sha256": self.sha256,
            "pretext_methods": self.methods or None,
            "pretrain_dataset": self.pretrain_dataset,
        }

    def describe(self) -> str:
        """One line for the run banner."""
        what = f"{'+'.join(self.methods)} pretext model" if self.kind == PRETEXT_MODEL else "backbone"
        return f"{self.spec} ({what}, {self.backbone_config.get('backbone')}, sha256 {self.sha256[:12]})"


def resolve_init_source(spec: str | os.PathLike[str]) -> InitSource:
    """Resolve an ``--init-from`` spec (see the module docstring for the forms) to an :class:`InitSource`.

    Downloads Hub repos into the Hugging Face cache (safetensors only); reads the config and the
    safetensors header and hashes the weights. Raises :class:`InitFromError` (or a
    :class:`~hfssl.errors.HubError` when the Hub cannot give the files) for a spec that does not lead
    to a readable hfssl checkpoint; it writes nothing.
    """
    text = str(spec).strip()
    if not text:
        raise InitFromError(
            "--init-from is empty", "give a checkpoint folder, a Hub repo ORG/NAME[@REV] or zoo:NAME"
        )
    folder = _locate(text, text, depth=0)
    return _read_source(_checkpoint_folder(folder, text), text)


def _locate(text: str, origin: str, depth: int) -> Path:
    """The local folder ``text`` names: an existing path, a resolver prefix, or a Hub repo id."""
    from hfssl.hub.load_any import _looks_like_path

    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InitFromError(
                f"init-from {origin} is a file, not a checkpoint folder",
                "give the folder that holds config.json and model.safetensors",
            )
        return path
    prefix, colon, rest = text.partition(":")
    if colon and _PREFIX.match(prefix):
        if depth >= _MAX_RESOLVER_DEPTH:
            raise InitFromError(
                f"init-from spec {origin!r} resolves through more than {_MAX_RESOLVER_DEPTH} resolvers",
                "make the resolver return a folder or a Hub repo id",
            )
        target = str(_resolver_for(prefix, text)(rest))
        return _locate(target, origin if target == text else f"{origin} (-> {target})", depth + 1)
    if _looks_like_path(text):
        raise InitFromError(
            f"init-from folder {origin} does not exist",
            "give an existing backbone/ or pretext_model/ folder or pretraining output dir, "
            "a Hub repo ORG/NAME[@REV] or zoo:NAME",
        )
    if "/" in text:
        try:
            return _download(text)
        except HfsslError as err:  # the Hub's own one-line errors, said of the init-from spec
            repo_id = text.partition("@")[0]
            problem = err.problem.removeprefix(f"{repo_id}: ")
            if "@" not in text:  # ORG/NAME may also have been meant as a local folder
                problem += f"; there is no local folder {text} either"
            raise type(err)(f"init-from {origin}: {problem}", err.hint) from err
    raise InitFromError(
        f"cannot resolve init-from spec {origin!r}: no such folder, and not a Hub repo id ORG/NAME",
        "give a checkpoint folder, a Hub repo ORG/NAME[@REV] or zoo:NAME",
    )


def _download(text: str) -> Path:
    """A Hub repo's configs and safetensors weights (root and ``pretext_model/`` / ``backbone/``), cached."""
    from hfssl.hub.load_any import _split_revision
    from hfssl.hub.remote import safe_snapshot

    repo_id, revision = _split_revision(text, None)
    return safe_snapshot(repo_id, revision=revision, weights=_HUB_WEIGHTS, extra=_HUB_CONFIGS)


def _checkpoint_folder(folder: Path, spec: str) -> Path:
    """The checkpoint inside ``folder``: its ``pretext_model/``, else itself, else its ``backbone/``."""
    for candidate in (folder / PRETEXT_MODEL, folder, folder / BACKBONE):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    if (folder / "trainer_state.json").is_file():
        hint = (
            "this is a training checkpoint: continue its run with --resume-from, or give the run's "
            "pretext_model/ folder"
        )
    else:
        hint = "give a folder written by save_pretrained (a run's pretext_model/ or backbone/) or its parent"
    raise InitFromError(
        f"init-from {spec}: {folder} holds no hfssl checkpoint (config.json + model.safetensors, or "
        "pretext_model/ or backbone/ subfolders)",
        hint,
    )


def _read_source(folder: Path, spec: str) -> InitSource:
    from hfssl.hub.load_any import PICKLE_NAMES, read_checkpoint_config
    from hfssl.utils.io import file_sha256

    try:
        config = read_checkpoint_config(folder)
    except CheckpointError as err:
        raise InitFromError(f"init-from {spec}: {err.problem}", err.hint) from err
    model_type = str(config.get("model_type", ""))
    if model_type == "hfssl":
        kind: Literal["backbone", "pretext_model"] = BACKBONE
    elif model_type.startswith("hfssl_"):
        kind = PRETEXT_MODEL
    else:
        raise InitFromError(
            f"init-from {spec}: {folder} holds a {model_type or 'unknown'!r} model, not an hfssl backbone "
            "or pretext model",
            "give an hfssl checkpoint (a pretraining run's pretext_model/ or backbone/ folder)",
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = [n for n in PICKLE_NAMES if (folder / n).is_file()]
        what = f"only pickle weights ({', '.join(pickles)})" if pickles else f"no {WEIGHTS_NAME}"
        raise InitFromError(
            f"init-from {spec}: {folder} has {what}",
            "hfssl loads safetensors only; re-save the checkpoint with save_pretrained",
        )
    source = InitSource(
        spec=spec,
        kind=kind,
        folder=folder,
        config=config,
        sha256=file_sha256(weights),
        shapes=_read_shapes(weights, spec),
        pretrain_dataset=_pretrain_dataset(folder, config),
    )
    if kind == PRETEXT_MODEL:
        from hfssl.pretext.registry import get_method_info

        for name in source.methods or [model_type]:
            get_method_info(name)  # a ConfigError for a method this hfssl does not know
    return source


def _read_shapes(weights: Path, spec: str) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape from the safetensors header (nothing is loaded)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise InitFromError(
            f"init-from {spec}: cannot read {weights} ({' '.join(str(err).split())[:200]})",
            "re-save the checkpoint with save_pretrained, or download it again",
        ) from err


def _pretrain_dataset(folder: Path, config: dict[str, Any]) -> str | None:
    """The source's pretraining data: its config's provenance, else its run's ``training_args.json``."""
    if config.get("pretrain_dataset"):
        return str(config["pretrain_dataset"])
    args_file = folder.parent / "training_args.json"
    if folder.name in (PRETEXT_MODEL, BACKBONE) and args_file.is_file():
        try:
            dataset = json.loads(args_file.read_text(encoding="utf-8")).get("dataset")
        except (ValueError, OSError, AttributeError):
            return None  # provenance only: a broken record must not block the run
        return str(dataset) if dataset else None
    return None


# -------------------------------------------------------------------------------------- the checks
def check_init_compatible(
    source: InitSource, *, method: str, backbone: str, spatial_dims: int, in_chans: int
) -> None:
    """The checks that need no model: method (pretext models only), 2D / 3D, input channels, backbone.

    Called by the trainer before it builds the model (so the messages speak of the run's flags);
    :func:`apply_init` repeats them against the model and then compares every tensor's shape.
    ``method``: the run's method spec (``simclr``, ``rot:0.5+simclr``).
    """
    from hfssl.pretext.registry import parse_method_spec

    spec = source.spec
    if source.kind == PRETEXT_MODEL:
        theirs, ours = source.methods, list(parse_method_spec(method).methods)
        if theirs != ours:
            folder = source.backbone_folder
            where = f" ({folder})" if folder is not None else ""
            raise InitFromError(
                f"init-from checkpoint {spec} is a {'+'.join(theirs)} pretext model, "
                f"this run is {'+'.join(ours)}",
                f"use --method {'+'.join(theirs)} to continue it, or pass its backbone/ folder{where} "
                "to start only the backbone",
            )
    bcfg = source.backbone_config
    name = str(bcfg.get("backbone"))
    dims, chans = int(bcfg.get("spatial_dims", 2)), int(bcfg.get("in_chans", 1))
    if dims != spatial_dims:
        raise InitFromError(
            f"init-from checkpoint {spec} is a {dims}D {name} model, this run's data is {spatial_dims}D",
            f"start a {spatial_dims}D run from a {spatial_dims}D checkpoint, or pretrain on {dims}D data",
        )
    if chans != in_chans:
        raise InitFromError(
            f"init-from checkpoint {spec} takes {chans} input channel(s), this run's data has {in_chans}",
            f"start from a checkpoint trained on {in_chans}-channel images, "
            f"or pretrain on {chans}-channel data",
        )
    if name != backbone:
        raise InitFromError(
            f"init-from checkpoint {spec} has a {name} backbone, this run's is {backbone}",
            f"pass --backbone {name} (with the checkpoint's --backbone-kwargs) to continue it, or give a "
            f"{backbone} checkpoint",
        )


def _run_methods(model: PretextModel) -> str:
    return "+".join(getattr(model, "method_names", None) or [model.method_name])


def _differing_settings(source: InitSource, model: PretextModel) -> list[str]:
    """Settings that differ between the checkpoint and the run and may explain a shape mismatch."""
    ours_backbone = dict(model.config.backbone_config or {})
    theirs_backbone = source.backbone_config
    pairs = [(f, theirs_backbone.get(f), ours_backbone.get(f)) for f in _BACKBONE_SHAPE_FIELDS]
    if source.kind == PRETEXT_MODEL:
        from hfssl.pretext.multi import method_config_fields

        ours = model.config.to_dict()
        if source.config.get("model_type") == "hfssl_multi":
            theirs_sub = source.config.get("method_configs") or {}
            for name, settings in (ours.get("method_configs") or {}).items():
                for key, value in settings.items():
                    pairs.append((f"{name}.{key}", (theirs_sub.get(name) or {}).get(key), value))
        else:
            for key in method_config_fields(type(model.config)):
                if key != "momentum_total_steps":  # set by the trainer for each run
                    pairs.append((key, source.config.get(key), ours.get(key)))
    return [
        f"{key} {json.dumps(theirs, sort_keys=True)} there vs {json.dumps(ours, sort_keys=True)} here"
        for key, theirs, ours in pairs
        if _normalise(theirs) != _normalise(ours)
        and not (key == "backbone_kwargs" and not theirs and not ours)
    ]


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _check_shapes(
    source: InitSource,
    model: PretextModel,
    expected: dict[str, tuple[int, ...]],
    given: dict[str, tuple[int, ...]],
    ignore_extra: tuple[str, ...] = (),
) -> None:
    """Refuse a checkpoint whose tensors are not exactly the model's (names and shapes)."""
    problem = None
    for key, shape in expected.items():
        if key not in given:
            problem = f"this run's tensor {key} {list(shape)} is not in the checkpoint"
        elif tuple(given[key]) != tuple(shape):
            problem = f"tensor {key} is {list(given[key])} there, {list(shape)} here"
        if problem:
            break
    if problem is None:
        extra = [k for k in given if k not in expected and not k.startswith(ignore_extra)]
        if extra:
            problem = (
                f"the checkpoint's tensor {extra[0]} {list(given[extra[0]])} has no place in this run's model"
            )
    if problem is None:
        return
    differing = _differing_settings(source, model)
    detail = f" (settings that differ: {'; '.join(differing[:3])})" if differing else ""
    raise InitFromError(
        f"init-from checkpoint {source.spec} does not fit this run's {_run_methods(model)} model: "
        f"{problem}{detail}",
        "use the checkpoint's settings (--backbone-kwargs / --method-kwargs) to continue it"
        + (
            ", or pass its backbone/ folder to start only the backbone"
            if source.kind == PRETEXT_MODEL
            else ""
        ),
    )


# --------------------------------------------------------------------------------------- loading
def _load_tensors(source: InitSource) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(source.weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise InitFromError(
            f"init-from {source.spec}: cannot read {source.weights_file} "
            f"({' '.join(str(err).split())[:200]})",
            "re-save the checkpoint with save_pretrained, or download it again",
        ) from err


def _backbone_keys(shapes: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """Checkpoint key -> ``HfsslModel`` key: a backbone's own keys, or a task model's under ``hfssl.``."""
    prefix = "hfssl."
    if any(k.startswith(prefix) for k in shapes) and not any(k.startswith("backbone.") for k in shapes):
        # HfsslForImageClassification / HfsslForSegmentation: the backbone and its task head
        return {k: k[len(prefix) :] for k in shapes if k.startswith(prefix)}
    return {k: k for k in shapes}


def apply_init(model: PretextModel, source: InitSource) -> None:
    """Load ``source`` into ``model`` in place (before the optimiser's first step).

    A backbone goes into ``model.backbone`` and every momentum / teacher copy of it
    (``model.backbone_modules()``); the heads keep their fresh initialisation. A pretext model's
    whole state dict is loaded (``strict``), then the step counters restart at 0 (module doc).
    Raises :class:`InitFromError`, before any tensor is copied, when the checkpoint does not fit.
    """
    cfg = model.config.get_backbone_config()
    check_init_compatible(
        source,
        method=_run_methods(model),
        backbone=cfg.backbone,
        spatial_dims=cfg.spatial_dims,
        in_chans=cfg.in_chans,
    )
    import torch

    if source.kind == BACKBONE:
        key_map = _backbone_keys(source.shapes)
        expected = {k: tuple(v.shape) for k, v in model.backbone.state_dict().items()}
        given = {ours: source.shapes[theirs] for theirs, ours in key_map.items()}
        # a task model's head (classifier, decoder) is an expected extra, as in HfsslModel.from_pretrained
        _check_shapes(source, model, expected, given, ignore_extra=("classifier.", "decoder."))
        tensors = _load_tensors(source)
        state = {ours: tensors[theirs] for theirs, ours in key_map.items() if ours in expected}
        with torch.no_grad():
            for module in model.backbone_modules():
                module.load_state_dict(state, strict=True)
    else:
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        _check_shapes(source, model, expected, dict(source.shapes))
        tensors = _load_tensors(source)
        with torch.no_grad():
            model.load_state_dict(tensors, strict=True)
            for name, buffer in model.named_buffers():
                if name.rpartition(".")[2] in SCHEDULE_COUNTERS:
                    buffer.zero_()
    logger.info("initialised the %s model from %s", _run_methods(model), source.describe())


def init_record_of(output_dir: Path) -> dict[str, Any] | None:
    """The ``init_source`` an earlier session of the run in ``output_dir`` recorded (for a resumed run)."""
    args_file = output_dir / "training_args.json"
    if not args_file.is_file():
        return None
    try:
        record = json.loads(args_file.read_text(encoding="utf-8")).get("init_source")
    except (ValueError, OSError, AttributeError):
        return None
    return record if isinstance(record, dict) else None
