"""How the providers compare inputs as the engine delivers them (ints as floats, unknowns during preview)."""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown


def changed(old: Any, new: Any) -> bool:
    """Whether an input changed; a value not known yet (preview) counts as changed, conservatively."""
    if has_unknown(new):
        return True
    return _canonical(old) != _canonical(new)


def has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(has_unknown(item) for item in value)
    return is_unknown(value)


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def _canonical(value: Any) -> Any:
    """Ints arrive as floats; an empty string (e.g. an empty trigger) equals none; None entries don't count."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None if value == "" else value
