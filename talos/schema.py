"""Talos' own JSON schema for machine config documents, fetched from the Go module proxy and cached.

The schema ships inside the Go module `github.com/siderolabs/talos/pkg/machinery` as
`config/schemas/config.schema.json`. It is downloaded once per contract into
`<cache root>/schemas/<machinery version>/`, verified against the contract's SHA-256 on every load, and never
committed. `python -m talos.schema` pre-fetches the schemas of every supported contract.

Talos' schema documents only the current fields: deprecated fields that Talos' strict decoder still accepts
(`persist`, the legacy `machine.network` tree, `machine.install.extraKernelArgs`, ...) are absent from it, and
`acceptedCAs` is typed as an object although Talos reads a list. `validation_schema` adds exactly those, so a
config Talos accepts passes and a misspelt field still fails.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from common.paths import cache_root
from talos.errors import TalosError
from talos.versions import CONTRACTS, VersionContract

MODULE = "github.com/siderolabs/talos/pkg/machinery"
SCHEMA_IN_MODULE = "config/schemas/config.schema.json"
DEFAULT_GOPROXY = "https://proxy.golang.org"

Schema = dict[str, Any]
Progress = Callable[[str], None]


class SchemaError(TalosError):
    """The Talos config schema cannot be fetched or does not match the pinned checksum."""


def goproxy() -> str:
    """The first https entry of `$GOPROXY` (entries are separated by `,` or `|`), else proxy.golang.org."""
    for entry in os.environ.get("GOPROXY", "").replace("|", ",").split(","):
        if entry.strip().startswith("https://"):
            return entry.strip().rstrip("/")
    return DEFAULT_GOPROXY


def schema_file(contract: VersionContract) -> Path:
    """Where the schema of a contract is cached."""
    return cache_root() / "schemas" / contract.machinery_version / "config.schema.json"


def _verified(data: bytes, contract: VersionContract, origin: str) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != contract.schema_sha256:
        raise SchemaError(
            f"{origin}: config schema of {MODULE}@{contract.machinery_version} has SHA-256 {digest}, "
            f"expected {contract.schema_sha256} (fix: check $GOPROXY, or correct schema_sha256 of contract "
            f"{contract.name} in talos/versions.py)"
        )
    return data


def _download(contract: VersionContract) -> bytes:
    url = f"{goproxy()}/{MODULE}/@v/{contract.machinery_version}.zip"
    try:
        response = requests.get(url, timeout=(10, 300))
    except requests.RequestException as err:
        raise SchemaError(f"cannot download {url}: {err} (fix: check the network and $GOPROXY)") from None
    if response.status_code != 200:
        raise SchemaError(
            f"cannot download {url}: HTTP {response.status_code} (fix: pick a machinery_version of contract "
            f"{contract.name} that the Go module proxy has, or point $GOPROXY at one that has it)"
        )
    member = f"{MODULE}@{contract.machinery_version}/{SCHEMA_IN_MODULE}"
    try:
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            data = archive.read(member)
    except (zipfile.BadZipFile, KeyError) as err:
        raise SchemaError(f"{url}: no {member} in the module zip ({err})") from None
    return _verified(data, contract, url)


def fetch_schema(contract: VersionContract, progress: Progress = lambda _: None) -> Path:
    """Make sure the contract's verified schema is in the cache; download it when missing or corrupt."""
    path = schema_file(contract)
    if path.exists():
        try:
            _verified(path.read_bytes(), contract, str(path))
            progress(f"schema {contract.machinery_version}: cached in {path}")
            return path
        except SchemaError:
            progress(f"schema {contract.machinery_version}: cached copy is corrupt, downloading again")
    progress(f"schema {contract.machinery_version}: downloading from {goproxy()}")
    data = _download(contract)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_bytes(data)
    staging.replace(path)
    progress(f"schema {contract.machinery_version}: saved to {path}")
    return path


@functools.cache
def load_schema(contract: VersionContract) -> Schema:
    """Talos' JSON schema (Draft 2020-12) for the contract, exactly as shipped and verified."""
    path = fetch_schema(contract)
    return json.loads(_verified(path.read_bytes(), contract, str(path)))


def _obj(**properties: Schema) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def _map(value: Schema) -> Schema:
    return {"type": "object", "additionalProperties": value}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


_S: Schema = {"type": "string"}
_B: Schema = {"type": "boolean"}
_I: Schema = {"type": "integer"}
_DURATION: Schema = {"type": ["string", "integer"]}
_STRINGS = _list(_S)

# Deprecated (docgen:nodoc) fields of Talos' Go structs, same in v1.12 and v1.13: accepted by its decoder,
# absent from its schema. Names and types from pkg/machinery/config/types/v1alpha1/v1alpha1_types.go.
_ROUTE = _obj(network=_S, gateway=_S, source=_S, metric=_I, mtu=_I)
_DHCP_OPTIONS = _obj(routeMetric=_I, ipv4=_B, ipv6=_B, duidv6=_S)
_VIP = _obj(ip=_S, equinixMetal=_obj(apiToken=_S), hcloud=_obj(apiToken=_S))
_ENCRYPTION = _obj(
    provider=_S,
    keys=_list(
        _obj(
            static=_obj(passphrase=_S),
            nodeID=_obj(),
            kms=_obj(endpoint=_S),
            slot=_I,
            tpm=_obj(checkSecurebootStatusOnEnroll=_B),
        )
    ),
    cipher=_S,
    keySize=_I,
    blockSize=_I,
    options=_STRINGS,
)
_ACCEPTED_CAS = _list(_obj(crt=_S))

_LEGACY_DEFS: dict[str, Schema] = {
    "legacy.DeviceSelector": _obj(busPath=_S, hardwareAddr=_S, permanentAddr=_S, pciID=_S, driver=_S, physical=_B),
    "legacy.Device": _obj(
        interface=_S,
        deviceSelector=_ref("legacy.DeviceSelector"),
        addresses=_STRINGS,
        cidr=_S,
        routes=_list(_ROUTE),
        bond=_obj(
            interfaces=_STRINGS,
            deviceSelectors=_list(_ref("legacy.DeviceSelector")),
            arpIPTarget=_STRINGS,
            **dict.fromkeys(
                [
                    "mode",
                    "xmitHashPolicy",
                    "lacpRate",
                    "adActorSystem",
                    "arpValidate",
                    "arpAllTargets",
                    "primary",
                    "primaryReselect",
                    "failOverMac",
                    "adSelect",
                ],
                _S,
            ),
            **dict.fromkeys(
                [
                    "miimon",
                    "updelay",
                    "downdelay",
                    "arpInterval",
                    "resendIgmp",
                    "minLinks",
                    "lpInterval",
                    "packetsPerSlave",
                    "numPeerNotif",
                    "tlbDynamicLb",
                    "allSlavesActive",
                    "adActorSysPrio",
                    "adUserPortKey",
                    "peerNotifyDelay",
                ],
                _I,
            ),
            useCarrier=_B,
        ),
        bridge=_obj(interfaces=_STRINGS, stp=_obj(enabled=_B), vlan=_obj(vlanFiltering=_B)),
        bridgePort=_obj(master=_S),
        vlans=_list(
            _obj(
                addresses=_STRINGS,
                cidr=_S,
                routes=_list(_ROUTE),
                dhcp=_B,
                vlanId=_I,
                mtu=_I,
                vip=_VIP,
                dhcpOptions=_DHCP_OPTIONS,
            )
        ),
        mtu=_I,
        dhcp=_B,
        ignore=_B,
        dummy=_B,
        dhcpOptions=_DHCP_OPTIONS,
        wireguard=_obj(
            privateKey=_S,
            listenPort=_I,
            firewallMark=_I,
            peers=_list(_obj(publicKey=_S, endpoint=_S, persistentKeepaliveInterval=_DURATION, allowedIPs=_STRINGS)),
        ),
        vip=_VIP,
    ),
    "legacy.NetworkConfig": _obj(
        hostname=_S,
        interfaces=_list(_ref("legacy.Device")),
        nameservers=_STRINGS,
        searchDomains=_STRINGS,
        extraHostEntries=_list(_obj(ip=_S, aliases=_STRINGS)),
        kubespan=_obj(
            enabled=_B,
            advertiseKubernetesNetworks=_B,
            allowDownPeerBypass=_B,
            harvestExtraEndpoints=_B,
            mtu=_I,
            filters=_obj(endpoints=_STRINGS, excludeAdvertisedNetworks=_STRINGS),
        ),
        disableSearchDomain=_B,
    ),
}

_CORRECTED_FIELDS = frozenset({"network", "acceptedCAs"})
"""Fields whose official definition is replaced: incomplete (v1.12's `machine.network` lists only kubespan)
or wrong (`acceptedCAs` is an object there, a list of certificates in Talos' structs)."""

_DEPRECATED_FIELDS: dict[str, dict[str, Schema]] = {
    "v1alpha1.Config": {"persist": _B},
    "v1alpha1.MachineConfig": {
        "network": _ref("legacy.NetworkConfig"),
        "acceptedCAs": _ACCEPTED_CAS,
        "disks": _list(_obj(device=_S, partitions=_list(_obj(size={"type": ["integer", "string"]}, mountpoint=_S)))),
        "env": _map(_S),
        "time": _obj(disabled=_B, servers=_STRINGS, bootTimeout=_DURATION),
        "registries": _obj(
            mirrors=_map(_obj(endpoints=_STRINGS, overridePath=_B, skipFallback=_B)),
            config=_map(
                _obj(
                    tls=_obj(clientIdentity=_obj(crt=_S, key=_S), ca=_S, insecureSkipVerify=_B),
                    auth=_obj(username=_S, password=_S, auth=_S, identityToken=_S),
                )
            ),
        ),
        "systemDiskEncryption": _obj(state=_ENCRYPTION, ephemeral=_ENCRYPTION),
    },
    "v1alpha1.FeaturesConfig": {"rbac": _B, "stableHostname": _B, "apidCheckExtKeyUsage": _B},
    "v1alpha1.InstallConfig": {"extraKernelArgs": _STRINGS, "extensions": _list(_obj(image=_S)), "bootloader": _B},
    "v1alpha1.APIServerConfig": {"disablePodSecurityPolicy": _B},
    "v1alpha1.EtcdConfig": {"subnet": _S},
    "v1alpha1.ClusterConfig": {"allowSchedulingOnMasters": _B, "acceptedCAs": _ACCEPTED_CAS},
}


@functools.cache
def validation_schema(contract: VersionContract) -> Schema:
    """Talos' schema plus the deprecated fields its decoder still accepts (see the module docstring)."""
    schema = copy.deepcopy(load_schema(contract))
    defs = schema["$defs"]
    defs.update(copy.deepcopy(_LEGACY_DEFS))
    for name, fields in _DEPRECATED_FIELDS.items():
        properties = defs[name]["properties"]
        for field, definition in fields.items():
            if field in _CORRECTED_FIELDS or field not in properties:
                properties[field] = copy.deepcopy(definition)
    _forbid_negative_integers(schema)
    return schema


def _forbid_negative_integers(node: Any) -> None:
    """Give every integer a minimum of 0: Talos decodes most into unsigned Go types and refuses negatives;
    its few signed ones (ports, MTU, key slots, thresholds, percentages) are meaningless below 0."""
    if isinstance(node, dict):
        if node.get("type") == "integer" or (isinstance(node.get("type"), list) and "integer" in node["type"]):
            node.setdefault("minimum", 0)
        for value in node.values():
            _forbid_negative_integers(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_negative_integers(value)


def document_definitions(schema: Schema) -> dict[tuple[str, str], str]:
    """Map (apiVersion, kind) of every typed document to its `$defs` entry; v1alpha1 is ("", "v1alpha1")."""
    definitions = {("", "v1alpha1"): "v1alpha1.Config"}
    for name, definition in schema["$defs"].items():
        properties = definition.get("properties", {})
        kinds = properties.get("kind", {}).get("enum", [])
        versions = properties.get("apiVersion", {}).get("enum", [])
        for kind in kinds:
            for version in versions:
                definitions[(version, kind)] = name
    return definitions


def main(argv: list[str]) -> int:
    """Pre-fetch the schema of every supported contract (or the named ones, e.g. `v1.13`)."""
    names = argv or list(CONTRACTS)
    for name in names:
        if name not in CONTRACTS:
            print(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}", file=sys.stderr)
            return 2
        try:
            fetch_schema(CONTRACTS[name], progress=lambda line: print(line, flush=True))
        except SchemaError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
