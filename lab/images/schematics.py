"""Image Factory schematics: validation, canonical YAML and the ID derived from it.

The factory's ID is the SHA-256 of the canonical YAML (Go yaml.v3 style: 4-space indent, fields in the
schema's order, empty values left out); the empty schematic `customization: {}` gives the well-known
vanilla ID 376567988ad3… (image-factory docs/api.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

_SCHEMA: dict[str, Any] = {
    "customization": {
        "extraKernelArgs": list,
        "meta": list,
        "systemExtensions": {"officialExtensions": list},
        "secureboot": {"includeWellKnownCertificates": bool, "enrollKeys": str},
        "bootloader": str,
        "embeddedMachineConfiguration": str,
        "diskImage": {"sectorSize": int},
    },
    "overlay": {"image": str, "name": str, "options": dict},
}


class SchematicError(ValueError):
    """A schematic body the factory rejects (400)."""


def canonical_schematic(body: bytes) -> str:
    """The canonical YAML of a schematic body (YAML or JSON); unknown fields are rejected."""
    try:
        data = yaml.safe_load(body) if body.strip() else {}
    except yaml.YAMLError as err:
        raise SchematicError(f"invalid schematic YAML: {err}") from None
    if not isinstance(data, dict):
        raise SchematicError("schematic must be a mapping")
    cleaned = _check(data, _SCHEMA, "")
    cleaned.setdefault("customization", {})
    return _emit(cleaned, 0)


def schematic_id(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check(value: dict[str, Any], schema: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in schema:
            raise SchematicError(f"unknown field {path!r} in schematic")
        kind = schema[key]
        if isinstance(kind, dict):
            if not isinstance(item, dict):
                raise SchematicError(f"field {path!r} must be a mapping")
            nested = _check(item, kind, path)
            if nested or key == "customization":
                out[key] = nested
        elif item is not None:
            if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
                raise SchematicError(f"field {path!r} must be of type {kind.__name__}")
            if item not in ("", [], {}, False, 0):
                out[key] = item
    return {key: out[key] for key in schema if key in out}


def _emit(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:\n{_emit(item, indent + 4)}")
            else:
                lines.append(f"{pad}{key}: {_emit(item, indent + 4)}")
        return "".join(lines)
    if isinstance(value, list):
        return "".join(f"{pad}- {_emit(item, indent + 2).lstrip()}" for item in value)
    if isinstance(value, bool):
        return f"{str(value).lower()}\n"
    if isinstance(value, int):
        return f"{value}\n"
    text = str(value)
    if "\n" in text:
        body = "".join(f"{pad}{line}\n" for line in text.rstrip("\n").split("\n"))
        return f"|\n{body}"
    plain = yaml.safe_load(text) == text and not text.startswith(("-", "{", "[", "*", "&", "!"))
    return f"{text}\n" if plain else f"{json.dumps(text)}\n"
