"""What kind of file a path holds, told from its first bytes without loading it.

A loader that fails on a file of another kind (an annotations file given as results, a
results file given as a checkpoint, an ONNX model given as anything) would otherwise report
what its parser met ("invalid start byte", "KeyError: 8"). `refuse_other_kind` turns that
into "X: a results file, not an annotations file (...)". It is consulted only once a load has
failed, so a heuristic here never refuses a file that loads.

Nothing is unpickled: pickles are read opcode by opcode (`pickletools.genops`) up to their
first keys, which name their kind (`verb_output`: results; `epoch`: a Lightning checkpoint;
a `pandas` class: a DataFrame, in this project an annotations file).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path

from epic_ar.errors import EpicArError
from epic_ar.fileio.safe_pickle import RefusedGlobalError

ZIP_MAGIC = b"PK\x03\x04"
# torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
# The keys of a results file (either layout). Its first key tells it apart when it is a score
# key (narration_id may come first in other dicts too). A Lightning checkpoint's first key is
# one of CHECKPOINT_KEYS (ours and the published ones start with "epoch").
RESULTS_KEYS = ("verb_output", "noun_output", "narration_id")
CHECKPOINT_KEYS = ("epoch", "global_step", "pytorch-lightning_version", "state_dict")
_HEAD_BYTES = 4096  # the first keys of every kind recognised are well within this
# The tags of an ONNX ModelProto's fields that writers put after ir_version (field 1,
# tag 0x08): producer name and version, domain, model version, doc string, graph, opsets,
# metadata.
_ONNX_SECOND_FIELDS = frozenset(b"\x12\x1a\x22\x28\x32\x3a\x42\x72")
_MEMO_OPCODES = frozenset({"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"})


@dataclass(frozen=True)
class FileKind:
    """A kind of file, as messages name it.

    name: with its article ("a results file"). origin: where such files come from ("epic-ar
    test writes those"). torch_saved: whether `torch.save` writes it (a torch file whose
    content is not recognised may then be one). classes: the module of the classes a pickle
    of this kind starts with ("pandas": a DataFrame), if any.
    """

    name: str
    origin: str
    torch_saved: bool = False
    classes: str = ""


ANNOTATIONS = FileKind(
    "an annotations file", "the official EPIC_100_*.csv or .pkl", classes="pandas"
)
RESULTS = FileKind("a results file", "epic-ar test writes those", torch_saved=True)
CHECKPOINT = FileKind("a checkpoint", "epic-ar train and download write those", torch_saved=True)
ONNX_MODEL = FileKind("an ONNX model", "epic-ar export writes those")
SUBMISSION = FileKind("a challenge submission zip", "epic-ar submit writes those")
TORCH_FILE = FileKind("a torch file", "torch.save writes those")  # content not recognised


class WrongKindError(EpicArError):
    """`path` holds `found`, where `expected` was asked for; `hint` (may be empty) follows
    the message after "; "."""

    def __init__(self, path: Path, found: FileKind, expected: FileKind, hint: str = ""):
        self.path, self.found, self.expected = path, found, expected
        message = f"{path}: {found.name}, not {expected.name} ({expected.origin})"
        super().__init__(f"{message}; {hint}" if hint else message)


def refuse_other_kind(path: Path, expected: FileKind, error: EpicArError) -> None:
    """Raise a `WrongKindError` in place of `error` (a loader's, for `path`) when the first
    bytes of `path` show a kind of file other than `expected`; return when they show
    `expected`, a kind that may be it (a torch file of unknown content, for a kind torch
    writes) or nothing known. A refused class (`RefusedGlobalError`) stays the error unless
    it is the class that makes the other kind (a pandas DataFrame: annotations).

    Meant for the failure path of a loader: `except EpicArError as exc:
    refuse_other_kind(path, KIND, exc); raise`.
    """
    found = file_kind(path)
    if found is None or found == expected or (found == TORCH_FILE and expected.torch_saved):
        return
    if isinstance(error, RefusedGlobalError) and not (
        found.classes and error.global_name.startswith(found.classes)
    ):
        return  # what a file names outside the allow-list is news about the file itself
    raise WrongKindError(path, found, expected)


def file_kind(path: Path) -> FileKind | None:
    """The kind of file `path` holds by its first bytes (and, for a zip archive, its member
    names and first bytes), or None when not recognised or not readable."""
    try:
        with path.open("rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError:
        return None
    if head.startswith(ZIP_MAGIC):
        return _zip_kind(path)
    if head.startswith(LEGACY_TORCH_MAGIC):
        # magic number, protocol version and system info come before the object
        return _pickle_kind(head, skip=3) or TORCH_FILE
    if head[:1] == b"\x80":  # a pickle's protocol header
        return _pickle_kind(head)
    if len(head) >= 3 and head[0] == 0x08 and 0 < head[1] < 0x80:
        return ONNX_MODEL if head[2] in _ONNX_SECOND_FIELDS else None
    return ANNOTATIONS if _is_annotations_csv(head) else None


def _zip_kind(path: Path) -> FileKind | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [name for name in names if name.endswith("/data.pkl")]
            if len(pickles) == 1:
                with archive.open(pickles[0]) as member:
                    return _pickle_kind(member.read(_HEAD_BYTES)) or TORCH_FILE
    except Exception:  # a damaged archive fails in many ways: then its kind is unknown
        return None
    return SUBMISSION if names == ["test.json"] else None


def _pickle_kind(head: bytes, *, skip: int = 0) -> FileKind | None:
    """The kind of the pickled object at the start of `head` (after `skip` whole pickles):
    by its first dict key, or, when a class comes before any key, by the class's module."""
    key, module = _first_key_and_module(head, skip)
    if key is not None:
        if key in RESULTS_KEYS[:2]:
            return RESULTS
        return CHECKPOINT if key in CHECKPOINT_KEYS else None
    return ANNOTATIONS if module is not None and module.startswith(ANNOTATIONS.classes) else None


def _first_key_and_module(head: bytes, skip: int) -> tuple[str | None, str | None]:
    """(the first string of the pickle that is not a class's name, the module of the first
    class it names), each None when `head` holds none before the other is settled."""
    stream = io.BytesIO(head)
    strings: list[str] = []
    try:
        for _ in range(skip):
            for _ in pickletools.genops(stream):  # stops after the pickle's STOP
                pass
        for opcode, argument, _ in pickletools.genops(stream):
            if opcode.name == "GLOBAL":  # protocols 0-3: "module name"
                return (strings[0] if strings else None), str(argument).split(" ")[0]
            if opcode.name == "STACK_GLOBAL":  # protocol 4+: module and name are strings
                module = strings[-2] if len(strings) >= 2 else None
                return (strings[0] if len(strings) > 2 else None), module
            if isinstance(argument, str) and "UNICODE" in opcode.name:
                strings.append(argument)
            elif strings and opcode.name not in _MEMO_OPCODES:
                break  # a plain value follows the first string: it is a key
    except (ValueError, EOFError, IndexError):  # `head` ends mid-pickle, or is no pickle
        pass
    return (strings[0] if strings else None), None


def _is_annotations_csv(head: bytes) -> bool:
    """Whether `head` starts with a CSV header line naming a `narration_id` column."""
    first_line = head.split(b"\n", 1)[0]
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return "narration_id" in [field.strip().strip('"') for field in text.split(",")]
