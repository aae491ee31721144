"""hcloud-go, the client inside the pulumi-hcloud provider, against the lab's Cloud API (hetzner.md §9)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lab.services import Lab
from tools.gobuild import BuildError, GoTool, build, go_available

from .helpers import new_key

HCLOUD_GO = GoTool(
    name="lab-hcloud-go",
    module_dir=Path(__file__).parent / "hcloudgo",
    binaries=(("talos-hetzner/tests/lab/hcloudgo", "hcloudgo"),),
)


@pytest.fixture(scope="module")
def hcloud_go() -> Path:
    if not go_available():
        pytest.skip("needs Go to build the hcloud-go driver")
    try:
        return build(HCLOUD_GO, progress=lambda _: None) / "hcloudgo"
    except BuildError as err:
        pytest.skip(f"hcloud-go driver could not be built: {err}")


def test_hcloud_go_creates_rescues_and_deletes_a_server_and_manages_dns(lab: Lab, hcloud_go: Path) -> None:
    _, public = new_key()
    env = {**os.environ, "HCLOUD_TOKEN": lab.spec.cloud_token, "HCLOUD_ENDPOINT": lab.cloud_url, "PUBLIC_KEY": public}
    result = subprocess.run([str(hcloud_go)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (
        seen["status"] == "running"
        and seen["status_after_reset"] == "running"
        and seen["server_type"] == "cx23"
        and seen["location"] == "fsn1"
    )
    assert seen["ipv4"].startswith(f"127.{lab.network.net}.2.") and seen["ipv6"].endswith("::/64")
    assert seen["ssh_key_same"] and seen["root_password_set"] and seen["by_name_same"] and seen["missing_is_nil"]
    assert seen["rrset_values"] == ["127.0.1.10", "127.0.2.10"] and seen["rrset_ttl"] == 60
    assert seen["invalid_input_fields"] and seen["invalid_field"] == "name"
