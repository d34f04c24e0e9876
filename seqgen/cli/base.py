"""What every `seqgen` command shares: the click group, the error wrapper that turns library
errors into one-line click errors (option names into flags), ``--threads``, and flags made
from an option object's fields.

Commands import what they need inside their bodies so that `seqgen --help` stays fast.
"""

import functools
import os
import re
import types
import typing
import warnings
from importlib import import_module
from pathlib import Path

import click

from seqgen.errors import ConfigError, SeqgenError
from seqgen.threads import limit_threads

THREADS_HELP = ("Threads for this command (default: $SEQGEN_THREADS, else all cores). Give each of several "
                "concurrent runs a share: BLAS threads that outnumber the cores spin against each other.")


def _echo_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


# fields whose flag is not --field-name
FLAGS = {"tokenizer_options": "-O", "n": "-n", "include_prime": "--no-prime-in-output"}


def flag(field):
    """The command-line flag of an option field: ``batch_size`` -> ``--batch-size``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def in_flags(error):
    """An error's message with the option names it mentions written as flags."""
    message = " ".join(str(error).splitlines())
    for field in getattr(error, "fields", ()):
        # a one-word name (beam, seed) is also an English word: renamed only where it labels
        # the message ("beam: ...") or is quoted as a name (`resume`); a snake_case name is
        # renamed wherever it stands
        message = message.replace(f"`{field}`", flag(field))
        end = r"(?![\w-])" if "_" in field else r"(?=:)"
        message = re.sub(rf"(?<![\w-]){re.escape(field)}{end}", flag(field), message)
    return message


def seqgen_command(f):
    """Wrap a command: SeqgenError -> one-line click error (exit 1, no traceback; option names
    as flags); Ctrl-C -> "interrupted" (exit 130, no traceback); warnings are printed as
    "warning: ..." lines on stderr as they happen; ``threads`` (from ``--threads``) caps the
    BLAS thread pools."""

    @functools.wraps(f)
    def wrapper(*args, threads=None, **kwargs):
        try:
            limit_threads(threads)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        with warnings.catch_warnings():
            warnings.showwarning = _echo_warning
            try:
                return f(*args, **kwargs)
            except SeqgenError as e:
                raise click.ClickException(in_flags(e)) from None
            except KeyboardInterrupt:  # outputs are written atomically, so nothing half-written stays
                click.echo("\ninterrupted", err=True)
                raise SystemExit(130) from None

    return click.option("--threads", type=click.IntRange(1, 1024), help=THREADS_HELP)(wrapper)


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is used, so `seqgen sample`
    does not pay for the imports of `seqgen train` (pydantic option models, ~0.3 s)."""

    modules = {}  # command name -> module that registers it (set in seqgen.cli)

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.modules))

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.modules:
            import_module(self.modules[name])
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="seqgen", prog_name="seqgen")
@click.option("--threads", type=click.IntRange(1, 1024), help=THREADS_HELP)
def cli(threads):
    """Train recurrent networks on sequences (text, MIDI) and sample new ones."""
    if threads:  # applies to the command that follows, as its own --threads would
        os.environ["SEQGEN_THREADS"] = str(threads)


def _click_type(annotation):
    """The click type of a field annotation (Optional unwrapped)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)])
    if annotation is Path:
        return click.Path(dir_okay=True)
    return {int: int, float: float, str: str, bool: bool}.get(annotation, str)


def option_flags(options_cls, skip=(), short=None, choices=None):
    """Decorate a command with one flag per field of ``options_cls`` (a pydantic model): help
    from the field's description, the default shown from the model. Flags default to None, so
    the command sees which were given and the option object does all the validation."""
    short = short or {}
    choices = choices or {}

    def decorate(f):
        for name, field in reversed(list(options_cls.model_fields.items())):
            if name in skip:
                continue
            help_text = field.description or ""
            if field.annotation is bool:  # a switch: --force, not --force true
                f = click.option(flag(name), *short.get(name, ()), name, is_flag=True, default=None,
                                 help=help_text)(f)
                continue
            kind = click.Choice(choices[name]) if name in choices else _click_type(field.annotation)
            default = field.get_default(call_default_factory=True)
            shown = "" if default is None else f" [default: {default}]"
            f = click.option(flag(name), *short.get(name, ()), name, type=kind, default=None,
                             help=help_text + shown)(f)
        return f

    return decorate


def given(values):
    """The flags a user gave: drops the Nones that ``option_flags`` defaults to."""
    return {k: v for k, v in values.items() if v is not None}
