"""Typed stage configs and their `++key=value` overrides.

Every stage (generate, evaluate, sft, ...) owns one dataclass config whose attribute docstrings are
its documentation. This module turns a list of Hydra overrides into an instance of that dataclass,
and fails *before anything runs* when a key does not exist (naming the closest valid key) or a value
has the wrong type (naming the field and the type it expects).

Why not plain `@hydra.main`: Hydra's `++` adds unknown keys silently even in struct mode, so a typo
such as `++inference.temprature=1` would run hours with the default temperature. We check every key
against the dataclass first, then let Hydra's Compose API (ConfigStore + override grammar) build the
config, without the output folders and logging changes `@hydra.main` would add.

The pipeline calls `validate_overrides` at submit time with the same rules the stage applies when it
starts, so a launcher fails on the user's machine, not hours later on the cluster.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from typing import Any, Callable, Iterable, Sequence, TypeGuard, TypeVar

from omegaconf import MISSING, OmegaConf

from .suggest import did_you_mean

__all__ = [
    "MISSING",
    "ConfigError",
    "register_stage_config",
    "compose_stage_config",
    "validate_overrides",
    "config_fields",
    "format_help",
    "run_stage",
]

T = TypeVar("T")

_OVERRIDE_PREFIXES = ("++", "+", "~")


class ConfigError(ValueError):
    """A bad override or config value; the message is meant for the user as it is."""


# ----------------------------------------------------------------------------- field docs and types


def field_docs(cls: type) -> dict[str, str]:
    """The string literal written under each field of a dataclass (PEP 257 attribute docstrings)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _resolved_hints(cls: type) -> dict[str, Any]:
    """Type hints of the dataclass's fields (class-level constants such as KEY_ALIASES are not keys)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def _is_config_class(tp: Any) -> TypeGuard[type]:
    """A nested dataclass config. Type hints are classes; is_dataclass alone would also accept an instance."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_open_mapping(tp: Any) -> bool:
    """Dict-typed (or Any) fields accept any sub-key: `++chat_template_kwargs.reasoning_effort=high`."""
    tp = _strip_optional(tp)
    return tp is Any or tp is dict or typing.get_origin(tp) is dict


def _type_name(tp: Any) -> str:
    tp_inner = _strip_optional(tp)
    optional = tp_inner is not tp
    if isinstance(tp_inner, type) and typing.get_origin(tp_inner) is None:
        name = tp_inner.__name__
    else:
        name = str(tp_inner).replace("typing.", "")
    return f"{name} or null" if optional else name


@dataclasses.dataclass
class FieldInfo:
    """One leaf of a config tree, as `--help` shows it."""

    path: str
    type_name: str
    default: Any
    doc: str


def config_fields(cls: type, prefix: str = "") -> list[FieldInfo]:
    """All leaves of a (nested) dataclass config, in declaration order, with docs and defaults."""
    out: list[FieldInfo] = []
    docs = field_docs(cls)
    hints = _resolved_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        tp = hints[f.name]
        inner = _strip_optional(tp)
        if _is_config_class(inner):
            out.extend(config_fields(inner, prefix=f"{path}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = MISSING
        out.append(FieldInfo(path, _type_name(tp), default, docs.get(f.name, "")))
    return out


def _all_paths(cls: type, prefix: str = "") -> list[str]:
    paths = []
    hints = _resolved_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        paths.append(path)
        inner = _strip_optional(hints[f.name])
        if _is_config_class(inner):
            paths.extend(_all_paths(inner, prefix=f"{path}."))
    return paths


def _field_type(cls: type, dotted: str) -> Any:
    tp: Any = cls
    for part in dotted.split("."):
        tp = _strip_optional(tp)
        if not _is_config_class(tp):
            return Any
        tp = _resolved_hints(tp)[part]
    return tp


# ----------------------------------------------------------------------------- key checks


def _check_key(cls: type, key: str) -> None:
    """Raise ConfigError unless `key` names a field of `cls` (or lies under a dict-typed field)."""
    unsupported = getattr(cls, "UNSUPPORTED_KEYS", {})
    for name, hint in unsupported.items():
        if key == name or key.startswith(name + "."):
            raise ConfigError(f"'{key}' is a NeMo-Skills key assay does not take: {hint}.")
    tp: Any = cls
    walked: list[str] = []
    for part in key.split("."):
        tp = _strip_optional(tp)
        if _is_open_mapping(tp):
            return
        if not _is_config_class(tp):
            raise ConfigError(
                f"Unknown config key '{key}': '{'.'.join(walked)}' is a {_type_name(tp)}, it has no sub-keys."
            )
        hints = _resolved_hints(tp)
        if part not in hints:
            raise ConfigError(_unknown_key_message(cls, key))
        walked.append(part)
        tp = hints[part]


def apply_key_alias(cls: type, text: str) -> str:
    """An override under another name the stage accepts (its `KEY_ALIASES`, e.g. NeMo-Skills' `max_samples`),
    rewritten to the field's own name."""
    prefix, key, value = _split_override(text)
    target = getattr(cls, "KEY_ALIASES", {}).get(key)
    if target is None:
        return text
    if value is not None:
        value = getattr(cls, "ALIAS_VALUES", {}).get(key, {}).get(value.strip(), value)
    return f"{prefix}{target}" + ("" if value is None and prefix == "~" else f"={value}")


def _unknown_key_message(cls: type, key: str) -> str:
    return f"Unknown config key '{key}' for {cls.__name__}.{did_you_mean(key, _all_paths(cls))}"


# ----------------------------------------------------------------------------- overrides


def _split_override(text: str) -> tuple[str, str, str | None]:
    """(prefix, key, raw value or None for deletions)."""
    prefix = next((p for p in _OVERRIDE_PREFIXES if text.startswith(p)), "")
    body = text[len(prefix) :]
    if prefix == "~":
        key, _, value = body.partition("=")
        return prefix, key, (value or None)
    if "=" not in body:
        raise ConfigError(f"Override '{text}' has no '=': write it as ++key=value.")
    key, _, value = body.partition("=")
    return prefix, key.strip(), value


def _quote_for_hydra(value: str) -> str:
    """A literal string in Hydra's grammar, so values such as `a=b` survive as they were typed."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _normalize_override(text: str, parser: Any) -> str:
    """Keep an override Hydra can parse; turn a value Hydra cannot parse into a literal string."""
    prefix, key, value = _split_override(text)
    try:
        parser.parse_override(text)
        return text
    except Exception:  # noqa: BLE001 - any parse failure of the value means: take it literally
        if value is None:
            raise ConfigError(f"Cannot parse override '{text}'.") from None
        fixed = f"{prefix}{key}={_quote_for_hydra(value)}"
        parser.parse_override(fixed)
        return fixed


def _stage_name(cls: type) -> str:
    return f"assay_stage_{cls.__module__}.{cls.__qualname__}"


def register_stage_config(cls: type[T]) -> type[T]:
    """Register a stage's dataclass in Hydra's ConfigStore (usable as a decorator)."""
    from hydra.core.config_store import ConfigStore

    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    ConfigStore.instance().store(name=_stage_name(cls), node=cls)
    return cls


def _type_error_message(cls: type, override: str, key: str, value: str | None, cause: BaseException) -> str:
    expected = _type_name(_field_type(cls, key)) if key else "?"
    detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return f"Bad value in '{override}': '{key}' expects {expected}, got {value!r}. ({detail})"


def compose_stage_config(cls: type[T], overrides: Sequence[str], *, check_required: bool = True) -> T | Any:
    """Build the stage config from overrides, with clear errors for unknown keys and bad values.

    Returns an instance of `cls` (`check_required=True`), or the composed OmegaConf object when
    required fields may still be missing (the pipeline fills some of them itself).
    """
    from hydra import compose, initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException

    register_stage_config(cls)
    parser = OverridesParser.create()
    normalized = []
    for text in overrides:
        text = apply_key_alias(cls, text)
        _, key, _ = _split_override(text)
        _check_key(cls, key)
        normalized.append(_normalize_override(text, parser))

    GlobalHydra.instance().clear()
    with initialize(version_base=None):
        try:
            cfg = compose(config_name=_stage_name(cls), overrides=normalized)
        except ConfigCompositionException as exc:
            bad = _failing_override(exc, normalized)
            _, key, value = _split_override(bad) if bad else ("", "", None)
            raise ConfigError(_type_error_message(cls, bad or "?", key, value, exc.__cause__ or exc)) from None
    GlobalHydra.instance().clear()
    if not check_required:
        return cfg
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError("Missing required config value(s): " + ", ".join(f"++{k}=..." for k in missing) + ".")
    try:
        return OmegaConf.to_object(cfg)
    except (ValueError, TypeError) as exc:  # __post_init__ checks of the dataclasses
        raise ConfigError(str(exc)) from None


def _failing_override(exc: Exception, overrides: Iterable[str]) -> str | None:
    message = str(exc)
    for text in overrides:
        if text in message:
            return text
    return None


def validate_overrides(cls: type, overrides: Sequence[str]) -> None:
    """Submit-time check: every key exists and every value has the right type (required fields may be absent)."""
    compose_stage_config(cls, overrides, check_required=False)


# ----------------------------------------------------------------------------- the stage entry point


def format_help(cls: type, prog: str) -> str:
    """`--help` text: every field with its type, default and docstring."""
    lines = [f"usage: {prog} ++key=value [++key=value ...]", ""]
    if cls.__doc__:
        lines += [inspect.cleandoc(cls.__doc__), ""]
    lines.append("fields:")
    for info in config_fields(cls):
        default = "(required)" if info.default is MISSING else f"= {info.default!r}"
        lines.append(f"  {info.path}: {info.type_name} {default}")
        for doc_line in textwrap.wrap(info.doc, width=92) or [""]:
            if doc_line:
                lines.append(f"      {doc_line}")
    lines += ["", "Other flags: --help (this text), --cfg (print the composed config and exit)."]
    return "\n".join(lines)


def run_stage(
    cls: type[T], main: Callable[[T], Any], argv: Sequence[str] | None = None, prog: str | None = None
) -> Any:
    """Entry point of `python -m assay.<part>.<stage> ++key=value ...`.

    Exits with status 2 and a one-paragraph message on a config error, before the stage does any work
    (or when the stage itself raises ConfigError about its inputs).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog or f"python -m {main.__module__}"
    if "--help" in args or "-h" in args:
        print(format_help(cls, prog))
        return None
    print_cfg = "--cfg" in args
    args = [a for a in args if a != "--cfg"]
    stray = [a for a in args if a.startswith("-")]
    if stray:
        print(f"error: unknown flag(s) {stray}; stage options are ++key=value (see --help)", file=sys.stderr)
        raise SystemExit(2)
    try:
        cfg = compose_stage_config(cls, args, check_required=not print_cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if print_cfg:
        print(OmegaConf.to_yaml(cfg if not dataclasses.is_dataclass(cfg) else OmegaConf.structured(cfg)))
        return None
    try:
        return main(cfg)
    except ConfigError as exc:  # a stage's own check of its inputs (e.g. a prompt field the data lacks)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
