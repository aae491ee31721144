"""The lookups a server create needs: locations, datacenters, server types, images (read-only data).

hcloud-go looks up `GET /server_types?name=`, `GET /images?architecture=&include_deprecated=&name=` and
`GET /images/{id}` (hetzner.md §9.2); hcloud-python resolves names the same way. Nothing is deprecated.
"""

from __future__ import annotations

from typing import Any

from lab.cloud.core import CloudError, label_filter, not_found, paginate, sort_items
from lab.httpserver import Request, Response, Router

CREATED = "2026-01-01T00:00:00+00:00"
GB = 1 << 30

LOCATIONS: list[dict[str, Any]] = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE", "city": "Falkenstein",
     "latitude": 50.47612, "longitude": 12.370071, "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE", "city": "Nuremberg",
     "latitude": 49.452102, "longitude": 11.076665, "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI", "city": "Helsinki",
     "latitude": 60.169855, "longitude": 24.938379, "network_zone": "eu-central"},
]  # fmt: skip

_TYPES: list[tuple[int, str, str, int, float, int, str, str]] = [
    (104, "cx23", "CX23", 2, 4.0, 40, "shared", "x86"),
    (105, "cx33", "CX33", 4, 8.0, 80, "shared", "x86"),
    (108, "cpx22", "CPX22", 2, 4.0, 80, "shared", "x86"),
    (96, "ccx13", "CCX13", 2, 8.0, 80, "dedicated", "x86"),
    (45, "cax11", "CAX11", 2, 4.0, 40, "shared", "arm"),
]
SERVER_TYPES: list[dict[str, Any]] = [
    {
        "id": ident,
        "name": name,
        "description": description,
        "category": "cost_optimized" if cpu == "shared" else "general_purpose",
        "cores": cores,
        "memory": memory,
        "disk": disk,
        "storage_type": "local",
        "cpu_type": cpu,
        "architecture": arch,
        "deprecated": False,
        "deprecation": None,
        "prices": [
            {
                "location": loc["name"],
                "price_hourly": {"net": "0.0060", "gross": "0.0071"},
                "price_monthly": {"net": "3.4900", "gross": "4.1531"},
                "included_traffic": 21990232555520,
                "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"},
            }
            for loc in LOCATIONS
        ],
        "locations": [
            {"id": loc["id"], "name": loc["name"], "deprecation": None, "available": True, "recommended": True}
            for loc in LOCATIONS
        ],
    }
    for ident, name, description, cores, memory, disk, cpu, arch in _TYPES
]

_IMAGES: list[tuple[int, str, str, str, str, str]] = [
    (114690387, "debian-12", "Debian 12", "debian", "12", "x86"),
    (161547269, "debian-13", "Debian 13", "debian", "13", "x86"),
    (161547270, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04", "x86"),
    (114690389, "debian-12", "Debian 12", "debian", "12", "arm"),
]
IMAGES: list[dict[str, Any]] = [
    {
        "id": ident,
        "type": "system",
        "status": "available",
        "name": name,
        "description": description,
        "image_size": None,
        "disk_size": 5,
        "created": CREATED,
        "created_from": None,
        "bound_to": None,
        "os_flavor": flavor,
        "os_version": version,
        "rapid_deploy": True,
        "protection": {"delete": False},
        "deprecated": None,
        "deprecation": None,
        "labels": {},
        "deleted": None,
        "architecture": arch,
    }
    for ident, name, description, flavor, version, arch in _IMAGES
]

DATACENTERS: list[dict[str, Any]] = [
    {
        "id": loc["id"],
        "name": f"{loc['name']}-dc{index}",
        "description": f"{loc['city']} {index} virtual DC",
        "location": loc,
        "server_types": {
            "supported": [t["id"] for t in SERVER_TYPES],
            "available": [t["id"] for t in SERVER_TYPES],
            "available_for_migration": [t["id"] for t in SERVER_TYPES],
        },
    }
    for loc, index in zip(LOCATIONS, (14, 3, 2), strict=True)
]


def find(items: list[dict[str, Any]], ref: Any, what: str) -> dict[str, Any]:
    """An item by id (int or digit string) or by name; CloudError 422 naming `what` when unknown."""
    for item in items:
        if item["id"] == ref or str(item["id"]) == str(ref) or item["name"] == ref:
            return item
    raise CloudError(
        422, "invalid_input", f"{what} {ref!r} not found", {"fields": [{"name": what, "messages": ["not found"]}]}
    )


class Catalog:
    """`/locations`, `/datacenters`, `/server_types`, `/images` (GET only)."""

    def register(self, router: Router) -> None:
        for key, items in (("locations", LOCATIONS), ("datacenters", DATACENTERS), ("server_types", SERVER_TYPES)):
            router.add("GET", f"/{key}", self._lister(key, items))
            router.add("GET", f"/{key}/{{id:int}}", self._getter(key[:-1], items))
        router.add("GET", "/images", self.list_images)
        router.add("GET", "/images/{id:int}", self._getter("image", IMAGES))

    def reset(self) -> None:
        """Read-only: nothing to forget."""

    def _lister(self, key: str, items: list[dict[str, Any]]) -> Any:
        def handler(request: Request) -> Response:
            name = request.arg("name")
            selected = [i for i in items if name is None or i["name"] == name]
            return paginate(request, key, sort_items(selected, request, ("id", "name")))

        return handler

    def _getter(self, key: str, items: list[dict[str, Any]]) -> Any:
        def handler(request: Request) -> Response:
            for item in items:
                if item["id"] == request.params["id"]:
                    return Response.json(200, {key: item})
            raise not_found(key.replace("_", " "))

        return handler

    def list_images(self, request: Request) -> Response:
        name, arch = request.arg("name"), request.arg("architecture")
        types = request.query.get("type")
        labels = label_filter(request.arg("label_selector"))
        selected = [
            image
            for image in IMAGES
            if (name is None or image["name"] == name)
            and (arch is None or image["architecture"] == arch)
            and (not types or image["type"] in types)
            and labels(image["labels"])
        ]
        return paginate(request, "images", sort_items(selected, request, ("id", "name", "created")))
