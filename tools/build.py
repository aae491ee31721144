"""Build the project's Go tools: `python -m tools.build [names]` (all registered tools when none is named).

A `pulumi` already on PATH at the pinned version is used as is. Without Go nothing is built: the tests that need
the tools skip, and the message says what to install instead.
"""

from __future__ import annotations

import sys

from tools import gobuild
from tools.env import ambient_pulumi
from tools.pulumi_tools import HCLOUD, HCLOUD_VERSION, PULUMI, PULUMI_VERSION
from tools.talos_oracle import TALOS_ORACLE

TOOLS: dict[str, gobuild.GoTool] = {
    # One line per tool.
    "pulumi": PULUMI,
    "hcloud": HCLOUD,
    "talos-oracle": TALOS_ORACLE,
}


def main(argv: list[str]) -> int:
    names = list(argv) or list(TOOLS)
    ambient = ambient_pulumi() if "pulumi" in names else None
    if ambient is not None:
        print(f"pulumi: using {ambient} (on PATH at the pinned version v{PULUMI_VERSION})", flush=True)
        names.remove("pulumi")
    if not names:
        return 0
    if not gobuild.go_available():
        print(
            f"tools: Go is not installed, so {', '.join(names)} cannot be built; the tests that need them skip. "
            f"Install Go, or the official Pulumi CLI v{PULUMI_VERSION} and its hcloud plugin "
            f"(`pulumi plugin install resource hcloud {HCLOUD_VERSION}`; the tests link it from ~/.pulumi).",
            flush=True,
        )
        return 0
    return gobuild.main(TOOLS, names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
