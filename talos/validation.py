"""Validate a machine config before it could ever be sent to a node.

Two layers, both reporting every problem at once with the document, the path and the fix:
- shape: each document against Talos' own JSON schema for the contract (plus the deprecated fields Talos still
  decodes, see talos.schema): unknown or misspelt fields (with the closest known name), wrong types, enum values;
- meaning: the checks of Talos' v1alpha1 `Config.Validate` and of the typed documents' `Validate`
  (pkg/machinery/config/types/{v1alpha1/v1alpha1_validation.go,network/*.go}, container/container.go), plus the
  pod/service subnets, which Talos only rejects once the node runs.

Messages quote names, addresses and enum values, never the value of a field that may hold a secret (the fields
talos.compare redacts), and never the credentials or query of a URL (a join token, a registry password).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from talos.compare import is_secret_path, masked_url
from talos.documents import Document, document_id, document_key
from talos.errors import ConfigError, TalosError, UnsupportedVersionError
from talos.schema import document_definitions, validation_schema
from talos.versions import VersionContract, parse_version

Mode = Literal["metal", "cloud", "container"]
MODES: tuple[Mode, ...] = ("metal", "cloud", "container")

LINK_KINDS = frozenset(
    {"BondConfig", "BridgeConfig", "DummyLinkConfig", "LinkConfig", "VLANConfig", "VRFConfig", "WireguardConfig"}
)
"""Kinds that configure a network link: one name may be used by only one of them."""

_DNS_NAME = re.compile(r"^([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?$")
_IMAGE_NAME = re.compile(r"[^\s:/@]+(?::\d+)?(/[^\s:/@]+)*")
_IMAGE_TAG = re.compile(r"\w[\w.-]{0,127}")
_IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DISK_SIZE = re.compile(r"^(>=|<=|>|<|==)?\s*([0-9.,]+)\s*([a-zA-Z]*)$")
_SIZE_UNITS = frozenset(
    {"", "b", "k", "kb", "ki", "kib", "m", "mb", "mi", "mib", "g", "gb", "gi", "gib"}
    | {"t", "tb", "ti", "tib", "p", "pb", "pi", "pib", "e", "eb", "ei", "eib"}
)
DISK_TYPES = ("ssd", "hdd", "nvme", "sd")
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}
_PIN_INSTALLER = "pin the installer to a Talos release or a digest, e.g. ghcr.io/siderolabs/installer:v1.13.9"
_PATTERN_FIXES = {
    "^https://": "write it as https://<host>:<port>",
    "^[0-9a-f.:]+/\\d{1,3}$": "write an IP prefix such as 192.0.2.10/32 (lowercase hex for IPv6)",
    "^[0-9a-f.:]+$": "write a bare IP address such as 192.0.2.1 (lowercase hex for IPv6)",
    "^(https|grpc)://": "start the URL with https:// or grpc://",
    "^(http|https)://": "start the URL with http:// or https://",
    "^(tcp|udp)://": "start the URL with tcp:// or udp://, e.g. udp://192.0.2.1:514",
    "^([0-9a-f.:]+|\\[[0-9a-f:.]+\\]):\\d{1,5}$": "write an address and port, e.g. 192.0.2.1:53 or [2001:db8::1]:53",
    "^([0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+)$": "write a hardware address such as 00:11:22:aa:bb:cc",
    "^[0-9a-f:]+$": "write a hardware address in lowercase hex, e.g. 00:11:22:aa:bb:cc",
    "^[-+]?(((\\d+(\\.\\d*)?|\\d*(\\.\\d+)+)([nu\u00b5m]?s|m|h))|0)+$": "write a duration such as 30s, 5m or 1h30m",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (document, path), what, and how to fix it."""

    document: str
    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.document}: {self.path or '(document)'}: {self.message} (fix: {self.fix})"


class ConfigValidationError(TalosError):
    """The machine config is invalid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"the machine config is invalid ({len(self.problems)} problem(s)):\n{lines}")


def validate_config(documents: list[Document], contract: VersionContract, *, mode: Mode = "metal") -> None:
    """Raise ConfigValidationError listing every problem of the documents; return None when Talos would accept them.

    `mode` is Talos' runtime mode: "metal" requires an install disk or selector, "container" requires host DNS.
    """
    if mode not in MODES:
        raise ConfigError("validate_config", "mode", f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    problems: list[Problem] = []
    definitions = document_definitions(validation_schema(contract))
    seen: dict[tuple[str, str, str], int] = {}
    v1alpha1: Document | None = None
    for index, doc in enumerate(documents):
        label = _label(doc, index)
        definition = _definition(doc, label, definitions, problems)
        if definition is None:
            continue
        problems.extend(_schema_problems(doc, label, contract, definition))
        key = document_key(doc)
        if key in seen:
            problems.append(
                Problem(
                    label,
                    "",
                    f"duplicate document: document {seen[key] + 1} is the same {label}",
                    "merge the two documents into one",
                )
            )
            continue
        seen[key] = index
        if definition == "v1alpha1.Config":
            v1alpha1 = doc
        else:
            problems.extend(_typed_problems(doc, label))
    problems.extend(_link_conflicts(documents))
    if v1alpha1 is None:
        problems.append(
            Problem(
                "v1alpha1",
                "",
                "the v1alpha1 document (machine and cluster sections) is missing",
                "render the config with talos.config.render_config, which emits it first",
            )
        )
    else:
        problems.extend(_v1alpha1_problems(v1alpha1, mode))
        problems.extend(_hostname_conflict(v1alpha1, documents))
    if problems:
        raise ConfigValidationError(problems)


def endpoint_problem(endpoint: str) -> str | None:
    """Why `endpoint` is not a usable control plane URL `https://<host>:<port>`, or None when it is."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https":
        return "the scheme must be https://"
    if parts.netloc.count(":") > 2 and "[" not in parts.netloc:
        return "an IPv6 address must be enclosed in square brackets"
    if not parts.hostname:
        return "the host name must not be blank"
    try:
        port = parts.port
    except ValueError:
        return "the port must be a number between 1 and 65535"
    if port is not None and not 1 <= port <= 65535:
        return "the port must be a number between 1 and 65535"
    return None


def installer_image_problem(image: str) -> str | None:
    """Why `image` is not an installer pinned to a Talos release tag or a digest, or None when it is.

    A reference without a tag means `latest`, and `latest` moves: the same config would install another release
    another day, and an upgrade could no longer tell what a node runs. Talos itself accepts any reference.
    """
    name, at, digest = image.partition("@")
    if at and not _IMAGE_DIGEST.fullmatch(digest):
        return "its digest is not sha256: and 64 lowercase hex digits"
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = name, ""
    if not _IMAGE_NAME.fullmatch(repository) or (tag and not _IMAGE_TAG.fullmatch(tag)):
        return "it is not an image reference"
    if at:
        return None
    if not tag or tag == "latest":
        return "it is not pinned: without a tag, or with `latest`, it installs whatever release is newest that day"
    try:
        parse_version(tag)
    except UnsupportedVersionError:
        return f"its tag {tag!r} is not a Talos release such as v1.13.9"
    return None


# --- document identity and shape -------------------------------------------------------------------------


def _label(doc: Document, index: int) -> str:
    label = document_id(doc)
    return f"document {index + 1}" if "?" in label else label


def _definition(
    doc: Document, label: str, definitions: Mapping[tuple[str, str], str], problems: list[Problem]
) -> str | None:
    """The schema definition of the document's kind; report a missing or unknown kind."""
    key = document_key(doc)
    if key[1] == "v1alpha1" and not key[0]:
        return definitions[("", "v1alpha1")]
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not kind or not api_version:
        missing = "kind" if not kind else "apiVersion"
        problems.append(Problem(label, missing, f"typed document without {missing}", "set both apiVersion and kind"))
        return None
    definition = definitions.get((str(api_version), str(kind)))
    if definition is None:
        kinds = sorted({k for _, k in definitions if k != "v1alpha1"})
        problems.append(
            Problem(
                label,
                "kind",
                f"unknown document kind {kind!r} with apiVersion {api_version!r}",
                _closest_fix(str(kind), kinds, "use a kind Talos knows"),
            )
        )
    return definition


@functools.cache
def _validator(contract: VersionContract, definition: str) -> Draft202012Validator:
    """A validator for one `$defs` entry that resolves references within the contract's schema."""
    schema = validation_schema(contract)
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


def _schema_problems(doc: Document, label: str, contract: VersionContract, definition: str) -> Iterator[Problem]:
    validator = _validator(contract, definition)
    errors = sorted(validator.iter_errors(_without_nulls(doc)), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        yield from _translate(label, doc, error)


def _without_nulls(value: Any) -> Any:
    """Drop `key: null` entries: Talos' decoder reads them as absent (the zero value), the schema would not."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _translate(label: str, doc: Document, error: ValidationError) -> Iterator[Problem]:
    path = _path(error.absolute_path)
    rule, expected, value = error.validator, error.validator_value, error.instance
    secret = is_secret_path(doc, list(error.absolute_path))
    if rule == "additionalProperties" and isinstance(value, dict):
        known = sorted(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        for key in value:
            if key not in known and not any(p.search(str(key)) for p in patterns):
                yield Problem(
                    label,
                    _join(path, str(key)),
                    f"unknown field {key!r}",
                    _closest_fix(str(key), known, "remove it or move it where it belongs"),
                )
    elif rule == "type":
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
        yield Problem(label, path, f"is {_type_name(value)}, expected {wanted}", f"write {wanted} here")
    elif rule == "enum":
        choices = [str(choice) for choice in expected]
        yield Problem(
            label,
            path,
            f"{_shown(value, secret)} is not one of {', '.join(choices)}",
            f"use one of {', '.join(choices)}"
            if secret
            else _closest_fix(str(value), choices, f"use one of {', '.join(choices)}"),
        )
    elif rule == "pattern":
        yield Problem(
            label,
            path,
            f"{_shown(value, secret)} does not match the pattern {expected}",
            _PATTERN_FIXES.get(expected, f"write a value matching {expected}"),
        )
    elif rule == "minimum":
        yield Problem(
            label, path, f"{value!r} is below the minimum {expected}", f"write a number of at least {expected}"
        )
    elif rule == "required":
        for key in expected:
            if isinstance(value, dict) and key not in value:
                yield Problem(label, _join(path, key), "required field is missing", f"set {key}")
    elif rule == "oneOf":
        yield Problem(
            label,
            path,
            f"is {_type_name(value)}, expected a string or a list of strings",
            "write a string, or a list of strings",
        )
    else:
        yield Problem(label, path, f"violates the schema rule {rule}: {expected!r}", "correct the value")


def _shown(value: Any, secret: bool) -> str:
    """A value as an error message may quote it: a secret field's value not at all, text with URL credentials and
    query masked."""
    if secret:
        return "the value (hidden: it is a secret)"
    return repr(masked_url(value)) if isinstance(value, str) else repr(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return _TYPE_NAMES["boolean"]
    if isinstance(value, int):
        return _TYPE_NAMES["integer"]
    if isinstance(value, float):
        return _TYPE_NAMES["number"]
    if isinstance(value, str):
        return _TYPE_NAMES["string"]
    if isinstance(value, list):
        return _TYPE_NAMES["array"]
    if isinstance(value, dict):
        return _TYPE_NAMES["object"]
    return _TYPE_NAMES["null"] if value is None else type(value).__name__


def _closest_fix(value: str, known: list[str], otherwise: str) -> str:
    lowered = {k.lower(): k for k in known}
    match = lowered.get(value.lower()) or next(iter(difflib.get_close_matches(value, known, n=1, cutoff=0.6)), None)
    return f"did you mean {match!r}?" if match else otherwise


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- defensive accessors: shape errors are reported by the schema, meaning checks must not crash on them ----


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _at(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for key in path.split("."):
        value = _map(value).get(key)
    return value


# --- meaning: v1alpha1 ---------------------------------------------------------------------------------------


def _v1(path: str, message: str, fix: str) -> Problem:
    return Problem("v1alpha1", path, message, fix)


def _v1alpha1_problems(doc: Document, mode: Mode) -> Iterator[Problem]:
    machine, cluster = doc.get("machine"), doc.get("cluster")
    if not isinstance(machine, dict):
        yield _v1("machine", "the machine section is required", "render the config with render_config")
        return
    if not isinstance(cluster, dict):
        yield _v1("cluster", "the cluster section is required", "render the config with render_config")
        return
    if doc.get("persist") is False:
        yield _v1("persist", "must be true (Talos always persists its config)", "remove it or set it to true")
    control_plane = machine.get("type") in ("controlplane", "init")
    yield from _cluster_problems(cluster, control_plane)
    yield from _install_problems(_map(machine.get("install")), mode)
    yield from _security_problems(machine, cluster, control_plane)
    yield from _host_dns_problems(machine, mode)
    yield from _legacy_network_problems(_map(machine.get("network")), control_plane)
    yield from _subnet_filter_problems(
        _at(machine, "kubelet.nodeIP.validSubnets"), "machine.kubelet.nodeIP.validSubnets"
    )


def _subnet_filter_problems(subnets: Any, path: str) -> Iterator[Problem]:
    """Entries of a subnet filter: a CIDR or an address, `!` in front excluding it."""
    for index, subnet in enumerate(_seq(subnets)):
        if isinstance(subnet, str) and not _subnet_or_address(subnet.removeprefix("!")):
            yield _v1(
                f"{path}[{index}]",
                f"{subnet!r} is not a subnet or an IP address",
                "write a CIDR such as 10.0.0.0/8, optionally prefixed with ! to exclude it",
            )


def _cluster_problems(cluster: dict[str, Any], control_plane: bool) -> Iterator[Problem]:
    endpoint = _at(cluster, "controlPlane.endpoint")
    if not endpoint:
        yield _v1("cluster.controlPlane.endpoint", "is required", "set it to https://<host>:6443")
    # Other schemes are reported by the schema's `^https://` pattern.
    elif isinstance(endpoint, str) and endpoint.startswith("https://") and (reason := endpoint_problem(endpoint)):
        yield _v1(
            "cluster.controlPlane.endpoint",
            f"{masked_url(endpoint)!r} is malformed: {reason}",
            "use https://<host>:6443",
        )
    network = _map(cluster.get("network"))
    domain = network.get("dnsDomain")
    if isinstance(domain, str) and domain and not valid_dns_name(domain):
        yield _v1("cluster.network.dnsDomain", f"{domain!r} is not a valid DNS name", "use e.g. cluster.local")
    for field in ("podSubnets", "serviceSubnets"):
        for index, subnet in enumerate(_seq(network.get(field))):
            if isinstance(subnet, str) and not _cidr(subnet):
                yield _v1(
                    f"cluster.network.{field}[{index}]",
                    f"{subnet!r} is not a valid CIDR",
                    "write a network such as 10.244.0.0/16",
                )
    if control_plane:
        yield from _cni_problems(_map(network.get("cni")))
    yield from _etcd_problems(cluster, control_plane)
    names: set[str] = set()
    for index, manifest in enumerate(_seq(cluster.get("inlineManifests"))):
        name = _map(manifest).get("name")
        if not isinstance(name, str) or not name.strip():
            yield _v1(f"cluster.inlineManifests[{index}].name", "must not be empty", "give the manifest a name")
        elif name in names:
            yield _v1(f"cluster.inlineManifests[{index}].name", f"{name!r} is used twice", "use unique names")
        else:
            names.add(name)
    service = _at(cluster, "discovery.registries.service")
    service_endpoint = _map(service).get("endpoint")
    if isinstance(service_endpoint, str) and service_endpoint:
        parts = urlsplit(service_endpoint)
        if not parts.scheme or not parts.netloc or parts.path not in ("", "/"):
            yield _v1(
                "cluster.discovery.registries.service.endpoint",
                f"{masked_url(service_endpoint)!r} is not a URL without a path",
                "use e.g. https://discovery.talos.dev/",
            )


def _cni_problems(cni: dict[str, Any]) -> Iterator[Problem]:
    name = cni.get("name") or "flannel"
    urls = _seq(cni.get("urls"))
    if name in ("flannel", "none") and urls:
        yield _v1("cluster.network.cni.urls", f"must be empty for the {name!r} CNI", "remove urls or use custom")
    if name == "custom" and not urls:
        # Talos only warns (an error with --strict); without manifests no CNI would ever be deployed.
        yield _v1("cluster.network.cni.urls", "the custom CNI needs the URLs of its manifests", "list them in urls")
    if name in ("custom", "none"):
        for field in ("extraArgs", "kubeNetworkPoliciesEnabled"):
            if _at(cni, f"flannel.{field}"):
                yield _v1(
                    f"cluster.network.cni.flannel.{field}",
                    f"is a flannel option and the {name!r} CNI is not flannel",
                    "remove the flannel section",
                )
    for index, url in enumerate(urls):
        if isinstance(url, str) and (reason := _url_problem(url)):
            yield _v1(
                f"cluster.network.cni.urls[{index}]", f"{masked_url(url)!r} is malformed: {reason}", "use a full URL"
            )


def _etcd_problems(cluster: dict[str, Any], control_plane: bool) -> Iterator[Problem]:
    etcd = cluster.get("etcd")
    if etcd is None:
        return
    if not control_plane:
        yield _v1("cluster.etcd", "etcd runs only on control plane nodes", "remove cluster.etcd from worker configs")
        return
    etcd = _map(etcd)
    if not etcd.get("ca"):
        yield _v1("cluster.etcd.ca", "the etcd CA certificate and key are required", "take them from the bundle")
    if etcd.get("subnet") and etcd.get("advertisedSubnets"):
        yield _v1("cluster.etcd.subnet", "conflicts with advertisedSubnets", "use advertisedSubnets only")
    for field in ("advertisedSubnets", "listenSubnets"):
        yield from _subnet_filter_problems(etcd.get(field), f"cluster.etcd.{field}")


def _install_problems(install: dict[str, Any], mode: Mode) -> Iterator[Problem]:
    if mode == "container":
        return
    if not install:
        if mode == "metal":
            yield _v1("machine.install", "is required in metal mode", "set machine.install.disk or diskSelector")
        return
    selector = install.get("diskSelector")
    selector_problems = list(_disk_selector_problems(_map(selector))) if selector is not None else []
    yield from selector_problems
    image = install.get("image")
    if isinstance(image, str) and image and (reason := installer_image_problem(image)):
        yield _v1("machine.install.image", f"{masked_url(image)!r}: {reason}", _PIN_INSTALLER)
    elif mode == "metal" and not image:
        yield _v1("machine.install.image", "is required in metal mode: it is what installs Talos", _PIN_INSTALLER)
    if mode == "metal" and not install.get("disk") and (not selector or selector_problems):
        yield _v1(
            "machine.install",
            "neither disk nor a valid diskSelector is set: Talos cannot choose where to install",
            "set machine.install.disk (e.g. /dev/sda) or machine.install.diskSelector (e.g. {wwid: 'eui.*'})",
        )
    if mode == "metal" and install.get("extraKernelArgs") and install.get("grubUseUKICmdline") is True:
        yield _v1(
            "machine.install.extraKernelArgs",
            "cannot be used together with grubUseUKICmdline: true (the generated default)",
            "also set machine.install.grubUseUKICmdline: false, or put the arguments in the Image Factory schematic",
        )


def _disk_selector_problems(selector: dict[str, Any]) -> Iterator[Problem]:
    path = "machine.install.diskSelector"
    if selector.get("name"):
        yield _v1(f"{path}.name", "selecting the install disk by name is not supported", "use wwid, serial or model")
    size = selector.get("size")
    if isinstance(size, str) and not disk_size_ok(size):
        yield _v1(
            f"{path}.size",
            f"{size!r} is not a size condition",
            "write an optional operator (==, >=, <=, >, <) and a size, e.g. '>= 400GB' or '<= 2TiB'",
        )
    disk_type = selector.get("type")
    if isinstance(disk_type, str) and disk_type and disk_type not in DISK_TYPES:
        yield _v1(
            f"{path}.type",
            f"{disk_type!r} is not a disk type",
            _closest_fix(disk_type, list(DISK_TYPES), f"use one of {', '.join(DISK_TYPES)}"),
        )


def disk_size_ok(size: str) -> bool:
    """Whether `size` is a diskSelector size condition Talos parses: optional operator, number, unit."""
    match = _DISK_SIZE.match(size.strip())
    if not match:
        return False
    try:
        float(match[2].replace(",", ""))
    except ValueError:
        return False
    return match[3].lower() in _SIZE_UNITS


def _security_problems(machine: dict[str, Any], cluster: dict[str, Any], control_plane: bool) -> Iterator[Problem]:
    machine_ca = machine.get("ca")
    if machine_ca is None and not machine.get("acceptedCAs"):
        yield _v1("machine.ca", "a Talos API CA (or acceptedCAs) is required", "set the OS CA from the bundle")
    machine_ca = _map(machine_ca)
    if control_plane:
        if not machine_ca.get("key"):
            yield _v1(
                "machine.ca.key",
                "a control plane needs the Talos API CA key to issue certificates",
                "set the OS CA key from the secrets bundle",
            )
        return
    if machine_ca.get("key"):
        yield _v1(
            "machine.ca.key",
            "a worker must not carry the Talos API CA key",
            "leave key empty on workers (render_config does)",
        )
    if machine.get("ca") is not None and not machine_ca.get("crt") and not machine.get("acceptedCAs"):
        yield _v1("machine.ca.crt", "a worker needs the Talos API CA certificate", "set the OS CA certificate")
    if _map(cluster.get("ca")).get("key"):
        yield _v1(
            "cluster.ca.key",
            "a worker must not carry the Kubernetes CA key",
            "leave key empty on workers (render_config does)",
        )


def _host_dns_problems(machine: dict[str, Any], mode: Mode) -> Iterator[Problem]:
    host_dns = _map(_at(machine, "features.hostDNS"))
    if mode == "container":
        for field in ("enabled", "forwardKubeDNSToHost"):
            if host_dns.get(field) is not True:
                yield _v1(f"machine.features.hostDNS.{field}", "must be true in container mode", "set it to true")
    elif host_dns.get("forwardKubeDNSToHost") is True and host_dns.get("enabled") is not True:
        yield _v1(
            "machine.features.hostDNS.forwardKubeDNSToHost",
            "requires machine.features.hostDNS.enabled",
            "set hostDNS.enabled: true",
        )


def _legacy_network_problems(network: dict[str, Any], control_plane: bool) -> Iterator[Problem]:
    members: dict[str, str] = {}
    devices = _seq(network.get("interfaces"))
    for index, device in enumerate(devices):
        device = _map(device)
        path = f"machine.network.interfaces[{index}]"
        name = str(device.get("interface") or f"#{index}")
        if device.get("bond") is not None and device.get("bridge") is not None:
            yield _v1(path, "bond and bridge are mutually exclusive", "configure either a bond or a bridge")
        bond = _map(device.get("bond"))
        if bond.get("interfaces") and bond.get("deviceSelectors"):
            yield _v1(f"{path}.bond", "interfaces and deviceSelectors are mutually exclusive", "use one of them")
        for member in _seq(bond.get("interfaces")) + _seq(_at(device, "bridge.interfaces")):
            owner = members.setdefault(str(member), name)
            if owner != name:
                yield _v1(path, f"{member!r} is part of two links: {owner} and {name}", "use it in one link only")
    for index, device in enumerate(devices):
        device = _map(device)
        if not device.get("ignore"):
            yield from _device_problems(device, f"machine.network.interfaces[{index}]", members, control_plane)


def _device_problems(
    device: dict[str, Any], path: str, members: dict[str, str], control_plane: bool
) -> Iterator[Problem]:
    has_name, selector = bool(device.get("interface")), device.get("deviceSelector")
    if has_name == (selector is not None):
        yield _v1(
            path,
            "exactly one of interface and deviceSelector must be set",
            "name the link (interface: eth0) or select it (deviceSelector: {hardwareAddr: ...})",
        )
    if selector is not None and not _map(selector):
        yield _v1(f"{path}.deviceSelector", "is empty", "set at least one field, e.g. hardwareAddr")
    if str(device.get("interface")) in members and (
        device.get("dhcp") or device.get("cidr") or device.get("addresses") or device.get("vip")
    ):
        yield _v1(path, "a bonded or bridged interface must have no addressing", "address the bond or bridge")
    yield from _addressing_problems(device, path)
    if not control_plane and device.get("vip") is not None:
        yield _v1(f"{path}.vip", "a shared (virtual) IP is allowed on control plane nodes only", "remove it")
    for vlan_index, vlan in enumerate(_seq(device.get("vlans"))):
        vlan = _map(vlan)
        vlan_path = f"{path}.vlans[{vlan_index}]"
        yield from _addressing_problems(vlan, vlan_path)
        if not control_plane and vlan.get("vip") is not None:
            yield _v1(f"{vlan_path}.vip", "a shared (virtual) IP is allowed on control plane nodes only", "remove it")


def _addressing_problems(link: dict[str, Any], path: str) -> Iterator[Problem]:
    """Addresses, CIDR, VIP and routes of a legacy interface or VLAN."""
    if link.get("cidr") and link.get("addresses"):
        yield _v1(f"{path}.cidr", "conflicts with addresses", "list the address under addresses only")
    if isinstance(link.get("cidr"), str) and not _ip_or_cidr(link["cidr"]):
        yield _v1(f"{path}.cidr", f"{link['cidr']!r} is not an IP address or CIDR", "write e.g. 192.0.2.10/32")
    for index, address in enumerate(_seq(link.get("addresses"))):
        if isinstance(address, str) and not _ip_or_cidr(address):
            yield _v1(
                f"{path}.addresses[{index}]",
                f"{address!r} is not an IP address or CIDR",
                "write the address with its prefix length, e.g. 192.0.2.10/32",
            )
    vip = _map(link.get("vip")).get("ip")
    if isinstance(vip, str) and not _ip(vip):
        yield _v1(f"{path}.vip.ip", f"{vip!r} is not an IP address", "write e.g. 192.0.2.100")
    for index, route in enumerate(_seq(link.get("routes"))):
        route = _map(route)
        route_path = f"{path}.routes[{index}]"
        network, gateway, source = route.get("network"), route.get("gateway"), route.get("source")
        if not network and not gateway:
            yield _v1(route_path, "either network or gateway must be set", "set network (and gateway unless on-link)")
        if isinstance(network, str) and network and not _cidr(network):
            yield _v1(f"{route_path}.network", f"{network!r} is not a CIDR", "write e.g. 0.0.0.0/0 or 192.0.2.1/32")
        for field, value in (("gateway", gateway), ("source", source)):
            if isinstance(value, str) and value and not _ip(value):
                yield _v1(f"{route_path}.{field}", f"{value!r} is not an IP address", "write e.g. 192.0.2.1")


def _hostname_conflict(v1alpha1: Document, documents: list[Document]) -> Iterator[Problem]:
    if not _at(v1alpha1, "machine.network.hostname"):
        return
    if any(doc.get("kind") == "HostnameConfig" for doc in documents):
        yield Problem(
            "HostnameConfig",
            "",
            "static hostname is already set in the v1alpha1 document (machine.network.hostname)",
            "set the hostname in HostnameConfig (auto: off, hostname: <name>) and remove machine.network.hostname",
        )


# --- meaning: typed documents --------------------------------------------------------------------------------


def _typed_problems(doc: Document, label: str) -> Iterator[Problem]:
    kind = doc.get("kind")
    if kind == "HostnameConfig":
        yield from _hostname_problems(doc, label)
    elif kind in LINK_KINDS:
        if not doc.get("name"):
            yield Problem(label, "name", "is required", "name the link, e.g. name: eth0")
        yield from _link_problems(doc, label)


def _hostname_problems(doc: Document, label: str) -> Iterator[Problem]:
    auto, hostname = doc.get("auto"), doc.get("hostname")
    if auto is None and not hostname:
        yield Problem(label, "auto", "either auto or hostname must be set", "set auto: stable, or auto: off + hostname")
    if auto != "off" and hostname:
        yield Problem(
            label,
            "hostname",
            f"cannot be set together with auto: {auto or 'stable'}",
            "set auto: 'off' next to hostname",
        )
    if isinstance(hostname, str) and hostname:
        first = hostname.split(".", 1)[0]
        if len(hostname) > 253 or not 0 < len(first) <= 63:
            yield Problem(label, "hostname", f"{hostname!r} is not a valid host name", "use at most 63 characters")


def _link_problems(doc: Document, label: str) -> Iterator[Problem]:
    for index, address in enumerate(_seq(doc.get("addresses"))):
        value = _map(address).get("address")
        if isinstance(value, str) and not _usable_prefix(value):
            yield Problem(
                label,
                f"addresses[{index}].address",
                f"{value!r} is not a valid IP prefix",
                "write the address with its prefix length, e.g. 192.0.2.10/32",
            )
    for index, route in enumerate(_seq(doc.get("routes"))):
        route = _map(route)
        destination = route.get("destination")
        if isinstance(destination, str) and destination and not _usable_prefix(destination):
            yield Problem(
                label,
                f"routes[{index}].destination",
                f"{destination!r} is not a valid IP prefix",
                "write e.g. 192.0.2.1/32, or leave it out for the default route",
            )
        for field in ("gateway", "source"):
            value = route.get(field)
            if isinstance(value, str) and value and not _usable_ip(value):
                yield Problem(
                    label, f"routes[{index}].{field}", f"{value!r} is not a valid IP address", "e.g. 192.0.2.1"
                )


def _link_conflicts(documents: list[Document]) -> Iterator[Problem]:
    owners: dict[str, str] = {}
    for doc in documents:
        kind, name = doc.get("kind"), doc.get("name")
        if kind not in LINK_KINDS or not isinstance(name, str):
            continue
        owner = owners.setdefault(name, str(kind))
        if owner != kind:
            yield Problem(
                f"{kind}/{name}",
                "name",
                f"link {name!r} is also configured by a {owner} document",
                "configure each link in one document",
            )


# --- address helpers (Go net.ParseCIDR / net.ParseIP / netip semantics) ----------------------------------


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _cidr(value: str) -> bool:
    address, slash, length = value.partition("/")
    if not slash or not length.isdigit() or not _ip(address):
        return False
    return int(length) <= ipaddress.ip_address(address).max_prefixlen


def _ip_or_cidr(value: str) -> bool:
    return _cidr(value) if "/" in value else _ip(value)


def _subnet_or_address(value: str) -> bool:
    return _cidr(value) or _ip(value)


def _usable_ip(value: str) -> bool:
    return _ip(value) and not ipaddress.ip_address(value).is_unspecified


def _usable_prefix(value: str) -> bool:
    return _cidr(value) and _usable_ip(value.split("/", 1)[0])


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "a scheme and a host are required"
    try:
        _ = parts.port
    except ValueError:
        return "the port must be a number between 1 and 65535"
    return None


def valid_dns_name(name: str) -> bool:
    """Whether `name` is a DNS name as Talos checks cluster.network.dnsDomain."""
    return len(name) - name.count(".") <= 255 and bool(_DNS_NAME.match(name))
