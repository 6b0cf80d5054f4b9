"""Typed configuration: one pydantic model is the single source of truth for YAML keys, CLI flags and help.

- `StrictModel`: base class, unknown keys are errors (`extra="forbid"`).
- `load_config(Model, path, overrides)`: `yaml.safe_load` a recipe, apply dotted `key=value` overrides,
  validate, and turn the first validation problem into one `UserError` line that names the file, the key
  and, for a typo, the closest valid key.
- `model_options(Model)`: click options generated from the model's fields (name, type, default, help), so
  a command's flags cannot drift from its config.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticUndefined

from eat.errors import UserError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


# ---------------------------------------------------------------------------------------------- loading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no tags that construct objects)."""
    path = Path(path)
    if path.is_dir():
        raise UserError("is a directory, expected a YAML file", path=path)
    if not path.is_file():
        raise UserError("file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"invalid YAML: {problem}", path=path, line=line) from None
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", path=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping of keys at the top level, got {type(data).__name__}", path=path)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.learning_rate=1e-4` -> (["training", "learning_rate"], 1e-4); values are YAML scalars."""
    if "=" not in text:
        raise UserError(f"override {text!r} is not of the form key=value (e.g. training.learning_rate=1e-4)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    quoted = len(raw.strip()) >= 2 and raw.strip()[0] == raw.strip()[-1] and raw.strip()[0] in "'\""
    # YAML reads 1e-4 as a string (it wants 1.0e-4); numbers like that are what users type. A quoted value
    # (`model.revision='20240101'`) stays the string the user quoted.
    if isinstance(value, str) and not quoted:
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
        except ValueError:
            pass
    return key.split("."), value


class Override(NamedTuple):
    """One command-line `key=value`, kept so errors can blame the override rather than the file."""

    keys: list[str]
    value: Any
    text: str


class OverriddenData(dict):
    """A config mapping that remembers the command-line overrides applied to it (see `apply_overrides`)."""

    overrides: list[Override]


# It is still a plain mapping to YAML (safe_dump refuses unknown dict subclasses).
yaml.SafeDumper.add_representer(OverriddenData, yaml.representer.SafeRepresenter.represent_dict)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> OverriddenData:
    """Set dotted `key=value` overrides in `data`; the result remembers them for `validate`'s messages."""
    out = data if isinstance(data, OverriddenData) else OverriddenData(data)
    if not hasattr(out, "overrides"):
        out.overrides = []
    for text in overrides:
        keys, value = parse_override(text)
        node: dict[str, Any] = out
        for part in keys[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[keys[-1]] = value
        out.overrides.append(Override(keys, value, text))
    return out


def load_config(model_cls: type[M], path: str | Path | None = None, overrides: Iterable[str] = ()) -> M:
    """Load and validate a config; every problem becomes one UserError line."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    return validate(model_cls, data, source=str(path) if path is not None else "command line")


def override_for(
    loc: Sequence[Any], overrides: Sequence[Override], into_section: bool = False
) -> Override | None:
    """The (last) override that set the value at `loc`, a pydantic error location; None if it came from the file.

    `loc` may hold list indices and union tags the override does not spell, so the override's keys must
    appear in order in `loc`, starting at its first part; an override of a section covers the keys inside.
    With `into_section`, an override of a key inside `loc` counts too (`training.lr.x=1` made `lr` a dict).
    """
    parts = [str(p) for p in loc if not isinstance(p, int)]
    for override in reversed(overrides):
        keys = override.keys
        if not parts or parts[0] != keys[0]:
            continue
        i = 0
        for part in parts:
            if i < len(keys) and part == keys[i]:
                i += 1
        if i == len(keys):
            return override
    if into_section:
        for override in reversed(overrides):
            if parts and override.keys[: len(parts)] == parts:
                return override
    return None


def _is_list_only(annotation: Any) -> bool:
    """True when every non-None type the field accepts is a list/tuple/set (so a scalar is always wrong)."""
    kinds = [t for t in _unwrap(annotation) if t is not type(None)]
    return bool(kinds) and all(
        t in (list, tuple, set, frozenset) or get_origin(t) in (list, tuple, set, frozenset) for t in kinds
    )


def _listify_overrides(
    model_cls: type[BaseModel], data: dict[str, Any], overrides: Sequence[Override]
) -> None:
    """`training.report_to=none` means `[none]`: a scalar override of a list-only field becomes one item."""
    for override in overrides:
        *parents, name = override.keys
        fields = [cls.model_fields.get(name) for cls in _models_at(model_cls, parents)]
        annotations = [f.annotation for f in fields if f is not None]
        if not annotations or not all(_is_list_only(a) for a in annotations):
            continue
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or name not in node:
            continue
        value = node[name]
        if value is not None and not isinstance(value, list | tuple | dict):
            node[name] = [value]


def validate(
    model_cls: type[M], data: dict[str, Any], source: str, overrides: Sequence[Override] | None = None
) -> M:
    """Validate `data`; the first problem becomes one UserError naming the override or `source` file.

    `overrides` defaults to those `apply_overrides` recorded on `data`.
    """
    if overrides is None:
        overrides = getattr(data, "overrides", [])
    _listify_overrides(model_cls, data, overrides)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        message = describe_validation_error(exc, model_cls)
        err = exc.errors(include_url=False)[0]
        override = None
        if err["type"] != "missing":
            made_section = isinstance(err.get("input"), dict) and err["type"].endswith("_type")
            override = override_for(err["loc"], overrides, into_section=made_section)
        if override is not None:
            raise UserError(f"override {override.text}: {message}") from None
        raise UserError(message, path=source) from None


def dump_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config next to outputs so a run can be reproduced exactly."""
    from eat.io import atomic_open

    with atomic_open(path) as fh:
        yaml.safe_dump(config.model_dump(mode="json"), fh, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------------------------- error messages


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated/list."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _models_at(model_cls: type[BaseModel], loc: Sequence[Any]) -> list[type[BaseModel]]:
    """The model classes that could sit at `loc` (unions give several; tags in loc are skipped)."""
    current = [model_cls]
    for part in loc:
        nxt: list[type[BaseModel]] = []
        for cls in current:
            field = cls.model_fields.get(str(part))
            if field is None:
                # A discriminated-union tag or list index: stay on the same candidates.
                nxt.append(cls)
                continue
            for t in _unwrap(field.annotation):
                inner = [t]
                if get_origin(t) in (list, dict, tuple):
                    inner = [a for arg in get_args(t) for a in _unwrap(arg)]
                nxt.extend(c for c in inner if isinstance(c, type) and issubclass(c, BaseModel))
        current = nxt or current
    return current


def recipe_keys(model_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) of every leaf key, nested models flattened.

    The table behind `eat train keys`: the same models validate recipes, so it cannot drift.
    """
    from pydantic_core import PydanticUndefined

    rows = []
    for name, field in model_cls.model_fields.items():
        key = f"{prefix}{name}"
        nested = [t for t in _unwrap(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if nested:
            rows += recipe_keys(nested[0], f"{key}.")
            continue
        if field.default is not PydanticUndefined:
            default = repr(field.default) if not isinstance(field.default, str) else field.default
        elif field.default_factory is not None:
            default = repr(field.default_factory())
        else:
            default = "(required)"
        if get_origin(field.annotation) is Literal:
            kind = " | ".join(str(a) for a in get_args(field.annotation))
        else:
            kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        rows.append((key, kind, default, field.description or ""))
    return rows


def describe_validation_error(exc: ValidationError, model_cls: type[BaseModel]) -> str:
    """One line for the first error: the dotted key, what is wrong, and a suggestion for typos."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = [p for p in err["loc"]]
    key = ".".join(str(p) for p in loc)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden":
        parents = _models_at(model_cls, loc[:-1])
        valid = sorted({name for cls in parents for name in cls.model_fields})
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        prefix = ".".join(str(p) for p in loc[:-1] if not isinstance(p, int))
        hint = f" (did you mean {(prefix + '.' if prefix else '') + close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}; valid keys here: {', '.join(valid)}{more}"
    if err["type"] == "missing":
        return f"missing required key {key!r}{more}"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    hint = ""
    if err["type"] in ("list_type", "tuple_type", "set_type") and isinstance(value, str | int | float | bool):
        flow = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True).strip()
        hint = f"; for a list of one, write {flow}"
    return f"key {key!r}: {err['msg']} (got {shown}){hint}{more}"


# -------------------------------------------------------------------------------------- CLI options


def _click_type(annotation: Any) -> tuple[Any, bool, bool]:
    """Map a field annotation to (click type, is_flag, multiple)."""
    import click

    candidates = [t for t in _unwrap(annotation) if t is not type(None)]
    t = candidates[0] if candidates else str
    origin = get_origin(t)
    if origin in (list, tuple, set):
        inner, _, _ = _click_type(get_args(t)[0] if get_args(t) else str)
        return inner, False, True
    if origin is Literal:
        return click.Choice([str(a) for a in get_args(t)]), False, False
    if t is bool:
        return bool, True, False
    if t in (int, float, str):
        return t, False, False
    if t is Path:
        return click.Path(path_type=Path), False, False
    return str, False, False


def model_options(model_cls: type[BaseModel], exclude: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """Decorator adding one click option per field of `model_cls` (help text from field descriptions).

    Options default to None so that only flags the user gave are passed on; the model supplies defaults.
    List fields accept repeated flags and comma-separated values.
    """
    import click

    skip = set(exclude)

    def decorator(func: Callable) -> Callable:
        for name, field in reversed(list(model_cls.model_fields.items())):
            if name in skip:
                continue
            flag = "--" + name.replace("_", "-")
            ctype, is_flag, multiple = _click_type(field.annotation)
            default = field.get_default(call_default_factory=True)
            help_text = (field.description or "").strip()
            if default is not None and default is not PydanticUndefined and default != [] and not is_flag:
                help_text += f"  [default: {default}]"
            if field.is_required():
                help_text += "  [required]"
            if is_flag:
                decl = f"{flag}/--no-{name.replace('_', '-')}"
                func = click.option(decl, name, default=None, help=help_text)(func)
            else:
                func = click.option(flag, name, type=ctype, default=None, multiple=multiple, help=help_text)(
                    func
                )
        return func

    return decorator


def _is_mapping(annotation: Any) -> bool:
    return any(get_origin(t) is dict or t is dict for t in _unwrap(annotation))


def model_from_options(model_cls: type[M], options: dict[str, Any]) -> M:
    """Build the model from click kwargs, dropping flags not given and splitting comma lists."""
    data: dict[str, Any] = {}
    for name, value in options.items():
        if name not in model_cls.model_fields or value is None or value == ():
            continue
        if isinstance(value, tuple):
            value = [
                v for item in value for v in (item.split(",") if isinstance(item, str) else [item]) if v != ""
            ]
        elif isinstance(value, str) and _is_mapping(model_cls.model_fields[name].annotation):
            try:  # a mapping flag is a YAML flow mapping: --extra-body '{top_k: 20, guided_choice: [a, b]}'
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                value = None
            if not isinstance(value, dict):
                flag = "--" + name.replace("_", "-")
                raise UserError(f"option {flag}: expected a mapping such as '{{key: value, other: 2}}'")
        data[name] = value
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "options"
        if err["type"] == "missing":
            raise UserError(f"missing option {flag}") from None
        raise UserError(f"option {flag}: {err['msg']}") from None
