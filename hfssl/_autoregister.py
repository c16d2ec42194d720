"""Registration of hfssl's classes with transformers' ``Auto*`` factories.

transformers only accepts registrations as class objects (``AutoConfig.register(name, cls)``,
``AutoModel.register(config_cls, model_cls)``): its own lazy name -> module tables resolve
modules inside ``transformers.models`` only. Every class hfssl registers subclasses
``PreTrainedConfig`` / ``PreTrainedModel``, and importing those imports torch, so registering
eagerly would make ``import hfssl`` (and with it ``hfssl --help``) cost seconds.

What ``import hfssl`` does instead is cheap and still explicit: :func:`install` puts a
one-module import hook on ``transformers.models.auto.configuration_auto``, the module that
every ``Auto*`` class looks model types up in. The moment that module has been imported (or at
once, if it already was), :func:`register` imports :mod:`hfssl.models` and every pretext method
module; each registers its classes when it is imported. So after ``import hfssl``,
``AutoConfig`` / ``AutoModel`` / ``AutoModelForPreTraining`` know hfssl's model types whenever
they can be used, and a process that never imports transformers (``hfssl --help``) never pays
for them.

When transformers is first imported from inside the import of a module that registration
itself imports (``import hfssl.pretext.simclr`` imports ``hfssl.models``, which imports
transformers), registering right there would meet half-initialised modules. The same holds when the trigger is
imported from inside transformers' own ``Auto*`` modules (``from transformers import AutoModel``
in a library such as peft imports ``modeling_auto``, which imports the trigger before it has
defined ``AutoModel``; hfssl.models then asking for ``AutoModel`` would fail). So until
registration is done the hook also watches the imports of ``hfssl.models.*``, ``hfssl.pretext.*``
and ``transformers.models.auto.*``, and registration waits for the first moment none of them is
half-imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TRIGGER = "transformers.models.auto.configuration_auto"
"""transformers' module whose import means the ``Auto*`` factories are about to be usable."""

_state = "waiting"  # -> "deferred" (trigger seen mid-import) -> "running" -> "done"


def is_registered() -> bool:
    return _state == "done"


def register() -> None:
    """Register every hfssl config/model class with the ``Auto*`` factories (idempotent).

    Imports :mod:`hfssl.models` (backbone config and task models, timm architectures) and every
    pretext method module (pretext configs/models, ``AutoModelForPreTraining``).
    """
    global _state
    if _state in ("running", "done"):
        return
    _state = "running"
    try:
        importlib.import_module("hfssl.models")
        importlib.import_module("hfssl.pretext").register_all()
    except BaseException:
        _state = "waiting"
        raise
    _state = "done"
    _uninstall()


# what :func:`register` imports (and what those modules import from hfssl)
_REGISTRATION_PACKAGES = ("hfssl.models", "hfssl.pretext", "hfssl.errors", "hfssl.utils")
# transformers' Auto* modules: registration must not run while one of them is half-imported
_AUTO_PACKAGE = "transformers.models.auto"
_WATCHED = (*_REGISTRATION_PACKAGES, _AUTO_PACKAGE)


def _half_imported(finishing: str = "") -> bool:
    """Whether a module that registration imports is being imported (``finishing`` excepted)."""
    for name, module in list(sys.modules.items()):
        if name == finishing or not any(name == p or name.startswith(p + ".") for p in _WATCHED):
            continue
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


def _on_trigger() -> None:
    global _state
    if _state != "waiting":
        return
    if _half_imported(finishing=TRIGGER):  # the trigger is still flagged as importing: not a reason to wait
        _state = "deferred"
    else:
        register()


class _WatchingLoader(importlib.abc.Loader):
    """Runs ``after(name)`` once the wrapped loader has executed the module; anything else
    (``get_source``, ``get_resource_reader`` ...) is the wrapped loader's."""

    def __init__(self, loader: importlib.abc.Loader, after: Callable[[str], None]) -> None:
        self._loader = loader
        self._after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._after(module.__name__)


def _after_trigger(name: str) -> None:
    _on_trigger()


def _after_watched(name: str) -> None:
    if _state == "deferred" and not _half_imported(finishing=name):
        register()


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == TRIGGER and _state == "waiting":
            after = _after_trigger
        elif _state in ("waiting", "deferred") and fullname.startswith(
            ("hfssl.models", "hfssl.pretext", _AUTO_PACKAGE + ".")
        ):
            after = _after_watched
        else:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _WatchingLoader(spec.loader, after)
                return spec
        return None


_HOOK = _Hook()


def _uninstall() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install() -> None:
    """Register as soon as transformers' ``Auto*`` machinery is imported (now, if it is)."""
    if _state == "done":
        return
    if TRIGGER in sys.modules:  # transformers' Auto* already usable: register right away
        register()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
