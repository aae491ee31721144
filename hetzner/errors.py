"""The root of every error the hetzner package raises."""

from __future__ import annotations


class HetznerError(Exception):
    """Base for errors raised by the hetzner package."""
