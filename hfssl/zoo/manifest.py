"""The zoo manifest (``hfssl/zoo/zoo.yaml``): what each released checkpoint is and how it is built.

An entry names a checkpoint (``simclr-resnet18-breastmnist28``), its pretext method (+ kwargs),
backbone, pretraining data and size, the recipe that gives its optimisation settings
(``scripts/recipes/<method>_<recipe_dataset>.yaml`` unless named), its budgets (``cpu`` and
``paper``: recipe overrides) and its intended Hub repo (``ORG/NAME``). Every field not given by
an entry comes from its zoo's defaults (``zoos: {2d: ..., 3d: ...}``). The manifest is data, so
``$HFSSL_ZOO_MANIFEST`` (or ``manifest=``) can point at another file, e.g. a test's tiny zoo.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from hfssl.errors import ConfigError

BUDGETS = ("cpu", "paper")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENTRY_KEYS = {
    "name", "zoo", "method", "method_kwargs", "backbone", "backbone_kwargs", "dataset", "image_size",
    "recipe", "budget", "requires", "notes", "repo",
}  # fmt: skip


def default_manifest_path() -> Path:
    env = os.environ.get("HFSSL_ZOO_MANIFEST")
    return Path(env).expanduser() if env else Path(__file__).with_name("zoo.yaml")


def recipes_dir() -> Path:
    """Where recipe files are looked up: ``$HFSSL_RECIPES_DIR``, else the source checkout's scripts/recipes."""
    env = os.environ.get("HFSSL_RECIPES_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "scripts" / "recipes"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo checkpoint, with its zoo's defaults filled in."""

    name: str
    zoo: str
    method: str
    backbone: str
    dataset: str
    image_size: int
    recipe: str
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    notes: str = ""
    repo_name: str = ""

    @property
    def spatial_dims(self) -> int:
        from hfssl.data.medmnist_info import get_info

        try:
            return 3 if get_info(self.dataset).is_3d else 2
        except Exception:  # a non-MedMNIST source: the backbone tells
            return 3 if "3d" in self.backbone else 2

    def repo_id(self, org: str) -> str:
        return f"{org}/{self.repo_name or self.name}"

    def recipe_path(self) -> Path:
        path = Path(self.recipe)
        return path if path.is_absolute() else recipes_dir() / path

    def overrides(self, budget: str) -> dict[str, Any]:
        """Recipe overrides of ``budget``: the entry's identity (method, backbone, data) + the budget's."""
        if budget not in BUDGETS:
            raise ConfigError(f"unknown budget {budget!r}", f"use one of: {', '.join(BUDGETS)}")
        spec = dict(self.budget.get(budget) or {})
        backbone_kwargs = {**self.backbone_kwargs, **(spec.pop("backbone_kwargs", None) or {})}
        out: dict[str, Any] = {
            "method": self.method,
            "backbone": self.backbone,
            "dataset": self.dataset,
            "image_size": self.image_size,
        }
        if self.method_kwargs:
            out["method_kwargs"] = dict(self.method_kwargs)
        if backbone_kwargs:
            out["backbone_kwargs"] = backbone_kwargs
        out.update(spec)
        return out

    def evaluation_for(self, budget: str) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "seeds": list(ev.get("seeds", [0, 1, 2])),
            "transfer": [dict(t) for t in ev.get("transfer", [])],
            **dict(ev.get(budget) or {}),
        }

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        out = dataclasses.asdict(self)
        out["requires"] = list(self.requires)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ZooEntry:
        """The entry as ``to_dict`` wrote it (e.g. into a built entry's ``zoo_entry.json``)."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)} - {"requires"}
        return cls(**{k: v for k, v in raw.items() if k in known}, requires=tuple(raw.get("requires") or ()))

    def build_settings(self, budget: str) -> dict[str, Any]:
        """What a build at ``budget`` depends on: the recipe file, its overrides (method, backbone,
        data, steps ...) and the evaluation. A stored entry built with other settings is stale;
        the name, notes and Hub repo do not count."""
        return {
            "recipe": self.recipe,
            "overrides": self.overrides(budget),
            "evaluation": self.evaluation_for(budget),
        }

    def differing_settings(self, stored: Mapping[str, Any], budget: str) -> set[str]:
        """The parts of :meth:`build_settings` (``recipe``, ``overrides``, ``evaluation``) that
        ``stored`` (the ``entry`` a built entry's ``zoo_entry.json`` records) was built at ``budget``
        with other values of; ``{"unreadable"}`` for one this version cannot read (a rebuild makes
        it readable)."""
        try:
            before = ZooEntry.from_dict(stored).build_settings(budget)
        except (TypeError, ValueError):  # ConfigError is a ValueError
            return {"unreadable"}
        now = self.build_settings(budget)
        return {part for part, value in now.items() if before.get(part) != value}

    def settings_differ(self, stored: Mapping[str, Any], budget: str) -> bool:
        """Whether ``stored`` was built with other :meth:`build_settings` (see :meth:`differing_settings`)."""
        return bool(self.differing_settings(stored, budget))

    def changed_requirements(
        self, info: Mapping[str, Any], weights_now: Callable[[str], str | None]
    ) -> list[str]:
        """The entries this one requires whose weights (``weights_now(name)``: their sha256, None if
        unknown) are no longer those it was built from (``info["required_weights"]``, written by the
        build). An entry built before hfssl recorded them says nothing, so nothing is listed."""
        built_from = info.get("required_weights") or {}
        changed = []
        for req in self.requires:
            now = weights_now(req)
            if req in built_from and now and now != built_from[req]:
                changed.append(req)
        return changed


@dataclass(frozen=True)
class ZooManifest:
    """The parsed manifest: its default org, zoo defaults and entries (in build order)."""

    path: Path
    org: str
    entries: tuple[ZooEntry, ...]

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> ZooEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        near = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(near)}?" if near else "see 'hfssl zoo list' for the names"
        raise ConfigError(f"unknown zoo entry {name!r}", hint)

    def default_org(self) -> str:
        return os.environ.get("HFSSL_ZOO_ORG") or self.org


def _entry(raw: dict[str, Any], zoos: dict[str, dict[str, Any]], where: str) -> ZooEntry:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{where}: every entry must be a mapping with a name", "see hfssl/zoo/zoo.yaml")
    name = str(raw["name"])
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: entry {name} has unknown field(s) {unknown}", f"allowed: {sorted(_ENTRY_KEYS)}"
        )
    if not NAME_RE.match(name):
        raise ConfigError(
            f"{where}: entry name {name!r} is not a lowercase slug", "use letters, digits, '-', '_' and '.'"
        )
    zoo_name = str(raw.get("zoo", ""))
    if zoo_name not in zoos:
        raise ConfigError(f"{where}: entry {name} names zoo {zoo_name!r}", f"use one of: {', '.join(zoos)}")
    defaults = copy.deepcopy(zoos[zoo_name])
    method = str(raw.get("method") or "")
    if not method:
        raise ConfigError(f"{where}: entry {name} names no method", "add method: NAME")
    budget = copy.deepcopy(raw.get("budget") or {})
    bad = sorted(set(budget) - set(BUDGETS))
    if bad:
        raise ConfigError(f"{where}: entry {name} has unknown budget(s) {bad}", f"use {', '.join(BUDGETS)}")
    if defaults.get("cpu_backbone_kwargs") and "backbone_kwargs" not in raw:
        cpu = budget.setdefault("cpu", {})
        cpu.setdefault("backbone_kwargs", dict(defaults["cpu_backbone_kwargs"]))
    from hfssl.pretext.registry import parse_method_spec

    parsed = parse_method_spec(method)
    recipe = raw.get("recipe")
    if not recipe:
        if parsed.is_multi:
            raise ConfigError(
                f"{where}: entry {name} combines methods ({method}) and names no recipe",
                "add recipe: FILE.yaml (e.g. the contrastive member's recipe)",
            )
        recipe = f"{parsed.methods[0]}_{defaults['recipe_dataset']}.yaml"
    return ZooEntry(
        name=name,
        zoo=zoo_name,
        method=method,
        backbone=str(raw.get("backbone", defaults.get("backbone"))),
        dataset=str(raw.get("dataset", defaults.get("dataset"))),
        image_size=int(raw.get("image_size", defaults.get("image_size"))),
        recipe=str(recipe),
        method_kwargs=dict(raw.get("method_kwargs") or {}),
        backbone_kwargs=dict(raw.get("backbone_kwargs") or defaults.get("backbone_kwargs") or {}),
        budget=budget,
        evaluation=dict(defaults.get("evaluation") or {}),
        requires=tuple(str(r) for r in raw.get("requires") or ()),
        notes=str(raw.get("notes") or defaults.get("notes") or ""),
        repo_name=str(raw.get("repo") or ""),
    )


def load_manifest(path: str | os.PathLike | None = None) -> ZooManifest:
    """Parse and check a manifest (default: :func:`default_manifest_path`)."""
    p = Path(path).expanduser() if path is not None else default_manifest_path()
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns if p.is_file() else 0)


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> ZooManifest:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"zoo manifest {p} does not exist", "unset $HFSSL_ZOO_MANIFEST or point it at a file"
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"zoo manifest {p} cannot be parsed: {exc}", "fix its YAML syntax") from exc
    zoos = data.get("zoos") or {}
    entries = tuple(_entry(raw, zoos, str(p)) for raw in data.get("entries") or [])
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{p}: entry names {dupes} appear twice", "give every entry its own name")
    for e in entries:
        for req in e.requires:
            if req not in names or names.index(req) > names.index(e.name):
                raise ConfigError(
                    f"{p}: entry {e.name} requires {req!r}, which is not an earlier entry",
                    "list required entries before the entries that need them",
                )
    return ZooManifest(path=p, org=str(data.get("org") or "hfssl"), entries=entries)
