"""The Pulumi engine's Go tools: the CLI with its Python language host, and the hcloud resource plugin.

Versions come from requirements.txt, so the CLI always matches the pinned `pulumi` package and the plugin the
pinned `pulumi_hcloud` package; the wrapper modules' go.mod files pin the matching Go modules (a test checks
that the two agree).
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.gobuild import TOOLS_DIR, GoTool

REQUIREMENTS = TOOLS_DIR.parent / "requirements.txt"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"


def pinned_version(package: str, requirements: Path = REQUIREMENTS) -> str:
    """The exact version `package==X` pinned in requirements.txt."""
    pattern = re.compile(rf"^{re.escape(package)}==(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
    match = pattern.search(requirements.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{requirements}: no `{package}==<version>` line (fix: pin {package} exactly)")
    return match.group(1)


PULUMI_VERSION = pinned_version("pulumi")
HCLOUD_VERSION = pinned_version("pulumi-hcloud")

PULUMI = GoTool(
    name="pulumi",
    module_dir=TOOLS_DIR / "pulumi",
    binaries=(
        ("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "pulumi"),
        ("./cmd/pulumi-language-python", "pulumi-language-python"),
    ),
    ldflags=(f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}",),
    tags=("osusergo", "grpcnotrace"),
    extra_files=(
        (SDK_MODULE, "python/cmd/pulumi-language-python-exec", "pulumi-language-python-exec"),
        (SDK_MODULE, "python/dist/pulumi-resource-pulumi-python", "pulumi-resource-pulumi-python"),
    ),
)

HCLOUD = GoTool(
    name="hcloud",
    module_dir=TOOLS_DIR / "hcloud",
    binaries=(("./cmd/pulumi-resource-hcloud", "pulumi-resource-hcloud"),),
    ldflags=(f"-X talos-hetzner.local/tools/hcloud/providerinfo.Version={HCLOUD_VERSION}",),
    generate=(
        ("pulumi-resource-hcloud", "tfgen", "schema", "--out", "hcloud-schema", "--skip-docs", "--skip-examples"),
    ),
)
