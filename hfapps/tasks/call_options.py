"""A task's call options, declared once as a dataclass and used three ways: to check what a caller passes,
to build the task's command-line flags, and (for the editor) in the typed helpers of `hfapps.api`.

    @dataclass
    class ClassificationOptions:
        top_k: int | None = option(1, "how many labels per text, best first (None: all)")
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


def option(
    default: Any = None,
    help: str = "",
    *,
    load: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field for a call option. `load=True`: it also decides how the model is loaded (a
    translation's languages pick its default model), so the command line passes it when loading. A number
    may be bounded: `minimum`/`maximum` inclusive, `above` exclusive; a string may be one of `choices`."""
    bounds = {"minimum": minimum, "above": above, "maximum": maximum, "choices": choices}
    return dataclasses.field(default=default, metadata={"help": help, "load": load, **bounds})


@dataclass(frozen=True)
class OptionInfo:
    name: str
    kind: type  # int, float, str, bool, or list (of str)
    optional: bool
    default: Any
    help: str
    load: bool
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass
class NoOptions:
    """A task that takes no call options."""


def describe(options_class: type) -> list[OptionInfo]:
    """The options of a dataclass, with the plain type each one takes."""
    hints = typing.get_type_hints(options_class)
    found = []
    for field in dataclasses.fields(options_class):
        kinds = [t for t in _members(hints[field.name]) if t is not type(None)]
        kind = typing.get_origin(kinds[0]) or kinds[0]
        found.append(
            OptionInfo(
                field.name,
                kind,
                type(None) in _members(hints[field.name]),
                field.default,
                field.metadata.get("help", ""),
                field.metadata.get("load", False),
                field.metadata.get("minimum"),
                field.metadata.get("above"),
                field.metadata.get("maximum"),
                field.metadata.get("choices"),
            )
        )
    return found


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def check(options_class: type, options: Mapping[str, Any], *, task: str) -> dict[str, Any]:
    """The options a caller gave, checked against the task's declared ones: a name it does not know or a value
    of the wrong type raises an InputError naming the options it takes. Options left at None are dropped."""
    known = {info.name: info for info in describe(options_class)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"Unknown option(s) {unknown} for {task}; it takes: {', '.join(sorted(known)) or 'none'}.")
    checked: dict[str, Any] = {}
    for name, value in options.items():
        info = known[name]
        if value is None:
            if not info.optional:
                raise InputError(f"Option {name!r} of {task} cannot be None.")
            checked[name] = None
            continue
        if not _fits(value, info.kind):
            raise InputError(f"Option {name!r} of {task} takes {_kind_name(info)}, got {value!r:.60}.")
        if info.kind in (int, float) and not _in_bounds(value, info):
            raise InputError(f"Option {name!r} of {task} must be {_bounds_text(info)}, got {value!r}.")
        if info.choices and value not in info.choices:
            raise InputError(
                f"Option {name!r} of {task} must be one of {', '.join(map(repr, info.choices))}, got {value!r}."
            )
        checked[name] = list(value) if info.kind is list else value
    return checked


def _in_bounds(value: float, info: OptionInfo) -> bool:
    return (
        (info.minimum is None or value >= info.minimum)
        and (info.above is None or value > info.above)
        and (info.maximum is None or value <= info.maximum)
    )


def _bounds_text(info: OptionInfo) -> str:
    parts = [
        f"at least {info.minimum}" if info.minimum is not None else "",
        f"above {info.above}" if info.above is not None else "",
        f"at most {info.maximum}" if info.maximum is not None else "",
    ]
    return " and ".join(p for p in parts if p)


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _kind_name(info: OptionInfo) -> str:
    name = {
        list: "a list of strings",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
    }.get(info.kind, info.kind.__name__)
    return f"{name} or None" if info.optional else name


def add_arguments(parser: argparse.ArgumentParser, infos: list[OptionInfo]) -> None:
    """One `--flag` per option. Unset flags stay None, so only what the user typed reaches the task."""
    for info in infos:
        flag = "--" + info.name.replace("_", "-")
        help_text = f"{info.help} (default: {info.default})" if info.default is not None else info.help
        if info.kind is bool:
            parser.add_argument(
                flag, dest=info.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif info.kind is list:
            parser.add_argument(
                flag, dest=info.name, default=None, type=_comma_list, help=f"{help_text}; comma-separated"
            )
        else:
            parser.add_argument(
                flag, dest=info.name, default=None, type=info.kind, choices=info.choices, help=help_text
            )


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def given(args: argparse.Namespace, infos: list[OptionInfo]) -> dict[str, Any]:
    """The options a command line set."""
    return {info.name: getattr(args, info.name) for info in infos if getattr(args, info.name, None) is not None}
