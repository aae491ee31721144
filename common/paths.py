"""Where the project keeps what it downloads or builds outside the checkout."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$TALOS_HETZNER_CACHE`, else `$XDG_CACHE_HOME/talos-hetzner`, else `~/.cache/talos-hetzner`."""
    explicit = os.environ.get("TALOS_HETZNER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "talos-hetzner"
