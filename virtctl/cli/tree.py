"""The click command tree, loading each command's module on first use."""
from __future__ import annotations

import importlib

import click

from virtctl.commands import ALIASES, COMMANDS


class LazyGroup(click.Group):
    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, name: str):
        name = ALIASES.get(name, name)
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr, _group = entry
        mod = importlib.import_module(f"virtctl.commands.{module}")
        return getattr(mod, attr)


_root: LazyGroup | None = None


def root() -> LazyGroup:
    global _root
    if _root is None:
        _root = LazyGroup(name="virtctl", help="Manage virtual machines.")
    return _root


def all_commands() -> dict[str, click.Command]:
    """Every command object (imports every command module)."""
    r = root()
    return {name: r.get_command(None, name) for name in r.list_commands(None)}
