"""Machine config patches, loaded and applied as talosctl v1.13.9 does (configpatcher).

A patch is either a strategic merge patch (YAML documents merged into the config, see talos.merge for the
rules) or an RFC 6902 JSON patch (a list of operations). Talos' LoadPatch decides which by trying, in order:
the text as multi-document YAML config with `$patch: delete` allowed (strategic); the text as a JSON array
(JSON patch); the first YAML document as a list of `{op, path, value}` mappings (JSON patch). So a mapping is
always strategic and a list is always a JSON patch. Quirks kept from Talos:

- Text with no space or newline that does not start with `[` or `{` is a file name, as is `@name`.
- Empty or comment-only text is an empty JSON patch: a no-op on a single-document config, an error on a
  multi-document one (a stock v1.13 config has a HostnameConfig document, so it is multi-document).
- In a YAML list of operations only the first YAML document is read; later ones are ignored.

JSON patches follow evanphx/json-patch v4 (what Talos uses) rather than the letter of RFC 6902, and only
work when the config is a single document ("JSON6902 patches are not supported for multi-document machine
configuration"). Its leniencies, all silent in Talos and kept here: `replace` of a missing key in a mapping
adds it; `add`/`replace` without `value` write null; `test` of a missing key passes when the expected value
is null or absent; `copy` from a missing key copies null; negative list indices count from the end; a path
not starting with `/` has its first segment ignored; numbers compare as written (7445 is not 7445.0).
Talos only finds unknown operations and missing fields when applying; we refuse them when loading. A JSON
patch that leaves something other than a mapping is refused here; Talos fails later, loading the result.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from talos.documents import Document, GoYamlLoader, document_id, yaml_problem
from talos.errors import PatchError
from talos.merge import check_document_set, merge_documents, split_deletes, type_name

PatchValue = str | Path | Mapping[str, Any] | Sequence[Any]

_OPS = ("add", "remove", "replace", "move", "copy", "test")
_LEGACY_KEYS = ("machine", "cluster", "debug", "persist")
_INDEX = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Patch:
    """One loaded patch: strategic `documents` (raw, `$patch: delete` kept) or JSON 6902 `operations`."""

    source: str
    """Where it came from: a file name or `inline #N`; errors name it."""
    kind: Literal["strategic", "json6902"]
    documents: tuple[dict[str, Any], ...] = ()
    operations: tuple[dict[str, Any], ...] = ()


def load_patch(value: PatchValue, *, source: str | None = None, base_dir: Path | None = None) -> Patch:
    """Load one patch: `@file`, a bare file name, a Path, inline YAML/JSON text, or an already parsed value.

    A mapping is a strategic patch of one document, a list a JSON patch. File names are relative to
    base_dir. Raises PatchError naming the source, the place in the patch and the fix.
    """
    if isinstance(value, Mapping):
        return _strategic([copy.deepcopy(dict(value))], source or "inline")
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _json_patch(copy.deepcopy(list(value)), source or "inline")
    name = _file_name(value)
    if name is None:
        return _parse(str(value), source or "inline")
    if not name:
        raise PatchError(source or "inline", "$", "an empty string is not a patch (talosctl reads it as a file name)")
    path = Path(name)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise PatchError(source or name, "$", f"cannot read the patch file {path}: {reason}") from None
    return _parse(text, source or name)


def load_patches(values: Sequence[PatchValue], *, base_dir: Path | None = None) -> list[Patch]:
    """Load patches in order; inline ones are named `inline #N` by their position (from 1)."""
    return [
        load_patch(value, source=None if _file_name(value) else f"inline #{number}", base_dir=base_dir)
        for number, value in enumerate(values, 1)
    ]


def apply_patches(documents: list[Document], patches: Sequence[Patch]) -> list[Document]:
    """Apply patches in the given order (cluster, then role, then node); the inputs are left unchanged."""
    result = copy.deepcopy(documents)  # the one copy: each step below changes `result` in place
    for patch in patches:
        if patch.kind == "strategic":
            result = merge_documents(result, patch.documents, patch.source)
        else:
            result = [_apply_json6902(result, patch)]
    return result


def _file_name(value: PatchValue) -> str | None:
    """The file a patch argument names, by talosctl's rule, or None for inline text and parsed values."""
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str):
        return None
    if value.startswith("@"):
        return value[1:]
    if not value:
        return ""
    if " " in value or "\n" in value or value.startswith(("[", "{")):
        return None
    return value


def _parse(text: str, source: str) -> Patch:
    """LoadPatch: strategic YAML first, then a JSON array, then a YAML list of operations."""
    try:
        return _strategic(_yaml_documents(text, source), source)
    except PatchError as strategic_error:
        refused = strategic_error
    try:
        operations = json.loads(text)
    except ValueError as err:
        json_error = f"not a JSON patch: {err}"
    else:
        if isinstance(operations, list):
            return _json_patch(operations, source)
        json_error = f"a JSON patch is an array of operations, not a {type_name(operations)}"
    operations = _yaml_operations(text)
    if operations is not None:
        return _json_patch(operations, source)
    if text.strip().startswith("["):
        raise PatchError(source, "$", json_error)
    raise refused


def _strategic(raw: list[Any], source: str) -> Patch:
    """Check documents as Talos' decoder does (with `$patch: delete` allowed) and keep them raw."""
    documents: list[dict[str, Any]] = []
    contents: list[Document] = []
    found = False
    for number, doc in enumerate(raw, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise PatchError(
                source,
                f"document {number}",
                f"is a {type_name(doc)}; a patch document is a mapping "
                "(or the whole patch is a list of JSON patch operations)",
            )
        deletes, content = split_deletes(copy.deepcopy(doc), source)
        if content is not None:
            _check_document(content, number, source)
            contents.append(content)
        found = found or bool(deletes) or content is not None
        documents.append(doc)
    if not found:
        raise PatchError(source, "$", "the patch has no documents (config not found); write at least one mapping")
    check_document_set(contents, source)
    return Patch(source, "strategic", documents=tuple(documents))


def _check_document(doc: Document, number: int, source: str) -> None:
    """What Talos' decoder requires of a document: a kind (or v1alpha1 keys), an apiVersion, no stray `$patch`."""
    legacy = "kind" not in doc and "apiVersion" not in doc and any(key in doc for key in _LEGACY_KEYS)
    if not doc.get("kind") and not legacy:
        raise PatchError(
            source,
            f"document {number}",
            "missing kind: a typed document needs apiVersion and kind; a v1alpha1 patch starts with `machine:` or "
            "`cluster:`",
        )
    if doc.get("kind") and not doc.get("apiVersion"):
        raise PatchError(
            source, f"document {number}", f"missing apiVersion for kind {doc['kind']}; add `apiVersion: v1alpha1`"
        )
    stray = _find_patch_key(doc, "" if legacy else document_id(doc))
    if stray is not None:
        where, value = stray
        raise PatchError(
            source, where or "v1alpha1", f"`$patch: {value}` is not supported; Talos knows only `$patch: delete`"
        )


def _find_patch_key(value: Any, shown: str) -> tuple[str, Any] | None:
    """The first `$patch` key left in a document (after the deletes were taken out)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$patch":
                return shown, item
            found = _find_patch_key(item, f"{shown}.{key}" if shown else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_patch_key(item, f"{shown}[{index}]")
            if found is not None:
                return found
    return None


def _json_patch(operations: list[Any], source: str) -> Patch:
    for number, op in enumerate(operations, 1):
        where = f"operation {number}"
        if not isinstance(op, dict):
            raise PatchError(
                source, where, f"is a {type_name(op)}; an operation is a mapping with op, path (and value or from)"
            )
        if op.get("op") not in _OPS:
            got = f"unknown op {op['op']!r}" if "op" in op else "missing op"
            raise PatchError(source, where, f"{got}; use one of {', '.join(_OPS)}")
        for field in ("path", "from") if op["op"] in ("move", "copy") else ("path",):
            if not isinstance(op.get(field), str):
                got = "missing" if field not in op else f"a {type_name(op[field])}, not a string"
                raise PatchError(
                    source, where, f"{op['op']}: {field} is {got}; give a JSON pointer such as /machine/certSANs"
                )
    return Patch(source, "json6902", operations=tuple(operations))


def _apply_json6902(documents: list[Document], patch: Patch) -> Document:
    if len(documents) != 1:
        hint = (
            " (an empty patch is read as an empty JSON patch, as talosctl does; drop it)"
            if not patch.operations
            else ""
        )
        raise PatchError(
            patch.source,
            "$",
            "JSON6902 patches are not supported for multi-document machine configuration"
            f"{hint}; the config has {len(documents)} documents ({', '.join(document_id(d) for d in documents)}): "
            "use a strategic merge patch, or delete the other documents first with `$patch: delete`",
        )
    doc: Any = documents[0]
    for number, op in enumerate(patch.operations, 1):
        doc = _JsonOperation(op, patch.source, number).apply(doc)
    if not isinstance(doc, dict):
        raise PatchError(
            patch.source, "$", f"the patched config is a {type_name(doc)}, not a mapping; replace it with a mapping"
        )
    return doc


class _JsonOperation:
    """One operation, with evanphx/json-patch v4 semantics (see the module docstring)."""

    def __init__(self, op: dict[str, Any], source: str, number: int) -> None:
        self.op, self.source, self.number = op, source, number

    def apply(self, doc: Any) -> Any:
        name, path = self.op["op"], self.op["path"]
        if name == "replace" and path == "":
            if not isinstance(self.op.get("value"), dict | list):
                raise self.error(path, "replacing the whole document needs a mapping or a list")
            return copy.deepcopy(self.op["value"])
        if name == "test" and path == "":
            return doc if self.equal(doc) else self.fail(path)
        if name in ("move", "copy"):
            holder, key = self.find(doc, self.op["from"])
            value = self.get(holder, key, self.op["from"])
            if name == "move":
                self.remove(holder, key, self.op["from"])
            self.add(*self.find(doc, path), copy.deepcopy(value), path)
        elif name == "add":
            self.add(*self.find(doc, path), copy.deepcopy(self.op.get("value")), path)
        elif name == "remove":
            self.remove(*self.find(doc, path), path)
        elif name == "replace":
            holder, key = self.find(doc, path)
            if isinstance(holder, list):
                self.get(holder, key, path)
                holder[self.index(holder, key, path, size=len(holder))] = copy.deepcopy(self.op.get("value"))
            else:
                holder[key] = copy.deepcopy(self.op.get("value"))
        else:
            holder, key = self.find(doc, path)
            current = self.get(holder, key, path)
            if not ((current is None and self.op.get("value") is None) or ("value" in self.op and self.equal(current))):
                self.fail(path)
        return doc

    def find(self, doc: Any, pointer: str) -> tuple[dict[str, Any] | list[Any], str]:
        """findObject: the mapping or list holding the pointer's last token, and that token."""
        tokens = [_unescape(t) for t in pointer.split("/")]
        if len(tokens) < 2:
            raise self.error(
                pointer, f"patch targets nothing: {pointer!r} is not a JSON pointer; write a path starting with /"
            )
        node = doc
        for token in tokens[1:-1]:
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and _INDEX.fullmatch(token) and -len(node) <= int(token) < len(node):
                node = node[int(token)]
            else:
                node = None
            if not isinstance(node, dict | list):
                raise self.error(
                    pointer, "patch targets nothing: a parent of this path is not in the config; add it first"
                )
        return node, tokens[-1]

    def get(self, holder: dict[str, Any] | list[Any], key: str, pointer: str) -> Any:
        if isinstance(holder, dict):
            return holder.get(key)
        return holder[self.index(holder, key, pointer, size=len(holder))]

    def add(self, holder: dict[str, Any] | list[Any], key: str, value: Any, pointer: str) -> None:
        if isinstance(holder, dict):
            holder[key] = value
        elif key == "-":
            holder.append(value)
        else:
            holder.insert(self.index(holder, key, pointer, size=len(holder) + 1), value)

    def remove(self, holder: dict[str, Any] | list[Any], key: str, pointer: str) -> None:
        if isinstance(holder, list):
            del holder[self.index(holder, key, pointer, size=len(holder))]
        elif key in holder:
            del holder[key]
        else:
            raise self.error(
                pointer, f"patch targets nothing: there is no {key!r} to remove; drop the operation or fix the path"
            )

    def index(self, holder: list[Any], key: str, pointer: str, *, size: int) -> int:
        """A list position; negative counts from the end of a list of `size` places."""
        if not _INDEX.fullmatch(key):
            raise self.error(pointer, f"{key!r} is not a list index; use a number (or - to append with add)")
        index = int(key)
        if not -size <= index < size:
            raise self.error(
                pointer,
                f"patch targets nothing: index {index} is outside the list of {len(holder)} items; "
                "use an index below the length, or - to append with add",
            )
        return index % size

    def equal(self, current: Any) -> bool:
        return _json_equal(current, self.op.get("value"))

    def fail(self, pointer: str) -> Any:
        raise self.error(
            pointer,
            "test failed: the config's value differs from the one the patch expects; make `value` what the config "
            "holds (of the same type: 7445 is not 7445.0) or drop the test operation",
        )

    def error(self, pointer: str, reason: str) -> PatchError:
        return PatchError(
            self.source, _pointer_path(pointer), f"operation {self.number} ({self.op['op']} {pointer}): {reason}"
        )


def _json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality; values of different JSON types (1, 1.0, true, "1") are different."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer_path(pointer: str) -> str:
    """`/machine/network/interfaces/0/addresses` as `machine.network.interfaces[0].addresses`."""
    shown = ""
    for token in (_unescape(t) for t in pointer.split("/")[1:]):
        shown += f"[{token}]" if _INDEX.fullmatch(token) or token == "-" else f".{token}" if shown else token
    return shown or "$"


def _yaml_documents(text: str, source: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=GoYamlLoader))
    except yaml.YAMLError as err:
        raise PatchError(source, _yaml_where(err), yaml_problem(err, position=False)) from None


def _yaml_operations(text: str) -> list[Any] | None:
    """The first YAML document as a list of mappings (go-yaml's Unmarshal into []map), else None."""
    try:
        first = next(iter(yaml.load_all(text, Loader=GoYamlLoader)), None)
    except yaml.YAMLError:
        return None
    if first is None:
        return []
    if isinstance(first, list) and all(isinstance(op, dict | None) for op in first):
        return first
    return None


def _yaml_where(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "$"
