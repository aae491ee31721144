"""`/ssh_keys`: create, list (name/fingerprint/label_selector), get, update, delete (hetzner.md §9.4).

The public key is echoed verbatim; the fingerprint is the MD5 colon-hex of the key blob; `labels` is
always an object; a duplicate name or fingerprint is 409 uniqueness_error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from lab.cloud.core import (
    Ids,
    body,
    invalid_input,
    label_filter,
    not_found,
    paginate,
    sort_items,
    timestamp,
    uniqueness_error,
)
from lab.httpserver import Request, Response, Router


@dataclass
class SshKey:
    id: int
    name: str
    public_key: str
    fingerprint: str
    labels: dict[str, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "public_key": self.public_key,
            "labels": dict(self.labels),
            "created": timestamp(self.created),
        }


def fingerprint_of(public_key: str) -> str:
    """MD5 colon-hex of an OpenSSH public key; ValueError when it is not one."""
    try:
        load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (ValueError, IndexError, binascii.Error, TypeError) as err:
        raise ValueError(str(err)) from None
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())


def check_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise invalid_input({"labels": "must be an object of strings"})
    return dict(labels)


class SshKeys:
    """The project's SSH keys."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.keys: dict[int, SshKey] = {}
        self._lock = threading.Lock()

    def register(self, router: Router) -> None:
        router.add("GET", "/ssh_keys", self.list)
        router.add("POST", "/ssh_keys", self.create)
        router.add("GET", "/ssh_keys/{id:int}", self.get)
        router.add("PUT", "/ssh_keys/{id:int}", self.update)
        router.add("DELETE", "/ssh_keys/{id:int}", self.delete)

    def reset(self) -> None:
        with self._lock:
            self.keys.clear()

    def resolve(self, ref: Any, field_name: str = "ssh_keys") -> SshKey:
        """A key by id or name, as server create and enable_rescue accept them."""
        with self._lock:
            for key in self.keys.values():
                if key.id == ref or str(key.id) == str(ref) or key.name == ref:
                    return key
        raise invalid_input({field_name: f"ssh key {ref!r} not found"})

    def _key(self, request: Request) -> SshKey:
        key = self.keys.get(request.params["id"])
        if key is None:
            raise not_found("ssh key")
        return key

    def list(self, request: Request) -> Response:
        name, fingerprint = request.arg("name"), request.arg("fingerprint")
        labels = label_filter(request.arg("label_selector"))
        with self._lock:
            selected = [
                k.to_dict()
                for k in sorted(self.keys.values(), key=lambda k: k.id)
                if (name is None or k.name == name)
                and (fingerprint is None or k.fingerprint == fingerprint)
                and labels(k.labels)
            ]
        return paginate(request, "ssh_keys", sort_items(selected, request, ("id", "name")))

    def create(self, request: Request) -> Response:
        data = body(request)
        name, public_key = data.get("name"), data.get("public_key")
        problems = {}
        if not isinstance(name, str) or not name:
            problems["name"] = "is required"
        if not isinstance(public_key, str) or not public_key:
            problems["public_key"] = "is required"
        if problems:
            raise invalid_input(problems)
        try:
            fingerprint = fingerprint_of(public_key)
        except ValueError:
            raise invalid_input({"public_key": "invalid OpenSSH public key"}) from None
        labels = check_labels(data.get("labels"))
        with self._lock:
            for key in self.keys.values():
                if key.name == name or key.fingerprint == fingerprint:
                    if key.name == name:
                        raise uniqueness_error("SSH key with the same name already exists", "name")
                    raise uniqueness_error("SSH key with the same fingerprint already exists", "public_key")
            key = SshKey(self.ids.next("ssh_key"), name, public_key, fingerprint, labels)
            self.keys[key.id] = key
        return Response.json(201, {"ssh_key": key.to_dict()})

    def get(self, request: Request) -> Response:
        return Response.json(200, {"ssh_key": self._key(request).to_dict()})

    def update(self, request: Request) -> Response:
        key, data = self._key(request), body(request)
        if "name" in data:
            if not isinstance(data["name"], str) or not data["name"]:
                raise invalid_input({"name": "must be a non-empty string"})
            key.name = data["name"]
        if "labels" in data:
            key.labels = check_labels(data["labels"])
        return Response.json(200, {"ssh_key": key.to_dict()})

    def delete(self, request: Request) -> Response:
        key = self._key(request)
        with self._lock:
            self.keys.pop(key.id, None)
        return Response.empty(204)
