"""Errors raised by the talos package: one root, each carrying what a caller needs to act."""

from __future__ import annotations


class TalosError(Exception):
    """Base for errors raised by the talos package."""


class ConfigError(TalosError):
    """A machine config value is wrong; names the document, the path and the fix."""

    def __init__(self, document: str, path: str, reason: str, fix: str = "") -> None:
        message = f"{document}: {path}: {reason}"
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)
        self.document, self.path, self.reason, self.fix = document, path, reason, fix


class PatchError(TalosError):
    """A patch cannot be loaded or applied."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        super().__init__(f"{source}: {path}: {reason}")
        self.source, self.path, self.reason = source, path, reason


class SecretsError(TalosError):
    """A secrets bundle is malformed or incomplete."""


class UnsupportedVersionError(TalosError):
    """A Talos version outside the supported version contracts."""
