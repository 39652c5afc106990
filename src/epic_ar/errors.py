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
    """A parameter named in a message. `name`: the parameter (e.g. "force"); `spelling`: how
    the message names it for a Python caller (e.g. "force=True"), default `name`."""

    name: str
    spelling: str = ""

    def __str__(self) -> str:
        return self.spelling or self.name


MessagePart = str | Parameter
FlagOf = Callable[[str], str | None]  # parameter name -> a command's flag, None if none


@dataclass(frozen=True)
class Message:
    """Text made of plain strings and the parameters it names. `str()` spells the parameters
    as the library does; `render` names a command's flags instead."""

    parts: tuple[MessagePart, ...]

    def __str__(self) -> str:
        return "".join(str(part) for part in self.parts)

    @property
    def parameters(self) -> list[str]:
        """The names of the parameters the message names, in order."""
        return [part.name for part in self.parts if isinstance(part, Parameter)]

    def render(self, flag_of: FlagOf) -> str:
        """The text with each parameter named by `flag_of(name)`, or as the library spells
        it where `flag_of` gives None."""
        return "".join(_render_part(part, flag_of) for part in self.parts)


def _render_part(part: MessagePart, flag_of: FlagOf) -> str:
    if isinstance(part, Parameter):
        return flag_of(part.name) or str(part)
    return part


def message(*parts: MessagePart) -> Message:
    """A `Message` of `parts`: e.g. `message(f"{path}: exists; pass ", FORCE, " to ...")`."""
    return Message(tuple(parts))


class EpicArError(Exception):
    """A problem the user can fix (bad file, bad argument).

    The command line prints the message as one line and exits non-zero, without a
    traceback, so the message must name the file / key / segment and say what is wrong.

    The message is one string, or strings and `Parameter`s (`EpicArError(f"{path}: already
    exists; pass ", Parameter("force", "force=True"), " to overwrite it")`): `str(error)`
    names the parameters as the library spells them, `error.text.render(...)` as a command
    line does.
    """

    def __init__(self, *parts: MessagePart):
        self.text = Message(tuple(parts))
        super().__init__(str(self.text))
