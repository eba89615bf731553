"""Command-line settings derived from the config dataclasses: one source for each.

A ``Setting`` names a flag and the dataclass field it sets; everything else is
derived from that field: its default, its ``--help`` text (the field's
docstring, read from the source), and its environment variable
(``--some-name`` is ``GATEWAY_SOME_NAME``). Only a flag's name and its parser
are written here, because neither can be read off a type: a flag name is a
public contract (deploy manifests and scripts use it) and a field may be
renamed; and "seconds, not negative" is a rule a ``float`` does not state.

Why not a settings library: pydantic-settings would make every config a
pydantic model (they are frozen, slotted dataclasses used on the hot path and
by tests) and bring its own error format; the same derivation over the
dataclasses we have is this module, and argparse keeps its one-line errors
and exit code 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "GATEWAY_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class Setting:
    """One operator setting: ``--flag``, ``GATEWAY_FLAG`` and the field it sets."""

    flag: str
    owner: type
    field: str
    parse: Callable[[str], Any] | None = None
    """Parser of the flag's text; None makes a ``--flag/--no-flag`` switch."""
    metavar: str | None = None
    help: str | None = None
    """What ``--help`` says; None: the field's docstring."""
    from_env: bool = True
    """False for what must be said on the command line each time (opt-ins)."""

    @property
    def name(self) -> str:
        return self.flag

    @property
    def env(self) -> str | None:
        """The environment variable, or None if the setting has none."""
        if not self.from_env:
            return None
        return ENV_PREFIX + self.flag.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")

    @property
    def switch(self) -> bool:
        return self.parse is None

    def default(self) -> Any:
        """The field's default (None if it has none)."""
        found = {f.name: f for f in dataclasses.fields(self.owner)}[self.field]
        if found.default is not dataclasses.MISSING:
            return found.default
        if found.default_factory is not dataclasses.MISSING:
            return found.default_factory()
        return None

    def describe(self) -> str:
        """The ``--help`` text: the docstring's first paragraph, default, variable."""
        text = (self.help or field_docs(self.owner).get(self.field, "")).rstrip(".")
        default = self.default()
        if self.switch:
            text += f" (default {'on' if default else 'off'})"
        elif default not in (None, "", {}, ()):
            text += f" (default {default})"
        if self.env is not None:
            text += f" [env {self.env}]"
        return text.replace("%", "%%")  # argparse formats help with %


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Return the first paragraph of each field's docstring in ``cls``'s source.

    Attribute docstrings (a string right after a field) are not kept at run
    time, so they are read from the source, once per class.
    """
    module = ast.parse(inspect.cleandoc(inspect.getsource(cls)))
    body = next(n for n in module.body if isinstance(n, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            paragraph = inspect.cleandoc(after.value.value).split("\n\n")[0]
            docs[node.target.id] = re.sub(r"\s+", " ", paragraph).replace("``", "")
    return docs


def env_bool(setting: Setting, raw: str) -> bool:
    """Parse a switch's environment value; raise ValueError naming the flag."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"argument --{setting.flag}: invalid value {raw!r} in {setting.env} "
        "(true/false, yes/no, on/off, 1/0)"
    )


def add_settings(
    parser: argparse.ArgumentParser,
    settings: tuple[Setting, ...],
    environ: Mapping[str, str],
    titles: Mapping[type, str],
) -> None:
    """Add every setting to ``parser``, grouped by owner, defaults from ``environ``.

    A flag left out parses as None (a switch: its environment text, or None),
    so the dataclass default applies: it is stated once, in the dataclass.
    """
    groups: dict[type, argparse._ArgumentGroup] = {}
    for setting in settings:
        group = groups.get(setting.owner)
        if group is None:
            group = groups[setting.owner] = parser.add_argument_group(titles[setting.owner])
        raw = environ.get(setting.env) if setting.env is not None else None
        if setting.parse is None:
            group.add_argument(
                f"--{setting.flag}",
                dest=setting.dest,
                action=argparse.BooleanOptionalAction,
                default=raw,  # checked in ``collect``, with the flag's name
                help=setting.describe(),
            )
        else:
            # argparse runs string defaults through ``type``: a bad environment
            # value gets the same one-line error as a bad flag.
            group.add_argument(
                f"--{setting.flag}",
                dest=setting.dest,
                type=setting.parse,
                default=raw,
                metavar=setting.metavar,
                help=setting.describe(),
            )


def collect(args: argparse.Namespace, settings: tuple[Setting, ...]) -> dict[type, dict[str, Any]]:
    """Return the values given (flag or environment), by owner and field name."""
    values: dict[type, dict[str, Any]] = {}
    for setting in settings:
        value = getattr(args, setting.dest)
        if isinstance(value, str) and setting.switch:
            value = env_bool(setting, value)
        if value is not None:
            values.setdefault(setting.owner, {})[setting.field] = value
    return values
