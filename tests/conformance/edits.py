"""Small edits of parsed YAML by dotted path (`machine.install.disk`, `1.hostname` for the second document),
to derive bad inputs from good ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Edit = Callable[[Any], None]


def set_at(path: str, value: Any) -> Edit:
    """Set the value at `path`, creating missing mappings on the way."""

    def edit(data: Any) -> None:
        parent, last = _parent(data, path, create=True)
        parent[last] = value

    return edit


def drop_at(path: str) -> Edit:
    """Remove the key (or list item) at `path`."""

    def edit(data: Any) -> None:
        parent, last = _parent(data, path, create=False)
        del parent[last]

    return edit


def edits(*steps: Edit) -> Edit:
    """Several edits in order."""

    def edit(data: Any) -> None:
        for step in steps:
            step(data)

    return edit


def _parent(data: Any, path: str, *, create: bool) -> tuple[Any, Any]:
    *parents, last = (_key(part) for part in path.split("."))
    for part in parents:
        if create and isinstance(data, dict) and part not in data:
            data[part] = {}
        data = data[part]
    return data, last


def _key(part: str) -> str | int:
    return int(part) if part.isdigit() else part
