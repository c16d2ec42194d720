"""``hfssl zoo``: the model zoo - list, build, push, pull, table, status.

The manifest (``hfssl/zoo/zoo.yaml``) names every released checkpoint; ``build`` pretrains an
entry with its recipe and budget, evaluates it (linear probe, kNN, finetuning; 3 seeds; paired
deltas against the same architecture at random init / from scratch) and stores it with its card;
``push``/``pull`` move entries to and from the Hub; ``table`` writes MODEL_ZOO.md from the records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ACTIONS = {
    "list": "a table of the entries: name, method, family, dims, data, status here, headline results",
    "build": "pretrain -> evaluate -> card -> store (resumable; finished entries are skipped)",
    "push": "push built entries to the Hub (one commit per entry; unchanged entries make no commit)",
    "pull": "download an entry into the Hugging Face cache (offline afterwards)",
    "table": "write MODEL_ZOO.md (+ an HTML leaderboard) from the entries' records",
    "status": "per entry: built / building / partial / missing, with wall times",
}

EXAMPLES = """examples:
  hfssl zoo list
  hfssl zoo build simclr-resnet18-breastmnist28
  hfssl zoo build --all --zoo 2d --records reports/zoo        # the 2D zoo at the cpu budget
  hfssl zoo build --all --budget paper --launcher submitit --slurm-partition gpu --gpus-per-job 1
  hfssl zoo build --all --budget paper --launcher submitit --slurm-partition gpu --gpus-per-job 8 --nodes 2
  hfssl zoo status --all --budget paper                        # entries, and their jobs on the cluster
  hfssl zoo push --all --org my-org
  hfssl zoo pull simclr-resnet18-breastmnist28 --org my-org
  hfssl zoo table --records reports/zoo --out MODEL_ZOO.md
  hfssl evaluate --checkpoint zoo:simclr-resnet18-breastmnist28 --protocol linear
"""


def _parser() -> argparse.ArgumentParser:
    from hfssl.zoo.manifest import BUDGETS

    parser = argparse.ArgumentParser(
        prog="hfssl zoo",
        description="The hfssl model zoo. Actions: " + "; ".join(f"{k}: {v}" for k, v in ACTIONS.items()),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=list(ACTIONS), help="what to do")
    parser.add_argument("names", nargs="*", help="entry names (build/push/pull/status)")
    parser.add_argument("--all", action="store_true", help="every entry (of --zoo when given)")
    parser.add_argument("--zoo", default=None, help="only entries of this zoo (2d, 3d)")
    parser.add_argument(
        "--budget", default="cpu", choices=list(BUDGETS), help="pretraining budget (default cpu)"
    )
    parser.add_argument(
        "--org", default=None, help="Hub organisation (default: the manifest's, or $HFSSL_ZOO_ORG)"
    )
    parser.add_argument(
        "--store", default=None, help="zoo store folder (default $HFSSL_ZOO_STORE or ~/.cache/hfssl/zoo)"
    )
    parser.add_argument("--manifest", default=None, help="another manifest file (default hfssl/zoo/zoo.yaml)")
    parser.add_argument(
        "--records", default=None, help="build: also copy records + cards here; table: read from here"
    )
    parser.add_argument("--out", default="MODEL_ZOO.md", help="table: the markdown file to write")
    parser.add_argument("--data-dir", default=None, help="data root (default $HFSSL_DATA_DIR)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--private", action="store_true", help="push: create repos as private")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="build: build entries again although built (e.g. stale ones, after a manifest change; "
        "where only the evaluation changed, the stored weights are evaluated again); "
        "the old entry stays until the new one replaces it",
    )
    from hfssl.cli.launch import add_launcher_arguments

    add_launcher_arguments(parser)  # build: --launcher local|submitit and the cluster options

    def one_line_error(message: str) -> None:
        print(f"hfssl zoo: error: {' '.join(message.split())} (fix: see 'hfssl zoo --help')", file=sys.stderr)
        raise SystemExit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    return parser


def _selected(manifest, args) -> list:
    from hfssl.errors import ConfigError

    if args.all and args.names:
        raise ConfigError("give entry names or --all, not both", "drop the names or --all")
    if args.all or (not args.names and args.action in ("list", "status", "table")):
        entries = [e for e in manifest.entries if args.zoo is None or e.zoo == args.zoo]
        if not entries:
            zoos = sorted({e.zoo for e in manifest.entries})
            raise ConfigError(f"the manifest has no zoo {args.zoo!r}", f"use one of: {', '.join(zoos)}")
        return entries
    if not args.names:
        raise ConfigError(f"'hfssl zoo {args.action}' needs entry names or --all", "see 'hfssl zoo list'")
    return [manifest.get(n) for n in args.names]


def _launcher(args) -> object | None:
    """The cluster launcher of ``build`` (None: this process, entry after entry)."""
    from hfssl.cli.launch import CLUSTER_OPTIONS, launcher_from_args
    from hfssl.errors import ConfigError

    if args.action != "build":
        given = [f"--{n.replace('_', '-')}" for n in CLUSTER_OPTIONS if getattr(args, n) is not None]
        bad = (["--launcher"] if args.launcher != "local" else []) + given
        if bad:
            raise ConfigError(
                f"{', '.join(bad)} only appl{'ies' if len(bad) == 1 else 'y'} to 'hfssl zoo build'",
                "drop " + ("it" if len(bad) == 1 else "them") + ", or use 'hfssl zoo build'",
            )
        return None
    launcher = launcher_from_args(args)
    # --gpus-per-job / --nodes > 1: each entry's pretraining job runs accelerate launch on every node
    # (eval_suite.zoo.pretrain_job); what cannot work (--nodes > 1 without Slurm, a batch that does not
    # split over the processes) is refused before anything is submitted
    return None if args.launcher == "local" else launcher


def _outcome_line(outcome) -> str:
    if outcome.status == "built":
        return f"  {outcome.name}: built in {outcome.seconds / 60:.1f} min"
    if outcome.status == "stale":
        return (
            f"  {outcome.name}: stale, skipped (built with other settings than the manifest's, or from "
            f"an entry it requires that was rebuilt since; "
            f"'hfssl zoo build {outcome.name} --rebuild' builds it again)"
        )
    return f"  {outcome.name}: {outcome.status}"


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    launcher = _launcher(args)
    from hfssl.zoo import ZooStore, load_manifest

    manifest = load_manifest(args.manifest)
    store = ZooStore(args.store)
    entries = _selected(manifest, args)
    org = args.org or manifest.default_org()
    if args.action == "list":
        from eval_suite.zoo_table import list_table

        print(list_table(entries, store, args.budget, org=org))
        return 0
    if args.action == "status":
        from eval_suite.zoo_table import status_table

        print(status_table(entries, store, args.budget))
        return 0
    if args.action == "build" and launcher is not None:
        from eval_suite.zoo import build_entries

        outcomes, failed_entries = build_entries(
            entries,
            launcher=launcher,
            budget=args.budget,
            store=store,
            data_dir=args.data_dir,
            device=args.device,
            records_dir=args.records,
            org=org,
            manifest=manifest,
            rebuild=args.rebuild,
        )
        for outcome in outcomes:
            print(_outcome_line(outcome), flush=True)
        for name, error in failed_entries.items():
            print(f"  {name}: FAILED ({error[:300]})", flush=True)
        if failed_entries:
            print(
                f"hfssl zoo: {len(failed_entries)} entries failed: {', '.join(failed_entries)} (see 'hfssl zoo "
                "status'; the same command again submits only the missing jobs)",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.action == "build":
        from eval_suite.zoo import build_entry

        failed: list[str] = []
        for i, entry in enumerate(entries):
            print(f"[{i + 1}/{len(entries)}] {entry.name}", flush=True)
            try:
                outcome = build_entry(
                    entry,
                    budget=args.budget,
                    store=store,
                    data_dir=args.data_dir,
                    device=args.device,
                    records_dir=args.records,
                    org=org,
                    manifest=manifest,
                    rebuild=args.rebuild,
                )
            except Exception as err:  # noqa: BLE001 - one broken entry must not stop the others
                if len(entries) == 1:
                    raise
                failed.append(entry.name)
                print(f"  {entry.name}: FAILED ({type(err).__name__}: {str(err)[:300]})", flush=True)
                continue
            print(_outcome_line(outcome), flush=True)
        if failed:
            print(
                f"hfssl zoo: {len(failed)} entries failed: {', '.join(failed)} (see 'hfssl zoo status')",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.action == "push":
        import eval_suite.results as record_schema
        from hfssl.zoo.hub import push_entry

        for entry in entries:
            result = push_entry(
                entry,
                store=store,
                budget=args.budget,
                org=org,
                private=args.private,
                record_schema=record_schema,
            )
            print(f"{entry.name}: {result.summary()}")
        return 0
    if args.action == "pull":
        from hfssl.zoo.hub import pull_entry

        for entry in entries:
            folder = pull_entry(entry, org=org)
            print(f"{entry.name}: {folder}")
        return 0
    if args.action == "table":
        from eval_suite.zoo_table import write_model_zoo

        sources = Path(args.records) if args.records else store.root
        path = write_model_zoo(manifest, sources, args.out, budget=args.budget, entries=entries)
        print(f"wrote {path}")
        return 0
    raise AssertionError(args.action)  # pragma: no cover - argparse restricts the choices
