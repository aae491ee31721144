"""How resources register: args dataclasses become camelCase properties, outputs are declared, secrets merged."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from providers.registration import camel_props, secret_outputs, with_outputs


@dataclass
class Args:
    node: str
    secrets_yaml: str
    allow_new_etcd: bool = False


def test_fields_become_the_camel_case_names_providers_read() -> None:
    assert camel_props(Args("cp-1", "bundle")) == {"node": "cp-1", "secretsYaml": "bundle", "allowNewEtcd": False}


def test_outputs_are_declared_unset_next_to_the_inputs() -> None:
    assert with_outputs({"node": "cp-1"}, ("version", "outcome")) == {"node": "cp-1", "version": None, "outcome": None}


def test_secret_outputs_keep_the_callers_options_and_their_own_secrets() -> None:
    mine = pulumi.ResourceOptions(protect=True, additional_secret_outputs=["extra"])

    merged = secret_outputs(["kubeconfig"], mine)

    assert merged.protect is True
    assert sorted(merged.additional_secret_outputs or []) == ["extra", "kubeconfig"]
