"""Errors of the Robot webservice: its documented error body, one class per way a caller reacts."""

from __future__ import annotations

from typing import Any

from hetzner.errors import HetznerError


class RobotError(HetznerError):
    """The Robot webservice refused a request."""

    def __init__(self, status: int, code: str, message: str, *, request: str = "") -> None:
        text = f"{message} ({status} {code})"
        if request:
            text += f" on {request}"
        super().__init__(text)
        self.status, self.code, self.message, self.request = status, code, message, request


class RobotAuthError(RobotError):
    """Robot rejected the webservice credentials (never retried: 3 failed logins block the IP for 10 minutes)."""


class RobotRateLimitError(RobotError):
    """Robot's request limit for this call is used up (`max_request` per `interval` seconds)."""

    def __init__(self, status: int, code: str, message: str, *, request: str = "", error: dict[str, Any]) -> None:
        super().__init__(status, code, message, request=request)
        self.max_request = _int_or_none(error.get("max_request"))
        self.interval = _int_or_none(error.get("interval"))


class RobotInputError(RobotError):
    """Robot found parameters missing or invalid."""

    def __init__(self, status: int, code: str, message: str, *, request: str = "", error: dict[str, Any]) -> None:
        self.missing = tuple(error.get("missing") or ())
        self.invalid = tuple(error.get("invalid") or ())
        fields = (("missing", self.missing), ("invalid", self.invalid))
        detail = "; ".join(f"{label} {', '.join(names)}" for label, names in fields if names)
        super().__init__(status, code, f"{message}: {detail}" if detail else message, request=request)


class RobotNotFoundError(RobotError):
    """The server, key, IP or boot configuration does not exist (or the feature is not available for it)."""


class RobotConflictError(RobotError):
    """The request conflicts with the current state (e.g. a manual reset is pending, the key exists)."""


class RobotServerError(RobotError):
    """Robot failed (5xx: a failed action, maintenance, or an answer that is not Robot's JSON)."""


class RobotConnectionError(HetznerError):
    """No answer from the Robot webservice (connection failed or timed out)."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(f"no answer from Robot on {request}: {reason}")
        self.request, self.reason = request, reason


def robot_error(status: int, body: Any, *, request: str, reason: str = "") -> RobotError:
    """The typed error for a Robot error response (`{"error": {"status", "code", "message", ...}}`)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or f"HTTP_{status}")
    message = str(error.get("message") or reason or code)
    status = _int_or_none(error.get("status")) or status
    if status == 401:
        return RobotAuthError(status, code, message, request=request)
    if code == "RATE_LIMIT_EXCEEDED":
        return RobotRateLimitError(status, code, message, request=request, error=error)
    if code == "INVALID_INPUT":
        return RobotInputError(status, code, message, request=request, error=error)
    kinds: dict[int, type[RobotError]] = {404: RobotNotFoundError, 409: RobotConflictError}
    kind = kinds.get(status, RobotServerError if status >= 500 or not error else RobotError)
    return kind(status, code, message, request=request)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
