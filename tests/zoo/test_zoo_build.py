"""``hfssl zoo`` end to end on a tiny zoo (test_resnet, 2 steps, 1 seed): build -> store -> list /
status / table -> push to the loopback Hub -> pull into an empty cache -> evaluate ``zoo:NAME``
offline; a failed build leaves no entry and resumes; two concurrent builders share a store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfssl.cli.main import main
from hfssl.zoo import ZooStore, load_manifest
from tests.hub.conftest import offline
from tests.hub.hub_server import LoopbackHub

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny_zoo.yaml")


@pytest.fixture(scope="module")
def zoo_env(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """The tiny manifest and a fresh store, for the CLI and for ``zoo:NAME`` resolution."""
    root = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HFSSL_ZOO_MANIFEST", str(TINY))
        mp.setenv("HFSSL_ZOO_STORE", str(root / "store"))
        yield {"root": root, "store": root / "store", "records": root / "records"}


@pytest.fixture(scope="module")
def built(zoo_env) -> Path:
    """rot-tiny, built once for the module (about 10 s)."""
    assert main(["zoo", "build", "rot-tiny", "--records", str(zoo_env["records"])]) == 0
    return zoo_env["store"] / "cpu" / "rot-tiny"


def test_build_writes_a_complete_entry_with_relabelled_records(built, zoo_env):
    from eval_suite.results import load_records

    for f in (
        "config.json",
        "model.safetensors",
        "pretext_model/model.safetensors",
        "README.md",
        "zoo_entry.json",
    ):
        assert (built / f).is_file(), f
    records, problems = load_records(*sorted((built / "eval_results").glob("*.json")))
    assert not problems
    assert {r["protocol"]["name"] for r in records} == {"linear", "knn", "finetune"}
    assert {r["checkpoint"]["spec"] for r in records} == {"zoo:rot-tiny"}  # how to reproduce it
    baselines, problems = load_records(built / "eval_results" / "baselines")
    assert not problems and all(
        r["checkpoint"]["random_init"] or r["protocol"]["name"] == "scratch" for r in baselines
    )
    info = json.loads((built / "zoo_entry.json").read_text())
    assert (
        info["pretraining"]["global_step"] == 2 and info["rebuild"] == "hfssl zoo build rot-tiny --budget cpu"
    )
    from hfssl.utils.io import file_sha256

    assert (
        info["weights_sha256"] == file_sha256(built / "model.safetensors") and info["required_weights"] == {}
    )
    assert "## hfssl zoo entry" in (built / "README.md").read_text()
    assert not (zoo_env["store"] / "cpu" / ".work" / "rot-tiny").exists()  # work folder removed
    exported = zoo_env["records"] / "cpu" / "rot-tiny"
    assert sorted(p.name for p in (exported / "eval_results").glob("*.json")) == sorted(
        p.name for p in (built / "eval_results").glob("*.json")
    )


def test_rebuild_skips_a_finished_entry(built, capsys):
    before = (built / "model.safetensors").stat().st_mtime_ns
    assert main(["zoo", "build", "rot-tiny"]) == 0
    assert "rot-tiny: skipped" in capsys.readouterr().out
    assert (built / "model.safetensors").stat().st_mtime_ns == before


def test_list_status_and_model_zoo_table(built, zoo_env, capsys, tmp_path):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "rot-tiny" in out and "built" in out and "missing" in out and "linear bal.acc" in out
    assert main(["zoo", "status"]) == 0
    assert "rot-tiny" in capsys.readouterr().out
    md = tmp_path / "MODEL_ZOO.md"
    assert main(["zoo", "table", "--records", str(zoo_env["records"]), "--out", str(md)]) == 0
    text = md.read_text()
    assert "### rot-tiny" in text and "Δ vs linear/random-init" in text and "do not edit by hand" in text
    assert "not built yet: simclr-tiny, distill-tiny" in text


def test_push_pull_offline_and_evaluate_zoo_spec(built, zoo_env, tmp_path, monkeypatch):
    """The issue's default-run zoo test: push to the loopback Hub, pull into an empty cache, then
    evaluate ``zoo:rot-tiny`` offline with an empty store (so it resolves through the cache)."""
    with LoopbackHub() as hub, hub.patch_client(cache_dir=tmp_path / "hf-cache"):
        assert main(["zoo", "push", "rot-tiny", "--org", "hfssl-test"]) == 0
        files = set(hub.files("hfssl-test/rot-tiny"))
        assert {
            "model.safetensors",
            "pretext_model/model.safetensors",
            "zoo_entry.json",
            "README.md",
        } <= files
        assert any(f.startswith("eval_results/baselines/") for f in files)
        commits = hub.commit_count("hfssl-test/rot-tiny")
        assert main(["zoo", "push", "rot-tiny", "--org", "hfssl-test"]) == 0  # unchanged: no commit
        assert hub.commit_count("hfssl-test/rot-tiny") == commits
        assert main(["zoo", "pull", "rot-tiny", "--org", "hfssl-test"]) == 0
        monkeypatch.setenv("HFSSL_ZOO_STORE", str(tmp_path / "empty-store"))
        monkeypatch.setenv("HFSSL_ZOO_ORG", "hfssl-test")
        with offline():
            results = tmp_path / "results"
            argv = ["evaluate", "--checkpoint", "zoo:rot-tiny", "--protocol", "knn", "--seeds", "0"]
            argv += ["--max-train-samples", "64", "--max-eval-samples", "64", "--results-dir", str(results)]
            assert main([*argv, "--n-bootstrap", "20", "--cache-dir", str(tmp_path / "cache")]) == 0
    (record,) = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert record["checkpoint"]["spec"] == "zoo:rot-tiny"
    pushed = json.loads((built / "model.safetensors").parent.joinpath("config.json").read_text())
    assert record["checkpoint"]["backbone"] == pushed["backbone"]


def test_failed_build_leaves_no_entry_and_the_rerun_resumes(zoo_env, monkeypatch, capsys):
    import eval_suite.zoo as zoo

    store = ZooStore(zoo_env["store"])

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(zoo, "_evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        main(["zoo", "build", "simclr-tiny"])
    assert (
        not store.is_built("simclr-tiny", "cpu") and not (zoo_env["store"] / "cpu" / "simclr-tiny").exists()
    )
    done = zoo_env["store"] / "cpu" / ".work" / "simclr-tiny" / "pretrain" / "pretrain_done.json"
    assert done.is_file()
    assert main(["zoo", "status", "simclr-tiny"]) == 0
    assert "failed" in capsys.readouterr().out
    monkeypatch.undo()
    stamp = done.stat().st_mtime_ns
    assert main(["zoo", "build", "simclr-tiny"]) == 0
    out = capsys.readouterr().out
    assert "pretraining simclr-tiny" not in out and "simclr-tiny: built" in out  # pretraining reused
    assert store.is_built("simclr-tiny", "cpu")
    assert stamp  # the finished pretraining was not redone (no "pretraining" line above)


@pytest.mark.slow
def test_two_concurrent_builders_share_one_store(tmp_path):
    """Two `hfssl zoo build --all` processes on one store: every entry built exactly once, no error."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HFSSL_ZOO_MANIFEST": str(TINY),
        "HFSSL_ZOO_STORE": str(tmp_path / "store"),
    }
    cmd = [sys.executable, "-m", "hfssl", "zoo", "build", "rot-tiny", "simclr-tiny"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    store = ZooStore(tmp_path / "store")
    assert all(store.is_built(n, "cpu") for n in ("rot-tiny", "simclr-tiny"))
    built_lines = [ln for o, _ in outs for ln in o.splitlines() if ": built" in ln]
    assert sorted(ln.split(":")[0].strip() for ln in built_lines) == ["rot-tiny", "simclr-tiny"]
    assert not list((tmp_path / "store" / "cpu").glob(".tmp-*"))


def test_manifest_of_the_tests_is_valid():
    assert load_manifest(TINY).names() == ["rot-tiny", "simclr-tiny", "distill-tiny"]


def test_init_from_a_zoo_entry_loads_its_pretext_model(built, tmp_path):
    """`hfssl pretrain --init-from zoo:rot-tiny` continues ROT with the entry's heads."""
    from safetensors.torch import load_file

    out = tmp_path / "continued"
    argv = ["pretrain", "--method", "rot", "--backbone", "test_resnet", "--dataset", "breastmnist"]
    argv += ["--max-steps", "1", "--per-device-train-batch-size", "8", "--output-dir", str(out)]
    argv += [
        "--report-to",
        "none",
        "--save-strategy",
        "no",
        "--eval-strategy",
        "no",
        "--init-from",
        "zoo:rot-tiny",
    ]
    assert main(argv) == 0
    record = json.loads((out / "training_args.json").read_text())
    assert (
        record["init_source"]["kind"] == "pretext_model" and record["init_source"]["spec"] == "zoo:rot-tiny"
    )
    assert json.loads((out / "backbone" / "config.json").read_text())["pretrain_init_from"]
    assert set(load_file(out / "pretext_model" / "model.safetensors")) == set(
        load_file(built / "pretext_model" / "model.safetensors")
    )


def test_a_killed_pretraining_resumes_from_its_checkpoint(zoo_env, monkeypatch, tmp_path):
    """A pretraining killed after a checkpoint continues from it (resume_from="latest")."""
    import eval_suite.zoo as zoo
    from hfssl.training import CheckpointManager

    entry = load_manifest(TINY).get("rot-tiny")
    out = tmp_path / "pretrain"
    seen: dict[str, object] = {}
    import hfssl.training as training  # _pretrain imports arguments_from_recipe from here on each call

    original = training.arguments_from_recipe

    def spy(recipe, overrides):
        seen.update(overrides)
        return original(recipe, overrides)

    monkeypatch.setattr(training, "arguments_from_recipe", spy)
    zoo._pretrain(entry, "cpu", out, None, "cpu", lambda _: None)
    assert CheckpointManager(out).latest() is not None and "resume_from" not in seen
    (out / zoo.PRETRAIN_DONE).unlink()  # as if killed after the checkpoint, before finishing
    seen.clear()
    zoo._pretrain(entry, "cpu", out, None, "cpu", lambda _: None)
    assert seen.get("resume_from") == "latest"


def _official_finetune_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "zoo_medmnist_finetune", REPO / "scripts" / "zoo_medmnist_finetune.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_official_recipe_finetune_pairs_scratch_and_reaches_the_table(built, zoo_env, tmp_path, capsys):
    """scripts/zoo_medmnist_finetune.py: the two arms (1 epoch here) write one record per seed, a
    re-run recomputes nothing, ``report`` pairs them by seed, and MODEL_ZOO.md shows the result."""
    script = _official_finetune_script()
    results, records = tmp_path / "results", tmp_path / "records"
    common = ["rot-tiny", "--seeds", "0", "--epochs", "1", "--results", str(results)]
    for arm in ("finetune", "scratch"):
        assert script.main(["run", *common, "--arm", arm, "--threads", "1"]) == 0
    first = sorted(p.name for p in results.rglob("*.json"))
    assert script.main(["run", *common, "--arm", "scratch"]) == 0  # recorded seeds are read back
    assert sorted(p.name for p in results.rglob("*.json")) == first
    ft, sc = ([json.loads(p.read_text()) for p in (results / arm).glob("*.json") if p.name != "hardware.json"]
              for arm in ("finetune", "scratch"))  # fmt: skip
    assert len(ft) == len(sc) == 1
    assert ft[0]["protocol"]["name"] == "finetune" and sc[0]["protocol"]["name"] == "scratch"
    assert ft[0]["protocol"]["params"]["preset"] == "medmnist" and ft[0]["protocol"]["params"]["epochs"] == 1

    # the entry's record folder as `hfssl zoo build --records` wrote it, then the report beside it
    import shutil

    shutil.copytree(zoo_env["records"], records)
    assert script.main(["report", *common, "--records", str(records)]) == 0
    report = json.loads((records / "cpu" / "rot-tiny" / "medmnist_finetune.json").read_text())
    for metric in ("balanced_accuracy", "auc"):  # one seed: the paired delta is the plain difference
        diff = ft[0]["metrics"][metric] - sc[0]["metrics"][metric]
        # (the bootstrap rescores the records' stored, rounded test outputs: AUC moves by ~1e-4)
        assert report["paired_delta"][metric]["delta"] == pytest.approx(diff, abs=1e-3)
    assert report["beats_scratch"] == any(d["ci95"][0] > 0 for d in report["paired_delta"].values())
    assert report["where"]["finetune"]["hardware"].startswith("CPU")
    md = tmp_path / "MODEL_ZOO.md"
    assert main(["zoo", "table", "--records", str(records), "--out", str(md)]) == 0
    line = next(ln for ln in md.read_text().splitlines() if ln.startswith("- Official `medmnist` recipe"))
    assert "`rot-tiny` finetuned" in line and f"{report['finetune']['auc']['mean']:.3f}" in line
    # the rebuild command names the seeds (the default 0 1 2 would give another report)
    assert report["command"].endswith("report rot-tiny --seeds 0") and report["command"] in line
    info = json.loads((records / "cpu" / "rot-tiny" / "zoo_entry.json").read_text())
    assert report["weights_sha256"] == info["weights_sha256"] and "Stale" not in line
    # re-exporting the entry's records (a build with --records) keeps the report beside them
    from eval_suite.zoo import export_records

    export_records(ZooStore(), "rot-tiny", "cpu", records)
    path = records / "cpu" / "rot-tiny" / "medmnist_finetune.json"
    assert json.loads(path.read_text()) == report
    path.write_text(json.dumps({**report, "weights_sha256": "0" * 64}))  # as if the entry was rebuilt
    assert main(["zoo", "table", "--records", str(records), "--out", str(md)]) == 0
    line = next(ln for ln in md.read_text().splitlines() if ln.startswith("- Official `medmnist` recipe"))
    assert "**Stale:** these runs finetuned another build" in line
    assert script.main(["report", "no-such-entry", "--results", str(results)]) == 2
    assert "no-such-entry" in capsys.readouterr().err


def test_a_changed_manifest_makes_the_entry_stale_until_rebuild(built, tmp_path, capsys):
    """Built with 2 steps, the manifest now says 3: listed ``stale``, skipped by a plain build
    (nothing changes), built again by ``--rebuild``; the old entry stays until then."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(built.parents[1], store)  # the fixture's store, so the other tests keep theirs
    changed = tmp_path / "zoo.yaml"
    text = TINY.read_text()
    old = "  - name: rot-tiny\n    zoo: tiny\n    method: rot\n    budget: {cpu: {max_steps: 2,"
    assert old in text
    changed.write_text(text.replace(old, old.replace("max_steps: 2", "max_steps: 3")))
    common = ["--store", str(store), "--manifest", str(changed)]
    assert main(["zoo", "list", *common]) == 0
    listed = capsys.readouterr().out
    assert next(ln for ln in listed.splitlines() if ln.startswith("rot-tiny")).count("stale") == 1
    before = (store / "cpu" / "rot-tiny" / "zoo_entry.json").read_text()
    from eval_suite.zoo_table import records_are_stale

    entry = load_manifest(changed).get("rot-tiny")
    assert records_are_stale(entry, json.loads(before))  # MODEL_ZOO.md flags such records
    assert main(["zoo", "build", "rot-tiny", *common]) == 0
    assert "stale, skipped" in capsys.readouterr().out
    assert (store / "cpu" / "rot-tiny" / "zoo_entry.json").read_text() == before
    assert main(["zoo", "build", "rot-tiny", "--rebuild", *common]) == 0
    info = json.loads((store / "cpu" / "rot-tiny" / "zoo_entry.json").read_text())
    assert info["pretraining"]["global_step"] == 3 and info["entry"]["budget"]["cpu"]["max_steps"] == 3
    assert not records_are_stale(entry, info)
    capsys.readouterr()
    assert main(["zoo", "list", *common]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("rot-tiny"))
    assert "built" in row and "stale" not in row


def test_a_partial_build_with_other_settings_is_discarded_not_resumed(tmp_path):
    from eval_suite.zoo import SETTINGS_FILE, claim_work_dir

    entry = load_manifest(TINY).get("rot-tiny")
    work = tmp_path / "work"
    claim_work_dir(entry, "cpu", work)
    (work / "pretrain").mkdir()
    claim_work_dir(entry, "cpu", work)  # same settings: resumed
    assert (work / "pretrain").is_dir()
    settings = json.loads((work / SETTINGS_FILE).read_text())
    settings["overrides"]["max_steps"] = 99
    (work / SETTINGS_FILE).write_text(json.dumps(settings))
    claim_work_dir(entry, "cpu", work, log=lambda msg: None)  # other settings: started afresh
    assert not (work / "pretrain").exists()
    assert json.loads((work / SETTINGS_FILE).read_text()) == json.loads(
        json.dumps(entry.build_settings("cpu"))
    )


def test_a_rebuilt_requirement_makes_the_dependent_entry_stale(tmp_path):
    """A student records the weights of the teacher it was built from; once the teacher is rebuilt
    with other weights, the store and MODEL_ZOO.md call the student stale (its settings are the
    same, so only the recorded hash can tell)."""
    from eval_suite.zoo_table import records_are_stale
    from hfssl.utils.io import file_sha256

    manifest = load_manifest(TINY)
    student = manifest.get("distill-tiny")
    store = ZooStore(tmp_path)

    def put(name: str, weights: bytes, **extra) -> None:
        folder = store.entry_dir(name, "cpu")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(weights)
        info = {"name": name, "budget": "cpu", "entry": manifest.get(name).to_dict(), **extra}
        (folder / "zoo_entry.json").write_text(json.dumps(info))

    put("simclr-tiny", b"teacher, first build")
    first = store.weights_sha256("simclr-tiny", "cpu")
    assert first == file_sha256(store.entry_dir("simclr-tiny", "cpu") / "model.safetensors")
    put("distill-tiny", b"student", required_weights={"simclr-tiny": first})
    assert store.status("distill-tiny", "cpu", student) == "built"
    put("simclr-tiny", b"teacher, rebuilt")  # same settings, other weights
    info = store.info("distill-tiny", "cpu")
    assert store.changed_requirements(student, "cpu", info) == ["simclr-tiny"]
    assert store.is_stale(student, "cpu") and store.status("distill-tiny", "cpu", student) == "stale"
    rebuilt = {"simclr-tiny": {"weights_sha256": store.weights_sha256("simclr-tiny", "cpu")}}
    assert records_are_stale(student, info, rebuilt)
    assert not records_are_stale(student, info, {"simclr-tiny": {"weights_sha256": first}})
    put("distill-tiny", b"student")  # built before hfssl recorded its requirements: not called stale
    assert store.status("distill-tiny", "cpu", student) == "built"
    assert not records_are_stale(student, store.info("distill-tiny", "cpu"), rebuilt)


def test_a_rebuild_that_only_changes_the_evaluation_keeps_the_weights(built, tmp_path, capsys):
    """A transfer dataset added to the manifest makes the entry stale; ``--rebuild`` then evaluates
    the stored weights again (bit-identical, same pretraining record) instead of pretraining anew,
    and the new cell appears. A rebuild of an entry that is not stale pretrains anew."""
    import shutil

    from hfssl.utils.io import file_sha256

    store = tmp_path / "store"
    shutil.copytree(built.parents[1], store)
    entry_dir = store / "cpu" / "rot-tiny"
    weights = file_sha256(entry_dir / "model.safetensors")
    before = json.loads((entry_dir / "zoo_entry.json").read_text())
    changed = tmp_path / "zoo.yaml"
    old = "      seeds: [0]\n"
    assert TINY.read_text().count(old) == 1
    changed.write_text(
        TINY.read_text().replace(old, old + "      transfer: [{dataset: breastmnist, image_size: 64}]\n")
    )
    common = ["--store", str(store), "--manifest", str(changed)]
    assert main(["zoo", "build", "rot-tiny", "--rebuild", *common]) == 0
    assert "only the evaluation changed" in capsys.readouterr().out
    after = json.loads((entry_dir / "zoo_entry.json").read_text())
    assert file_sha256(entry_dir / "model.safetensors") == weights == after["weights_sha256"]
    assert after["pretraining"]["wall_seconds"] == before["pretraining"]["wall_seconds"]
    assert after["pretraining"]["reused_from_build"] == before["built_at"]
    assert "linear-breastmnist64" in after["cells"] and "linear-breastmnist64" not in before["cells"]
    assert not ZooStore(store).is_stale(load_manifest(changed).get("rot-tiny"), "cpu")
    assert main(["zoo", "build", "rot-tiny", "--rebuild", *common]) == 0  # not stale: pretrains anew
    assert "only the evaluation changed" not in capsys.readouterr().out
    again = json.loads((entry_dir / "zoo_entry.json").read_text())
    assert "reused_from_build" not in again["pretraining"]


def test_baselines_in_another_precision_are_recomputed_and_flagged(built, zoo_env, tmp_path):
    """A shared baseline cached by older code in another precision than the build resolves now is
    computed again, so every delta compares records of one precision; records that still mix two
    precisions are flagged in MODEL_ZOO.md."""
    import shutil

    from eval_suite.results import record_precision
    from eval_suite.zoo import precision_mismatches
    from eval_suite.zoo_table import entry_pairs, load_entry_results

    store = tmp_path / "store"
    shutil.copytree(built.parents[1], store)
    own = load_entry_results(store / "cpu" / "rot-tiny")
    resolved = record_precision(own["cells"]["linear"][0])
    assert resolved is not None and not precision_mismatches(own["cells"], entry_pairs(list(own["cells"])))
    other = "bf16" if resolved == "no" else "no"
    faked = 0
    for path in (store / "cpu" / ".baselines").rglob("results/*.json"):
        rec = json.loads(path.read_text())
        if rec["protocol"]["name"] == "linear":  # as if computed before a precision default changed
            rec["fit"]["runtime"]["mixed_precision"] = other
            path.write_text(json.dumps(rec))
            faked += 1
    assert faked
    assert main(["zoo", "build", "rot-tiny", "--rebuild", "--store", str(store)]) == 0
    rebuilt = load_entry_results(store / "cpu" / "rot-tiny")
    assert {record_precision(r) for r in rebuilt["cells"]["linear/random-init"]} == {resolved}
    assert not precision_mismatches(rebuilt["cells"], entry_pairs(list(rebuilt["cells"])))

    # the table flags records that still mix precisions (e.g. built before this check existed)
    records = tmp_path / "records"
    shutil.copytree(zoo_env["records"], records)
    for path in (records / "cpu" / "rot-tiny" / "eval_results" / "baselines").glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["protocol"]["name"] == "scratch":
            rec["fit"]["runtime"]["mixed_precision"] = "bf16" if record_precision(rec) == "no" else "no"
            path.write_text(json.dumps(rec))
    md = tmp_path / "MODEL_ZOO.md"
    assert main(["zoo", "table", "--records", str(records), "--out", str(md)]) == 0
    assert "**Precision differs:** `finetune` ran in" in md.read_text()
