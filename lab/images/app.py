"""An Image Factory like factory.talos.dev, and the CDN it redirects downloads to.

Factory (image-factory docs/api.md): `POST /schematics`, `GET /schematics/{id}`, `GET /versions`,
`GET|HEAD /image/{schematic}/{version}/{platform}-{arch}.raw.{zst|xz}` — a GET answers 302 to the CDN,
a HEAD is served directly — and the `.sha256`/`.sha512` checksum suffixes (an Enterprise feature,
switchable; without it they answer 402). Errors are plain text with a trailing newline.
CDN: `GET|HEAD /{key}/{filename}`, streamed at the lab's bandwidth, with single `Range: bytes=N-`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

from lab.delays import Delays
from lab.faults import Fault, Faults
from lab.httpserver import DropConnection, Request, Response, Router
from lab.images.raw import DEFAULT_SCHEMATIC, TalosImage
from lab.images.schematics import SchematicError, canonical_schematic, schematic_id
from lab.images.store import Artifact, ArtifactStore

_ASSET = re.compile(
    r"^(?P<platform>[a-z0-9]+)-(?P<arch>amd64|arm64)(?P<fmt>\.raw\.zst|\.raw\.xz)(?P<sum>\.sha256|\.sha512)?$"
)
_PLATFORMS = ("metal", "hcloud")
_SEND_CHUNK = 64 << 10


class ImageFactory:
    """The factory app: schematics, versions, image redirects and checksums."""

    def __init__(
        self, store: ArtifactStore, versions: tuple[str, ...], faults: Faults, *, checksums: bool = True
    ) -> None:
        self.store, self.versions, self.faults, self.checksums = store, versions, faults, checksums
        self.cdn_url = ""
        """Base URL of the CDN; set once the CDN listens."""
        self._schematics = {DEFAULT_SCHEMATIC: "customization: {}\n"}
        self._lock = threading.Lock()
        self.router = Router()
        self.router.add("POST", "/schematics", self.create_schematic)
        self.router.add("GET", "/schematics/{id}", self.get_schematic)
        self.router.add("GET", "/versions", self.list_versions)
        self.router.add("GET", "/image/{schematic}/{version}/{asset}", self.get_image)

    def reset(self) -> None:
        """Forget uploaded schematics."""
        with self._lock:
            self._schematics = {DEFAULT_SCHEMATIC: "customization: {}\n"}

    def __call__(self, request: Request) -> Response:
        if self.faults.take(Fault.IMAGES_SERVER_ERROR, request.path):
            return Response.text(500, "internal server error\n")
        resolved = self.router.resolve(request.method, request.path)
        if isinstance(resolved, int):
            return Response.text(resolved, "not found\n" if resolved == 404 else "method not allowed\n")
        handler, request.params = resolved
        return handler(request)

    def create_schematic(self, request: Request) -> Response:
        try:
            canonical = canonical_schematic(request.body)
        except SchematicError as err:
            return Response.text(400, f"{err}\n")
        ident = schematic_id(canonical)
        with self._lock:
            self._schematics[ident] = canonical
        return Response.json(201, {"id": ident, "schematic": canonical})

    def get_schematic(self, request: Request) -> Response:
        canonical = self._schematics.get(request.params["id"])
        if canonical is None:
            return Response.text(404, "schematic not found\n")
        return Response(200, canonical.encode(), {"Content-Type": "application/yaml"})

    def list_versions(self, request: Request) -> Response:
        return Response.json(200, list(self.versions))

    def get_image(self, request: Request) -> Response:
        schematic, version = request.params["schematic"], request.params["version"]
        if schematic not in self._schematics:
            return Response.text(404, "schematic not found\n")
        if version not in self.versions:
            return Response.text(404, f"version {version} not found\n")
        match = _ASSET.match(request.params["asset"])
        if not match or match["platform"] not in _PLATFORMS:
            return Response.text(404, f"asset {request.params['asset']} is not served by the lab factory\n")
        image = TalosImage(version, schematic, match["platform"], match["arch"])
        artifact = self.store.get(image, match["fmt"])
        if match["sum"]:
            return self._checksum(artifact, match["sum"])
        if request.method == "HEAD":
            return Response(200, b"", _download_headers(artifact), length=artifact.size)
        return Response.empty(302, {"Location": f"{self.cdn_url}/{artifact.key}/{artifact.filename}"})

    def _checksum(self, artifact: Artifact, suffix: str) -> Response:
        if not self.checksums:
            return Response.text(402, "checksums are an Enterprise feature\n")
        digest = artifact.sha256 if suffix == ".sha256" else artifact.sha512
        name = artifact.filename + suffix
        return Response.text(
            200, f"{digest}  {artifact.filename}\n", {"Content-Disposition": f'attachment; filename="{name}"'}
        )


class Cdn:
    """Serves artifacts the factory redirected to, throttled to the lab's bandwidth."""

    def __init__(self, store: ArtifactStore, delays: Delays, faults: Faults) -> None:
        self.store, self.delays, self.faults = store, delays, faults
        self.router = Router()
        self.router.add("GET", "/{key}/{filename}", self.get)

    def __call__(self, request: Request) -> Response:
        resolved = self.router.resolve(request.method, request.path)
        if isinstance(resolved, int):
            return Response.text(resolved, "not found\n")
        handler, request.params = resolved
        return handler(request)

    def get(self, request: Request) -> Response:
        artifact = self.store.by_key(request.params["key"])
        if artifact is None or artifact.filename != request.params["filename"]:
            return Response.text(404, "not found\n")
        headers = _download_headers(artifact)
        start = _range_start(request.headers.get("Range"))
        if start is None:
            status = 200
            start = 0
        elif start >= artifact.size:
            return Response.text(416, "range not satisfiable\n", {"Content-Range": f"bytes */{artifact.size}"})
        else:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{artifact.size - 1}/{artifact.size}"
        length = artifact.size - start
        if request.method == "HEAD":
            return Response(status, b"", headers, length=length)
        cut = self.faults.take(Fault.IMAGES_TRUNCATE, request.path)
        stop = start + int(length * float(cut.params.get("fraction", 0.5))) if cut else artifact.size
        return Response(status, self._stream(artifact, start, stop, cut is not None), headers, length=length)

    def _stream(self, artifact: Artifact, start: int, stop: int, truncated: bool) -> Iterator[bytes]:
        began, sent = time.monotonic(), 0
        with open(artifact.path, "rb") as f:
            f.seek(start)
            position = start
            while position < stop:
                chunk = f.read(min(_SEND_CHUNK, stop - position))
                if not chunk:
                    break
                yield chunk
                position += len(chunk)
                sent += len(chunk)
                ahead = sent / self.delays.bandwidth - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        if truncated:
            raise DropConnection()


def _download_headers(artifact: Artifact) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{artifact.filename}"',
        "Accept-Ranges": "bytes",
    }


def _range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else None
