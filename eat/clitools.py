"""Click helpers shared by the package CLIs: lazy sub-commands and groups with a default command."""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used, so `eat --help` stays fast.

    `lazy` maps a command name to "module:attribute" and a one-line help shown in listings.
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr = self.lazy[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        # List lazy commands with their short help without importing them.
        rows = [(name, help_) for name, (_, help_) in self.lazy.items()]
        rows += [(n, c.get_short_help_str()) for n, c in self.commands.items() if n not in self.lazy]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


class DefaultCommandGroup(click.Group):
    """A group that runs `default_command` when the first argument is not a sub-command.

    Lets `eat train RECIPE.yaml key=value` and `eat train merge ...` share one name.
    """

    def __init__(self, *args, default_command: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
