"""Investigate a zoo entry: re-pretrain it with one setting changed and probe every variant.

MODEL_ZOO.md must say, for every entry whose linear probe does not beat random init
significantly, why (issue 16: a bug found and fixed, or the reason shown with evidence such as a
learning curve or a 3-value sweep). This script produces that evidence with the zoo's own code:

* each ``--variant LABEL:KEY=VALUE[,KEY=VALUE...]`` is the entry's ``cpu`` budget with those
  overrides (``KEY`` is a recipe/trainer field such as ``max_steps`` or ``learning_rate``, or
  ``method_kwargs.NAME`` for a method setting); ``LABEL:`` alone is the entry unchanged;
* every variant is pretrained with :func:`eval_suite.zoo._pretrain` (same recipe, data, seed, the
  online kNN monitor) and evaluated with the zoo's linear-probe and kNN cells
  (:func:`eval_suite.zoo.entry_cells`) against the shared random-init baselines of the store;
* one JSON line per variant goes to ``OUT/NAME.jsonl``: the overrides, pretraining wall time, the
  pretext task's final metrics (did the pretext task itself learn?), the kNN-monitor learning
  curve, and the linear/kNN balanced accuracy + AUC with the paired-bootstrap delta against
  random init. Finished variants are skipped on re-run (their line is kept), so a killed sweep
  resumes.

Run from the repository root, e.g.::

    python scripts/zoo_sweep.py rkb-resnet18-breastmnist28 \
        --variant steps60:max_steps=60 --variant steps120: --variant steps240:max_steps=240

The numbers depend on the CPU's resolved precision (bf16 where it is the faster path), so a sweep
always re-runs the entry's own setting beside the changed ones, on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DELTA_METRICS = ("balanced_accuracy", "auc")
# recorded as the mean over seeds only: plain accuracy is what the MedMNIST+ reference reports
MEAN_METRICS = ("accuracy",)


def _value(text: str) -> Any:
    """A number (``3e-4`` included, which YAML 1.1 reads as a string), else a YAML scalar/list."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``LABEL:KEY=VALUE,...`` -> (label, overrides); ``method_kwargs.X`` keys nest."""
    from hfssl.errors import ConfigError

    label, _, rest = spec.partition(":")
    if not label:
        raise ConfigError(f"--variant {spec!r} has no label", "write LABEL:KEY=VALUE[,KEY=VALUE...]")
    overrides: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--variant {spec!r}: {item!r} is not KEY=VALUE", "e.g. steps240:max_steps=240")
        if key.startswith("method_kwargs."):
            overrides.setdefault("method_kwargs", {})[key.split(".", 1)[1]] = _value(raw)
        else:
            overrides[key] = _value(raw)
    return label, overrides


def variant_entry(entry: Any, overrides: dict[str, Any], budget: str = "cpu") -> Any:
    """The entry with ``overrides`` merged into its budget (method kwargs merged, not replaced)."""
    import dataclasses

    extra = dict(overrides)
    method_kwargs = {**entry.method_kwargs, **extra.pop("method_kwargs", {})}
    spec = {**(entry.budget.get(budget) or {}), **extra}
    return dataclasses.replace(
        entry, method_kwargs=method_kwargs, budget={**entry.budget, budget: spec}, evaluation=entry.evaluation
    )


def _precision(run_dir: Path) -> str | None:
    """``fp32`` / ``bf16`` ... as the trainer resolved it (``training_args.json``)."""
    path = run_dir / "training_args.json"
    if not path.is_file():
        return None
    precision = json.loads(path.read_text(encoding="utf-8")).get("mixed_precision")
    return "fp32" if precision == "no" else precision


def run_variant(
    entry: Any, label: str, overrides: dict[str, Any], store: Any, work_root: Path, data_dir: str | None
) -> dict[str, Any]:
    from eval_suite.zoo import _evaluate, _pretrain, entry_cells
    from eval_suite.zoo_table import _delta

    budget = "cpu"
    varied = variant_entry(entry, overrides, budget)
    work = work_root / entry.name / label
    t0 = time.perf_counter()
    pre = _pretrain(varied, budget, work / "pretrain", data_dir, "auto", print)
    pretrain_seconds = time.perf_counter() - t0
    keep = {"linear", "linear/random-init", "knn", "knn/random-init"}
    cells = [
        c
        for c in entry_cells(varied, budget, checkpoint=str(work / "pretrain" / "backbone"))
        if c.cell_id in keep
    ]
    records = _evaluate(varied, budget, store, cells, work, data_dir, "auto")
    probes: dict[str, Any] = {}
    for protocol in ("linear", "knn"):
        mine, base = records.get(protocol, []), records.get(f"{protocol}/random-init", [])
        row: dict[str, Any] = {}
        for metric in MEAN_METRICS + DELTA_METRICS:
            values = [(r.get("metrics") or {}).get(metric) for r in mine]
            row[metric] = sum(values) / len(values) if values else None
        for metric in DELTA_METRICS:
            d = _delta(mine, base, metric)
            row[f"delta_{metric}"] = (
                None if d is None else {"delta": d["delta"], "ci95": list(d["ci95"]), "p_value": d["p_value"]}
            )
        probes[protocol] = row
    return {
        "entry": entry.name,
        "variant": label,
        "overrides": overrides,
        "global_step": pre.get("global_step"),
        "pretrain_wall_seconds": pre.get("wall_seconds", round(pretrain_seconds, 1)),
        "hardware": pre.get("hardware"),
        "precision": _precision(work / "pretrain"),
        "pretext": {
            k: v for k, v in (pre.get("last_logs") or {}).items() if k.startswith("pretext/") or k == "loss"
        },
        "knn_monitor": [
            {"step": m.get("step"), "knn_balanced_accuracy": m.get("knn_balanced_accuracy")}
            for m in pre.get("knn_monitor") or []
        ],
        "probes": probes,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    from hfssl.errors import HfsslError
    from hfssl.utils.io import write_text_atomic
    from hfssl.zoo import ZooStore, load_manifest

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="zoo entry (hfssl zoo list)")
    parser.add_argument("--variant", action="append", required=True, help="LABEL:KEY=VALUE[,KEY=VALUE...]")
    parser.add_argument(
        "--out", default="reports/zoo/sweeps", help="folder of NAME.jsonl (default reports/zoo/sweeps)"
    )
    parser.add_argument("--store", default=None, help="zoo store whose random-init baselines are shared")
    parser.add_argument("--work", default=None, help="pretraining folders (default STORE/cpu/.sweeps)")
    parser.add_argument("--data-dir", default=os.environ.get("HFSSL_DATA_DIR"))
    args = parser.parse_args(argv)
    try:
        entry = load_manifest().get(args.name)
        variants = [parse_variant(v) for v in args.variant]
        store = ZooStore(args.store)
        work_root = Path(args.work) if args.work else store.root / "cpu" / ".sweeps"
        out = Path(args.out) / f"{entry.name}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = out.read_text(encoding="utf-8").splitlines() if out.is_file() else []
        done = {json.loads(line)["variant"] for line in lines if line.strip()}
        for label, overrides in variants:
            if label in done:
                print(f"[sweep] {entry.name} {label}: done, skipped")
                continue
            print(f"[sweep] {entry.name} {label}: {overrides or 'the entry as built'}")
            row = run_variant(entry, label, overrides, store, work_root, args.data_dir)
            lines.append(json.dumps(row, sort_keys=True))
            write_text_atomic(out, "\n".join(lines) + "\n")  # a kill never leaves a half-written line
            lin = row["probes"]["linear"]
            print(
                f"[sweep] {entry.name} {label}: linear bal. acc {lin['balanced_accuracy']:.3f} Δ {lin['delta_balanced_accuracy']}"
            )
    except HfsslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
