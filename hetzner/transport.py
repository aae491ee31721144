"""What a failed HTTP request proves: the one fact the retry rules of both API clients rest on."""

from __future__ import annotations

import requests
import urllib3.exceptions


def never_sent(error: requests.RequestException) -> bool:
    """True when the connection was never established, so the request cannot have acted on the server.

    A connect timeout or a refused/unresolvable connection proves it; a read timeout or a dropped connection
    does not (the server may have acted before the answer was lost).
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None
    return isinstance(getattr(cause, "reason", cause), urllib3.exceptions.NewConnectionError)


def failure_reason(error: requests.RequestException) -> str:
    """A short name for a transport failure (`ConnectTimeoutError`, `ReadTimeoutError`, ...), never a URL."""
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return type(reason).__name__ if isinstance(reason, BaseException) else type(error).__name__
