"""Request attributes, users and RBAC denials as kube-apiserver words them."""

from __future__ import annotations

import pytest

from lab.kubernetes.access import (
    RequestAttributes,
    User,
    authorize,
    forbidden,
    request_attributes,
    user_from_certificate,
)

ALICE = User("alice", ("developers",))
ADMIN = User("admin", ("system:masters",))


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/nodes", {}, RequestAttributes("list", "/api/v1/nodes", resource="nodes")),
        ("GET", "/api/v1/nodes/x", {}, RequestAttributes("get", "/api/v1/nodes/x", resource="nodes", name="x")),
        ("GET", "/api/v1/nodes", {"watch": ["true"]}, RequestAttributes("watch", "/api/v1/nodes", resource="nodes")),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
            {},
            RequestAttributes(
                "delete",
                "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
                api_group="apps",
                resource="deployments",
                namespace="kube-system",
                name="coredns",
            ),
        ),
        ("GET", "/api/v1", {}, RequestAttributes("get", "/api/v1")),
        ("POST", "/metrics", {}, RequestAttributes("post", "/metrics")),
    ],
)
def test_request_attributes_follow_the_api_path_layout(
    method: str, path: str, query: dict[str, list[str]], expected: RequestAttributes
) -> None:
    assert request_attributes(method, path, query) == expected


def test_certificate_subject_gives_user_and_groups() -> None:
    organizations = (("organizationName", "system:masters"), ("organizationName", "ops"))
    peer = {"subject": (organizations, (("commonName", "admin"),))}
    assert user_from_certificate(peer) == User("admin", ("system:masters", "ops"))
    assert user_from_certificate(None) is None


def test_masters_may_do_anything_others_only_read_public_paths() -> None:
    delete = request_attributes("DELETE", "/api/v1/nodes/cp-1", {})
    version = request_attributes("GET", "/version", {})
    assert authorize(ADMIN, delete)
    assert authorize(ALICE, version)
    assert not authorize(ALICE, delete)
    assert not authorize(ALICE, request_attributes("GET", "/metrics", {}))


def test_denial_messages_name_user_verb_and_scope() -> None:
    pods = forbidden(ALICE, request_attributes("GET", "/api/v1/namespaces/default/pods", {}))
    node = forbidden(ALICE, request_attributes("GET", "/api/v1/nodes/cp-1", {}))
    path = forbidden(ALICE, request_attributes("GET", "/metrics", {}))
    assert pods["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"'
    )
    assert node["details"] == {"name": "cp-1", "kind": "nodes"}
    assert node["message"].startswith('nodes "cp-1" is forbidden: User "alice" cannot get resource "nodes"')
    assert (path["code"], path["message"]) == (403, 'forbidden: User "alice" cannot get path "/metrics"')
