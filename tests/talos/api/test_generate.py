"""The committed message modules match the protos."""

from __future__ import annotations

from talos.api import generate
from talos.api.methods import METHODS


def test_generated_modules_are_up_to_date() -> None:
    assert generate.main(["--check"]) == 0


def test_method_paths_are_talos_paths() -> None:
    assert "/machine.MachineService/ApplyConfiguration" in METHODS
    assert "/machine.LifecycleService/Upgrade" in METHODS
    assert "/cosi.resource.State/Get" in METHODS
    assert METHODS["/machine.MachineService/Kubeconfig"].server_streaming
    assert METHODS["/storage.StorageService/Disks"].one_to_many
    assert not METHODS["/cosi.resource.State/Get"].one_to_many
