"""The one exception type for user mistakes and bad input files, and messages that name the
library's parameters.

Library code names its own parameters ("pass force=True to overwrite it"), never a command's
flags. A message that names a parameter holds it as a `Parameter` part, so that the command
line can name its flag in the same place ("pass --force to overwrite it"): see
`epic_ar.cli.main.error_message`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    """A parameter named in a message.

    name: the parameter (e.g. "force").
    spelling: how the message names it for a Python caller (e.g. "force=True"); default
        `name`.
    metavar: the value a command line writes after the flag (e.g. "DIR" for
        "--datadir DIR"); none by default.
    """

    name: str
    spelling: str = ""
    metavar: str = ""

    def __str__(self) -> str:
        return self.spelling or self.name

    def on_command_line(self, flag: str) -> str:
        """How a command line whose flag for the parameter is `flag` names it."""
        return f"{flag} {self.metavar}" if self.metavar else flag


@dataclass(frozen=True)
class Suggestion:
    """A clause of a message that suggests passing parameters (e.g. "; if you trust the file,
    pass trust=True"). A command line without a flag for each of them leaves the clause out:
    its user could not follow it."""

    text: Message


MessagePart = str | Parameter | Suggestion
FlagOf = Callable[[str], str | None]  # parameter name -> a command's flag, None if none


@dataclass(frozen=True)
class Message:
    """Text made of plain strings and the parameters it names. `str()` spells the parameters
    as the library does; `render` names a command's flags instead."""

    parts: tuple[MessagePart, ...]

    def __str__(self) -> str:
        return "".join(_library_part(part) for part in self.parts)

    @property
    def parameters(self) -> list[str]:
        """The names of the parameters the message names, in order (within its
        suggestions too)."""
        names: list[str] = []
        for part in self.parts:
            if isinstance(part, Parameter):
                names.append(part.name)
            elif isinstance(part, Suggestion):
                names.extend(part.text.parameters)
        return names

    def without_suggestions(self) -> Message:
        """The message without its suggestions: for a caller that cannot follow them (e.g.
        resuming a run, which never loads a file it would have to trust)."""
        return Message(tuple(part for part in self.parts if not isinstance(part, Suggestion)))

    def render(self, flag_of: FlagOf) -> str:
        """The text with each parameter named by its flag, `flag_of(name)`, or as the library
        spells it where `flag_of` gives None; a suggestion only where every parameter it
        names has a flag."""
        return "".join(_render_part(part, flag_of) for part in self.parts)


def _library_part(part: MessagePart) -> str:
    return str(part.text) if isinstance(part, Suggestion) else str(part)


def _render_part(part: MessagePart, flag_of: FlagOf) -> str:
    if isinstance(part, Parameter):
        flag = flag_of(part.name)
        return str(part) if flag is None else part.on_command_line(flag)
    if isinstance(part, Suggestion):
        if all(flag_of(name) is not None for name in part.text.parameters):
            return part.text.render(flag_of)
        return ""
    return part


class MessageException(Exception):  # noqa: N818 (warnings derive from it too)
    """An exception (or warning) whose message is a `Message`, `text`, made of `parts`:
    `str()` names the parameters as the library spells them, `text.render(...)` as a
    command line does."""

    def __init__(self, *parts: MessagePart):
        self.text = Message(parts)
        super().__init__(str(self.text))


class EpicArError(MessageException):
    """A problem the user can fix (bad file, bad argument).

    The command line prints the message as one line and exits non-zero, without a
    traceback, so the message must name the file / key / segment and say what is wrong.

    The message is one string, or strings and `Parameter`s (`EpicArError(f"{path}: already
    exists; pass ", Parameter("force", "force=True"), " to overwrite it")`): `str(error)`
    names the parameters as the library spells them, `error.text.render(...)` as a command
    line does.
    """
