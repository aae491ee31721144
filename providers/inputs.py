"""How the providers compare inputs as the engine delivers them (ints as floats, unknowns during preview)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi.output import Unknown

from talos.api.transport import split_endpoint


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


def timeout_problems(value: Any, known: Sequence[str]) -> list[str]:
    """Why a `timeouts` input is not `{<known>?: seconds}`, one reason each with the fix; [] when it is (or unknown)."""
    if value is None or has_unknown(value):
        return []
    if not isinstance(value, dict):
        return [f"must be {{{', '.join(known)}}} in seconds, not {value!r}"]
    unknown = sorted(set(value) - set(known))
    problems = [f"unknown timeout(s) {', '.join(unknown)} (fix: use {', '.join(known)})"] if unknown else []
    for key in known:
        seconds = value.get(key)
        if seconds is not None and not has_unknown(seconds) and not positive_number(seconds):
            problems.append(f"{key}: {seconds!r} must be a positive number of seconds")
    return problems


def timeouts_with_defaults(props: dict[str, Any], defaults: dict[str, float]) -> dict[str, float]:
    """The `timeouts` input over its defaults, in seconds (unset entries keep the default)."""
    given = {key: float(value) for key, value in (props.get("timeouts") or {}).items() if value is not None}
    return {**defaults, **given}


def port_problem(port: Any) -> str | None:
    """Why a `talosPort` input is no port number (the engine sends numbers as floats); None when it is or is unset."""
    if port is None or (_number(port) and float(port).is_integer() and 0 < port < 65536):
        return None
    return f"{port!r} is not a port number (1-65535)"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def endpoint_problem(value: Any) -> str | None:
    """Why an address input is not `host` or `host:port` (with the fix); None when it is."""
    if not isinstance(value, str) or not value.strip():
        return "must be an address (`host` or `host:port`)"
    try:
        split_endpoint(value)
    except ValueError as err:
        return str(err)
    return None


def address_list_problems(value: Any, purpose: str) -> list[str]:
    """Why an input is not a non-empty list of addresses; `purpose` says what the list is for."""
    if has_unknown(value):
        return []
    if not isinstance(value, list) or not value:
        return [f"must list the cluster's control-plane addresses ({purpose})"]
    return [f"entry {n}: {reason}" for n, entry in enumerate(value, 1) if (reason := endpoint_problem(entry))]


def _canonical(value: Any) -> Any:
    """Ints arrive as floats; an empty string (e.g. an empty trigger) equals none; None entries don't count."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None if value == "" else value
