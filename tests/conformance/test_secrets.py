"""Secrets bundle: ours loads in Talos' machinery and Talos' loads in ours, byte for byte; bad ones fail in both."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from talos.errors import SecretsError
from talos.secrets import SecretsBundle
from talos.versions import CONTRACTS
from tests.conformance.certs import describe_bundle
from tests.conformance.differences import RecordProperty, note_difference
from tests.conformance.edits import Edit, drop_at, set_at
from tests.conformance.oracle import Oracle
from tests.talos.conftest import TALOSCTL_SECRETS
from tests.talos.test_secrets import BAD_BUNDLES as UNIT_BAD_BUNDLES

pytestmark = pytest.mark.oracle

Bundle = dict[str, Any]
OLD_CONTRACTS = ("v1.2", "v1.6")
"""Contracts older than we generate for, whose bundles an imported cluster may still have: AES-CBC
encryption (up to v1.2) and an ECDSA service-account key (up to v1.6)."""


@pytest.fixture(scope="module")
def machinery_bundle(oracle: Oracle) -> Bundle:
    return yaml.safe_load(oracle.generate_secrets("v1.13"))


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_our_bundle_loads_in_machinery_and_is_written_back_byte_for_byte(oracle: Oracle, contract: str) -> None:
    ours = SecretsBundle.generate(CONTRACTS[contract]).to_yaml()

    verdict, rewritten = oracle.load_secrets(ours)

    assert verdict.accepted, verdict.errors
    assert rewritten == ours


@pytest.mark.parametrize("contract", [*OLD_CONTRACTS, *sorted(CONTRACTS)])
def test_machinery_bundle_loads_in_ours_and_saves_back_byte_for_byte(oracle: Oracle, contract: str) -> None:
    theirs = oracle.generate_secrets(contract)

    assert SecretsBundle.from_yaml(theirs).to_yaml() == theirs


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_our_generated_bundle_has_machinerys_shape(oracle: Oracle, contract: str) -> None:
    ours = yaml.safe_load(SecretsBundle.generate(CONTRACTS[contract]).to_yaml())
    theirs = yaml.safe_load(oracle.generate_secrets(contract))

    assert describe_bundle(ours) == describe_bundle(theirs)


BAD_BUNDLES: dict[str, Edit] = {
    "cluster-secret-empty": set_at("cluster.secret", ""),
    "cluster-missing": drop_at("cluster"),
    "trustd-token-missing": set_at("trustdinfo.token", ""),
    "etcd-ca-missing": drop_at("certs.etcd"),
    "k8s-crt-not-base64": set_at("certs.k8s.crt", "not base64!"),
    "aggregator-key-empty": set_at("certs.k8saggregator.key", ""),
    "service-account-missing": drop_at("certs.k8sserviceaccount"),
}
"""Breakages of a bundle Talos just generated (the unit tests' catalogue below starts from a fixed one)."""


@pytest.mark.parametrize("case", BAD_BUNDLES)
def test_bad_bundle_is_refused_by_both(oracle: Oracle, machinery_bundle: Bundle, case: str) -> None:
    bundle = copy.deepcopy(machinery_bundle)
    BAD_BUNDLES[case](bundle)
    text = yaml.safe_dump(bundle, sort_keys=False)

    verdict, _ = oracle.load_secrets(text)

    assert not verdict.accepted
    with pytest.raises(SecretsError):
        SecretsBundle.from_yaml(text)


UNIT_CATALOGUE_DIFFERENCES = {
    "short secretbox key": "secrets-key-format",
    "cluster secret not base64": "secrets-key-format",
    "bad token format": "secrets-token-format",
    "token without dot": "secrets-token-format",
    "trustd token with space": "secrets-token-format",
    "wrong key for cert": "secrets-key-pair",
    "unknown field": "secrets-strict-yaml",
    "token not a string": "secrets-strict-yaml",
    "cluster id not base64": "secrets-cluster-id-format",
}
"""Cases of the unit tests' bad-bundle catalogue that Talos accepts, by name: the listed difference they meet."""


@pytest.mark.parametrize(
    ("name", "mutate"), [pytest.param(name, mutate, id=name) for name, mutate, _ in UNIT_BAD_BUNDLES]
)
def test_bundle_our_unit_tests_refuse_is_refused_by_talos(
    oracle: Oracle, name: str, mutate: Edit, record_property: RecordProperty
) -> None:
    bundle = yaml.safe_load(TALOSCTL_SECRETS.read_text(encoding="utf-8"))
    mutate(bundle)
    text = yaml.safe_dump(bundle, sort_keys=False)

    verdict, _ = oracle.load_secrets(text)

    with pytest.raises(SecretsError):
        SecretsBundle.from_yaml(text)
    difference = UNIT_CATALOGUE_DIFFERENCES.get(name)
    if difference:
        note_difference(record_property, difference)
        assert verdict.accepted, f"Talos now refuses it too; drop the listed difference: {verdict.errors}"
    else:
        assert not verdict.accepted
