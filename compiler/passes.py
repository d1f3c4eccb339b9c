"""Passes: the ``Pass`` base class, ``PassResult`` and the registry of passes by name.

A pass is a frozen dataclass with a kebab-case ``name``, a docstring listing
its rewrites, and typed options (dataclass fields with defaults)::

    @dataclass(frozen=True)
    class FoldConstantsPass(Pass):
        \"\"\"Op(const, const) -> const ...\"\"\"
        name = "fold-constants"
        max_bytes: int = 1 << 20          # pipeline text: fold-constants{max-bytes=4096}

        def run(self, graph: Graph) -> PassResult:
            ...
            return PassResult(modified=changed)

Contract: ``run`` gets a verified graph, mutates it in place, and returns
``PassResult(modified)``; the graph it leaves must verify.  ``requires`` and
``ensures`` are optional hooks that check pre/postconditions (raise
``EmberError``).  Passes hold no global mutable state.

Registry, by name (see ``get_pass``/``available_passes``):
1. classes registered with ``@register_pass``;
2. Ember's built-in passes, listed lazily in ``passes/__init__.py``
   (``name -> "module:Class"``, imported on first use);
3. other packages' passes, declared under the entry-point group ``ember.passes``
   (``my-pass = "my_pkg.module:MyPass"``).
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

from .diagnostics import EmberError
from .ir.core import Graph

ENTRY_POINT_GROUP = "ember.passes"


@dataclass(frozen=True)
class PassResult:
    """What a pass reports: whether it changed the graph, plus optional counters."""

    modified: bool
    statistics: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """Base class of every pass (subclasses are frozen dataclasses; fields are options)."""

    name: ClassVar[str] = ""
    in_place: ClassVar[bool] = True

    def run(self, graph: Graph) -> PassResult:
        raise NotImplementedError(f"pass '{self.name}' does not implement run()")

    def requires(self, graph: Graph) -> None:
        """Precondition check before ``run`` (raise ``EmberError``); none by default."""

    def ensures(self, graph: Graph) -> None:
        """Postcondition check after ``run`` (raise ``EmberError``); none by default."""

    def __call__(self, graph: Graph) -> PassResult:
        self.requires(graph)
        result = self.run(graph)
        self.ensures(graph)
        return result

    # options -----------------------------------------------------------------
    @classmethod
    def option_names(cls) -> dict[str, dataclasses.Field]:
        """Kebab-case option name -> dataclass field."""
        return {f.name.replace("_", "-"): f for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "Pass":
        """Build the pass from text options (kebab-case keys), converting each to its field's type."""
        fields = cls.option_names()
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for key, text in options.items():
            f = fields.get(key)
            if f is None:
                valid = ", ".join(fields) or "none"
                raise EmberError(f"pass '{cls.name}' has no option '{key}' (options: {valid})")
            kwargs[f.name] = _convert_option(cls.name, key, text, hints.get(f.name, str))
        return cls(**kwargs)

    def pipeline_text(self) -> str:
        """This pass as pipeline text, with the options that differ from their defaults."""
        opts = []
        for key, f in self.option_names().items():
            value = getattr(self, f.name)
            default = (
                f.default
                if f.default is not dataclasses.MISSING
                else (f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            )
            if value != default:
                opts.append(f"{key}={_format_option(value)}")
        return f"{self.name}{{{','.join(opts)}}}" if opts else self.name


def _format_option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_option(v) for v in value) + "]"
    return str(value)


def _convert_option(pass_name: str, key: str, text: str, hint: Any) -> Any:
    """Convert option text to ``hint`` (bool, int, float, str, tuple/list of those, Optional)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return _convert_option(pass_name, key, text, args[0]) if text.lower() not in ("none", "") else None
    try:
        if hint is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return text.lower() in ("true", "1")
        if hint in (int, float, str):
            return hint(text)
        if origin in (tuple, list):
            items = text.strip("[]")
            parts = [p.strip() for p in items.split(",")] if items.strip() else []
            conv = [_convert_option(pass_name, key, p, args[0] if args else str) for p in parts]
            return tuple(conv) if origin is tuple else conv
    except ValueError as exc:
        raise EmberError(
            f"pass '{pass_name}': option '{key}={text}' is not a valid {getattr(hint, '__name__', hint)}: {exc}"
        ) from None
    return text


# --------------------------------------------------------------------------- registry

_REGISTERED: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make ``cls`` available by its ``name`` (kebab-case, unique)."""
    if not cls.name or cls.name != cls.name.lower() or " " in cls.name or "_" in cls.name:
        raise ValueError(f"pass name {cls.name!r} of {cls.__qualname__} must be non-empty kebab-case")
    other = _REGISTERED.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"pass name '{cls.name}' is taken by {other.__module__}.{other.__qualname__}")
    _REGISTERED[cls.name] = cls
    return cls


def unregister_pass(name: str) -> None:
    """Remove a pass registered with ``register_pass`` (tests use this to clean up)."""
    _REGISTERED.pop(name, None)


def _lazy_sources() -> dict[str, str]:
    """Pass name -> "module:Class" from Ember's built-ins and the ``ember.passes`` entry points."""
    sources: dict[str, str] = {}
    try:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            sources.setdefault(ep.name, ep.value)
    except Exception:  # a broken installed distribution must not break Ember
        pass
    try:
        from passes import available_builtin_passes

        sources.update(available_builtin_passes())
    except ImportError:
        pass
    return sources


def available_passes() -> list[str]:
    """Every pass name that ``get_pass`` accepts, sorted."""
    return sorted(set(_REGISTERED) | set(_lazy_sources()))


def get_pass(name: str) -> type[Pass]:
    """The pass class called ``name`` (imported on first use); ``EmberError`` listing valid names if unknown."""
    cls = _REGISTERED.get(name)
    if cls is not None:
        return cls
    source = _lazy_sources().get(name)
    if source is None:
        raise EmberError(f"unknown pass '{name}'", details=[f"available passes: {', '.join(available_passes())}"])
    module_name, _, attr = source.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise EmberError(f"pass '{name}' could not be loaded from '{source}': {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        raise EmberError(f"'{source}' (pass '{name}') is not a Pass subclass")
    if cls.name != name:
        raise EmberError(f"'{source}' is registered as pass '{name}' but its name is '{cls.name}'")
    _REGISTERED.setdefault(name, cls)
    return cls
