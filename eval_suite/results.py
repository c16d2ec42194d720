"""Result records: schema, ids, an atomic on-disk store, and model-card ``EvalResult``s.

One JSON file per (checkpoint, dataset, protocol, regime, policy, seed), named
``<record_id>.json`` where ``record_id`` is the sha256 of the canonical JSON of those identifying
fields, so a runner can compute it *before* running (``record_key``) and skip finished runs. The
schema (version 2) is described in ``eval_suite/README.md``.

Version 2 adds ``corruption``: ``null`` for the clean test split, else ``{"name", "severity",
"seed"}`` of the test-time corruption (``hfssl evaluate --corruption``). It identifies the run only
when set, so clean records keep their version-1 ids; version-1 files are upgraded on read
(``upgrade_record``: ``corruption = null``).

Files are written to a unique temporary sibling and renamed into place (``os.replace`` is atomic
on POSIX and Windows), so concurrent writers never leave a partial file under a record's name.
Undefined metric values (``nan``) are stored as JSON ``null``; files are strict JSON.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfssl.errors import ConfigError, DataError
from hfssl.utils.io import write_text_atomic
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import EvalResult

logger = get_logger("eval_suite.results")

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # older versions are upgraded on read (upgrade_record)
TASKS = ("binary", "multiclass", "ordinal", "multilabel", "segmentation")
VERSION_PACKAGES = (
    "hfssl",
    "torch",
    "transformers",
    "timm",
    "scikit-learn",
    "datasets",
    "evaluate",
    "huggingface-hub",
    "numpy",
)
# Fields of each part that identify a run (everything else is description or outcome).
_DATASET_IDENTITY = ("name", "image_size", "train_split", "eval_split")

__all__ = [
    "SCHEMA_VERSION",
    "aggregate_records",
    "compute_record_id",
    "eval_results_to_rows",
    "find_record",
    "identity_of",
    "load_records",
    "make_record",
    "record_key",
    "to_eval_results",
    "upgrade_record",
    "validate_record",
    "write_record",
]


# ---------------------------------------------------------------- JSON helpers


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, tuples to lists, nan/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy array / scalar, torch tensor
        return to_jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a result record")


def _canonical(obj: Any) -> Any:
    """Hash-stable form: integral floats become ints (1.0 and 1 name the same regime)."""
    if isinstance(obj, Mapping):
        return {k: _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    return obj


def _canonical_json(obj: Any) -> str:
    return json.dumps(_canonical(to_jsonable(obj)), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------- identity


def identity_of(
    *,
    checkpoint: Mapping[str, Any],
    dataset: Mapping[str, Any],
    protocol: Mapping[str, Any],
    regime: Mapping[str, Any],
    policy: Mapping[str, Any],
    seed: int,
    corruption: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The identifying subset of a run: checkpoint ``spec`` + ``content_hash`` (+ ``random_init``),
    dataset name / image size / splits, protocol name + params, the whole regime and policy, seed,
    and the test-time corruption when there is one (absent for clean runs, whose ids are unchanged
    since schema 1).

    Pass the same dicts as to ``make_record`` (extra keys are ignored where they only describe)."""
    identity = {
        "checkpoint": {
            "spec": checkpoint.get("spec"),
            "content_hash": checkpoint.get("content_hash"),
            "random_init": bool(checkpoint.get("random_init", False)),
        },
        "dataset": {k: dataset.get(k) for k in _DATASET_IDENTITY},
        "protocol": {"name": protocol.get("name"), "params": dict(protocol.get("params") or {})},
        "regime": dict(regime),
        "policy": dict(policy),
        "seed": seed,
    }
    if corruption is not None:
        identity["corruption"] = dict(corruption)
    return identity


def compute_record_id(identity: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces, integral floats as ints)."""
    return hashlib.sha256(_canonical_json(identity).encode("utf-8")).hexdigest()


def record_key(
    *,
    checkpoint: Mapping[str, Any],
    dataset: Mapping[str, Any],
    protocol: Mapping[str, Any],
    regime: Mapping[str, Any],
    policy: Mapping[str, Any],
    seed: int,
    corruption: Mapping[str, Any] | None = None,
) -> str:
    """The ``record_id`` a run will get, computable before running it."""
    return compute_record_id(
        identity_of(
            checkpoint=checkpoint,
            dataset=dataset,
            protocol=protocol,
            regime=regime,
            policy=policy,
            seed=seed,
            corruption=corruption,
        )
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a result (``"not installed"`` when absent)."""
    from importlib import metadata

    import eval_suite

    versions = {"eval_suite": eval_suite.__version__}
    for name in VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def make_record(
    *,
    checkpoint: Mapping[str, Any],
    dataset: Mapping[str, Any],
    protocol: Mapping[str, Any],
    regime: Mapping[str, Any],
    policy: Mapping[str, Any],
    seed: int,
    metrics: Mapping[str, Any],
    ci95: Mapping[str, Any] | None = None,
    test_outputs: Mapping[str, Any] | None = None,
    timings: Mapping[str, Any] | None = None,
    corruption: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete schema-2 record (JSON-ready: numpy → Python, nan → None), validated.

    ``corruption``: ``None`` (clean test split) or ``{"name", "severity", "seed"}``."""
    parts = {
        "checkpoint": checkpoint,
        "dataset": dataset,
        "protocol": protocol,
        "regime": regime,
        "policy": policy,
        "seed": seed,
    }
    record = {
        "schema_version": SCHEMA_VERSION,
        "record_id": record_key(**parts, corruption=corruption),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **to_jsonable(parts),
        "corruption": to_jsonable(dict(corruption)) if corruption is not None else None,
        "metrics": to_jsonable(metrics),
        "ci95": to_jsonable(ci95 or {}),
        "test_outputs": to_jsonable(test_outputs or {}),
        "timings": to_jsonable(timings or {}),
        "versions": library_versions(),
    }
    problems = validate_record(record)
    if problems:
        raise ConfigError(f"invalid result record: {'; '.join(problems)}", "fix the fields named above")
    return record


# ---------------------------------------------------------------- validation


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_metric_value(name: str, value: Any, problems: list[str]) -> None:
    if value is None or _is_number(value):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_metric_value(f"{name}.{k}", v, problems)
    elif isinstance(value, list):
        if not all(v is None or _is_number(v) for v in value):
            problems.append(f"metrics.{name} must be a list of numbers")
    else:
        problems.append(f"metrics.{name} must be a number, null, list or object, got {type(value).__name__}")


_KIND_NAMES = {str: "a string", int: "an integer", Mapping: "an object"}


def upgrade_record(obj: Any) -> Any:
    """A record of an older schema in the current one (a copy; anything else unchanged).

    1 -> 2: ``corruption = None`` (version-1 runs were all on the clean test split; their ids do
    not change, because a ``None`` corruption is not part of the identity)."""
    if isinstance(obj, Mapping) and obj.get("schema_version") == 1:
        return {**obj, "schema_version": 2, "corruption": None}
    return obj


def _check_corruption(value: Any, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.append("corruption must be null or an object {name, severity, seed}")
        return
    if not isinstance(value.get("name"), str):
        problems.append("corruption.name must be a string")
    severity = value.get("severity")
    if not (isinstance(severity, int) and not isinstance(severity, bool) and 1 <= severity <= 5):
        problems.append(f"corruption.severity must be an integer 1-5, got {severity!r}")


def validate_record(obj: Any) -> list[str]:
    """Problems with ``obj`` as a schema-2 record; an empty list means valid (upgrade older records
    with ``upgrade_record`` first).

    Hand-written checks (``jsonschema`` is not a dependency): required fields and types, a known
    task, and a ``record_id`` that matches the identifying fields (catches edited files)."""
    if not isinstance(obj, Mapping):
        return [f"a record must be a JSON object, got {type(obj).__name__}"]
    problems: list[str] = []
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        return [f"schema_version is {version!r}, expected {SCHEMA_VERSION}"]
    required = {
        "record_id": str,
        "created_at": str,
        "checkpoint": Mapping,
        "dataset": Mapping,
        "protocol": Mapping,
        "regime": Mapping,
        "policy": Mapping,
        "seed": int,
        "metrics": Mapping,
        "ci95": Mapping,
        "test_outputs": Mapping,
        "timings": Mapping,
        "versions": Mapping,
    }
    if "corruption" not in obj:
        problems.append("missing field 'corruption' (null for the clean test split)")
    else:
        _check_corruption(obj["corruption"], problems)
    for key, kind in required.items():
        if key not in obj:
            problems.append(f"missing field {key!r}")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            problems.append(f"{key} must be {_KIND_NAMES[kind]}, got {type(obj[key]).__name__}")
    if problems:
        return problems
    if not re.fullmatch(r"[0-9a-f]{64}", obj["record_id"]):
        problems.append("record_id must be 64 lowercase hex characters")
    try:
        _dt.datetime.fromisoformat(obj["created_at"])
    except ValueError:
        problems.append(f"created_at {obj['created_at']!r} is not an ISO date-time")
    if not isinstance(obj["checkpoint"].get("spec"), str):
        problems.append("checkpoint.spec must be a string")
    content_hash = obj["checkpoint"].get("content_hash")
    if content_hash is not None and not isinstance(content_hash, str):
        problems.append("checkpoint.content_hash must be a string or null")
    if not isinstance(obj["dataset"].get("name"), str):
        problems.append("dataset.name must be a string")
    if obj["dataset"].get("task") not in TASKS:
        problems.append(f"dataset.task must be one of {', '.join(TASKS)}, got {obj['dataset'].get('task')!r}")
    if not isinstance(obj["protocol"].get("name"), str):
        problems.append("protocol.name must be a string")
    if not isinstance(obj["protocol"].get("params", {}), Mapping):
        problems.append("protocol.params must be an object")
    for name, value in obj["metrics"].items():
        _check_metric_value(name, value, problems)
    for name, value in obj["ci95"].items():
        if value is not None and not (
            isinstance(value, list) and len(value) == 2 and all(v is None or _is_number(v) for v in value)
        ):
            problems.append(f"ci95.{name} must be [low, high]")
    for name, value in obj["timings"].items():
        if value is not None and not _is_number(value):
            problems.append(f"timings.{name} must be a number")
    if not problems:
        expected = record_key(
            checkpoint=obj["checkpoint"],
            dataset=obj["dataset"],
            protocol=obj["protocol"],
            regime=obj["regime"],
            policy=obj["policy"],
            seed=obj["seed"],
            corruption=obj["corruption"],
        )
        if obj["record_id"] != expected:
            problems.append("record_id does not match the record's identifying fields (edited by hand?)")
    return problems


# ---------------------------------------------------------------- store


def record_precision(record: Mapping[str, Any]) -> str | None:
    """The mixed precision a record's features or training ran in (``no`` = fp32), None if unrecorded."""
    runtime = (record.get("fit") or {}).get("runtime") or {}
    return runtime.get("mixed_precision")


def write_record(record: Mapping[str, Any], results_dir: str | Path) -> Path:
    """Write ``record`` to ``<results_dir>/<record_id>.json`` atomically (temp file + rename).

    Concurrent writers (threads or processes) each use their own temporary file, so a reader only
    ever sees complete records; the same record written twice simply ends up written once."""
    problems = validate_record(record)
    if problems:
        raise ConfigError(
            f"refusing to write an invalid result record: {'; '.join(problems)}", "build it with make_record"
        )
    path = Path(results_dir) / f"{record['record_id']}.json"
    text = json.dumps(to_jsonable(record), indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(path, text)
    return path


def _read_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot read ({exc})"
    except json.JSONDecodeError as exc:
        return None, f"{path}: not valid JSON (truncated or corrupt? {exc.msg} at line {exc.lineno})"
    obj = upgrade_record(obj)
    problems = validate_record(obj)
    if problems:
        return None, f"{path}: not a valid result record: {'; '.join(problems)}"
    return obj, None


def find_record(results_dir: str | Path, record_id: str) -> dict[str, Any] | None:
    """The stored record with this id, or None when absent or unreadable (it is then re-run)."""
    path = Path(results_dir) / f"{record_id}.json"
    if not path.is_file():
        return None
    record, problem = _read_record(path)
    if problem:
        logger.warning("ignoring %s", problem)
    return record


def load_records(*paths: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records from files and folders (searched recursively for ``*.json``).

    Never raises on bad content: unreadable, malformed, partial or wrong-schema files become
    one-line messages in the second list. A record found twice is returned once."""
    records: list[dict[str, Any]] = []
    messages: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
        elif root.is_file():
            files = [root]
        else:
            messages.append(f"{root}: no such file or folder")
            continue
        for path in files:
            record, problem = _read_record(path)
            if problem:
                messages.append(problem)
            elif record["record_id"] not in seen:
                seen.add(record["record_id"])
                records.append(record)
    return records, messages


# ---------------------------------------------------------------- aggregation and model cards


def _group_key(record: Mapping[str, Any]) -> str:
    ds = record["dataset"]
    return _canonical_json(
        {
            "dataset": {k: ds.get(k) for k in _DATASET_IDENTITY},
            "protocol": {
                "name": record["protocol"]["name"],
                "params": record["protocol"].get("params") or {},
            },
            "regime": record["regime"],
            "policy": record["policy"],
            "corruption": _corruption_label(record.get("corruption")),
        }
    )


def _corruption_label(corruption: Mapping[str, Any] | None) -> str | None:
    """``name:severity`` of a record's corruption, ``None`` for the clean test split."""
    if not corruption:
        return None
    return f"{corruption.get('name')}:{corruption.get('severity')}"


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Flat scalar metrics: per_class is left out, group_accuracy becomes group_accuracy.many ..."""
    out: dict[str, float | None] = {}
    for name, value in metrics.items():
        if name == "per_class":
            continue
        if isinstance(value, Mapping):
            for k, v in value.items():
                if v is None or _is_number(v):
                    out[f"{name}.{k}"] = v
        elif value is None or _is_number(value):
            out[name] = value
    return out


def aggregate_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group records of the same checkpoint, dataset, protocol, regime and policy over seeds.

    Returns one dict per group: ``checkpoint``, ``dataset``, ``protocol``, ``regime``, ``policy``
    (from the first record), ``seeds`` (sorted), ``n_seeds`` and ``metrics`` =
    ``{name: {"mean", "std", "n", "ci95"}}`` (see ``eval_suite.stats.summarise``; group accuracy is
    flattened as ``group_accuracy.many`` etc.)."""
    from eval_suite.stats import metric_bounds, summarise

    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        ck = rec["checkpoint"]
        ckey = _canonical_json(
            {"spec": ck.get("spec"), "hash": ck.get("content_hash"), "ri": ck.get("random_init")}
        )
        groups.setdefault((ckey, _group_key(rec)), []).append(rec)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda r: r["seed"])
        first = members[0]
        names = list(dict.fromkeys(n for r in members for n in _scalar_metrics(r["metrics"])))
        metrics = {
            n: summarise((_scalar_metrics(r["metrics"]).get(n) for r in members), metric_bounds(n))
            for n in names
        }
        for n, summary in metrics.items():
            summary["bootstrap_ci95"] = _mean_bootstrap_ci(members, n)
        out.append(
            {
                "checkpoint": dict(first["checkpoint"]),
                "dataset": dict(first["dataset"]),
                "protocol": dict(first["protocol"]),
                "regime": dict(first["regime"]),
                "policy": dict(first["policy"]),
                "seeds": [r["seed"] for r in members],
                "n_seeds": len(members),
                "metrics": metrics,
            }
        )
    return out


def _mean_bootstrap_ci(members: Sequence[Mapping[str, Any]], name: str) -> tuple[float, float] | None:
    """Mean over seeds of the per-record bootstrap CI of ``name`` (None when no record has one)."""
    cis = [r.get("ci95", {}).get(name) for r in members]
    cis = [c for c in cis if c and c[0] is not None and c[1] is not None]
    if not cis:
        return None
    return (sum(c[0] for c in cis) / len(cis), sum(c[1] for c in cis) / len(cis))


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(_canonical(to_jsonable(value)), sort_keys=True)


def _config_name(group: Mapping[str, Any]) -> str:
    """Readable, unique ``dataset_config``: protocol, regime and policy as k=v; protocol params
    (often long) as a short hash, their full values live in ``dataset_args``."""
    parts = [f"protocol={group['protocol']['name']}"]
    parts += [f"{k}={_short(v)}" for k, v in sorted(group["regime"].items())]
    parts += [f"{k}={_short(v)}" for k, v in sorted(group["policy"].items())]
    params = group["protocol"].get("params") or {}
    if params:
        parts.append("params=" + hashlib.sha256(_canonical_json(params).encode()).hexdigest()[:8])
    if group["dataset"].get("image_size") is not None:
        parts.insert(0, f"image_size={group['dataset']['image_size']}")
    return ";".join(parts)


def _finite(x: float | None) -> float | None:
    """nan -> None; no rounding: YAML keeps a float's repr exactly, and readers compare numbers."""
    return None if x is None or not math.isfinite(x) else float(x)


def to_eval_results(
    records: Sequence[Mapping[str, Any]], *, model_name: str | None = None
) -> list[EvalResult]:
    """Model-card ``EvalResult``s: one per metric of each (dataset, protocol, regime, policy) group,
    ``metric_value`` = mean over seeds.

    Mapping (survives ``ModelCard`` YAML round trips; read it back with ``eval_results_to_rows``):

    * ``task_type``: ``image-classification`` | ``image-segmentation``; ``task_name``: readable;
    * ``dataset_type``: ``dataset.name``; ``dataset_name``: e.g. ``"breastmnist (28 px)"``;
      ``dataset_split``: ``dataset.eval_split``;
    * ``dataset_config``: ``image_size=28;protocol=linear;imbalance_ratio=natural;label_fraction=1;
      augment=none;loss=ce;mixup=0;sampler=none[;params=<hash8>]`` — unique per group, because the
      Hub groups results by (task, dataset type, config, split, revision);
    * ``dataset_args``: ``{"image_size", "task", "protocol", "protocol_params", "regime", "policy",
      "n_seeds", "seeds"}`` (structured copy of the above);
    * ``metric_type``: the metric name (``balanced_accuracy``, ``group_accuracy.many`` ...);
      ``metric_name``: readable; ``metric_args``: ``{"std", "n_seeds", "ci95", "ci_kind"}``: std and
      t-interval over seeds (``ci_kind="seeds"``), or for a single seed that run's bootstrap CI
      over test samples (``ci_kind="bootstrap"``).

    A card describes one model: the records must belong to one checkpoint, or ``model_name``
    (matched against each record's checkpoint ``name``, ``spec`` or ``content_hash``) picks it.
    ``ModelCardData(eval_results=..., model_name=...)`` still needs the card's model name."""
    from huggingface_hub import EvalResult

    from eval_suite.metrics import METRIC_LABELS

    if model_name is not None:
        records = [r for r in records if model_name in _checkpoint_names(r["checkpoint"])]
        if not records:
            raise ConfigError(
                f"no record of a checkpoint named {model_name!r}", "check the name, spec or hash"
            )
    groups = aggregate_records(records)
    checkpoints = {(g["checkpoint"].get("spec"), g["checkpoint"].get("content_hash")) for g in groups}
    if len(checkpoints) > 1:
        raise ConfigError(
            f"records of {len(checkpoints)} different checkpoints cannot go on one model card",
            "pass model_name= to pick one, or only the records of the card's checkpoint",
        )
    results = []
    for g in sorted(groups, key=lambda g: (g["dataset"]["name"], _config_name(g))):
        seg = g["dataset"].get("task") == "segmentation"
        size = g["dataset"].get("image_size")
        args = {
            "image_size": size,
            "task": g["dataset"].get("task"),
            "protocol": g["protocol"]["name"],
            "protocol_params": to_jsonable(g["protocol"].get("params") or {}),
            "regime": to_jsonable(g["regime"]),
            "policy": to_jsonable(g["policy"]),
            "n_seeds": g["n_seeds"],
            "seeds": g["seeds"],
            "random_init": bool(g["checkpoint"].get("random_init", False)),
        }
        for metric, summary in g["metrics"].items():
            if summary["n"] == 0:
                continue
            # several seeds: t-interval over seeds; one seed: that run's bootstrap CI over test samples
            lo, hi = summary["ci95"]
            ci_kind = "seeds"
            if summary["n"] < 2:
                lo, hi = summary["bootstrap_ci95"] or (math.nan, math.nan)
                ci_kind = "bootstrap" if summary["bootstrap_ci95"] else None
            results.append(
                EvalResult(
                    task_type="image-segmentation" if seg else "image-classification",
                    task_name=f"{'Segmentation' if seg else 'Classification'} ({g['protocol']['name']})",
                    dataset_type=g["dataset"]["name"],
                    dataset_name=f"{g['dataset']['name']} ({size} px)" if size else g["dataset"]["name"],
                    dataset_config=_config_name(g),
                    dataset_split=g["dataset"].get("eval_split") or "test",
                    dataset_args=args,
                    metric_type=metric,
                    metric_name=METRIC_LABELS.get(metric, metric.replace("_", " ")),
                    metric_value=_finite(summary["mean"]),
                    metric_args={
                        "std": _finite(summary["std"]),
                        "n_seeds": summary["n"],
                        "ci95": [_finite(lo), _finite(hi)] if ci_kind else None,
                        "ci_kind": ci_kind,
                    },
                )
            )
    return results


def _checkpoint_names(checkpoint: Mapping[str, Any]) -> set[str]:
    return {str(checkpoint[k]) for k in ("name", "spec", "content_hash") if checkpoint.get(k)}


def _parse_config(config: str | None) -> dict[str, str]:
    """Fallback for hand-edited cards without ``dataset_args``: the k=v pairs of ``dataset_config``."""
    out = {}
    for part in (config or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def eval_results_to_rows(
    eval_results: Iterable[EvalResult], *, model_name: str | None = None
) -> list[dict[str, Any]]:
    """Inverse of ``to_eval_results`` for the leaderboard: one flat row per ``EvalResult``.

    Row keys: ``model_name``, ``task_type``, ``dataset`` (type), ``dataset_name``, ``dataset_split``,
    ``dataset_config``, ``image_size``, ``task``, ``protocol``, ``protocol_params``, ``regime``,
    ``policy``, ``label_fraction``, ``imbalance_ratio``, ``random_init``, ``seeds``, ``metric``,
    ``value`` (mean over seeds), ``std``, ``n_seeds`` (seeds behind this metric), ``ci95``
    (``[lo, hi]`` or None) and ``ci_kind`` (``"seeds"`` t-interval, ``"bootstrap"`` for a single
    seed, or None). Works on ``ModelCard.load(...).data.eval_results``; results not written by
    ``to_eval_results`` (no ``dataset_args``) are read from ``dataset_config`` as far as possible."""
    rows = []
    for r in eval_results:
        args = dict(r.dataset_args or {})
        if not args:
            parsed = _parse_config(r.dataset_config)
            args = {"protocol": parsed.pop("protocol", None), "image_size": parsed.pop("image_size", None)}
            args["regime"] = {k: parsed[k] for k in ("label_fraction", "imbalance_ratio") if k in parsed}
            args["policy"] = {k: v for k, v in parsed.items() if k not in args["regime"] and k != "params"}
        margs = dict(r.metric_args or {})
        regime = dict(args.get("regime") or {})
        ci = margs.get("ci95")
        if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
            ci = None
        rows.append(
            {
                "model_name": model_name,
                "task_type": r.task_type,
                "dataset": r.dataset_type,
                "dataset_name": r.dataset_name,
                "dataset_split": r.dataset_split,
                "dataset_config": r.dataset_config,
                "image_size": args.get("image_size"),
                "task": args.get("task"),
                "protocol": args.get("protocol"),
                "protocol_params": dict(args.get("protocol_params") or {}),
                "regime": regime,
                "policy": dict(args.get("policy") or {}),
                "label_fraction": regime.get("label_fraction"),
                "imbalance_ratio": regime.get("imbalance_ratio"),
                "random_init": bool(args.get("random_init", False)),
                "seeds": args.get("seeds"),
                "metric": r.metric_type,
                "value": r.metric_value,
                "std": margs.get("std"),
                "n_seeds": margs.get("n_seeds", args.get("n_seeds")),
                "ci95": ci,
                "ci_kind": margs.get("ci_kind") if ci else None,
            }
        )
    return rows


def check_results_dir(results_dir: str | Path) -> Path:
    """``results_dir`` as a Path, refusing an existing non-folder (one-line user error)."""
    path = Path(results_dir)
    if path.exists() and not path.is_dir():
        raise DataError(f"results folder {path} is a file", "pass a folder (it is created if missing)")
    return path
