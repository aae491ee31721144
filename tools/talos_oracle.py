"""The Talos oracle: Talos' own Go machinery behind a small JSON command line, driven by tests/conformance.

The wrapper module (tools/talos-oracle) pins github.com/siderolabs/talos/pkg/machinery to the project's Talos
release; see its main.go for the commands and their JSON.
"""

from __future__ import annotations

from tools.gobuild import TOOLS_DIR, GoTool

TALOS_ORACLE = GoTool(
    name="talos-oracle",
    module_dir=TOOLS_DIR / "talos-oracle",
    binaries=((".", "talos-oracle"),),
)
