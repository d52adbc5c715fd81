"""Snapshots for the reference server: real files under ``storage.snapshots_path``.

QdrantLocal has no snapshots, so this module keeps them itself, laid out as
Qdrant lays them out (spec §4, §10):

* collection snapshots: ``<snapshots>/<collection>/<collection>-<peer>-<YYYY-MM-DD-HH-MM-SS>.snapshot``
* shard snapshots: ``<snapshots>/<collection>/shards/<shard>/<collection>-shard-<shard>-<peer>-<time>.snapshot``
* full snapshots: ``<snapshots>/full-snapshot-<time>.snapshot``

each with a ``<name>.checksum`` file holding its SHA-256, which is also the
``checksum`` field of the description. A snapshot is a tar archive of our own
(``qsc-snapshot.json`` + ``points.jsonl``): the reference server recovers its
own snapshots, not Qdrant's segment files; anything else is refused with 400.

Recovery locations (``PUT .../snapshots/recover``):

* ``file://``: from v1.17.1 the file must lie inside the snapshots directory,
  else 403 ``Forbidden: Snapshot file path must be inside the snapshots
  directory "<dir>"``; a missing file is 400;
* ``http(s)://``: 403 ``Forbidden: Snapshot recovery from remote URLs is
  disabled in the configuration`` when ``service.enable_snapshot_url_recovery``
  is false (v1.18.0+; :func:`url_recovery_refusal` runs before RBAC). When
  enabled, this server fetches **loopback addresses only** (literal 127.0.0.0/8,
  ``::1`` or ``localhost``; no name is ever resolved): it must never reach
  another host. A download that fails is 400 here (Qdrant may answer 500 for a
  refused connection: inferred, not pinned down in the spec).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import re
import tarfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .data_admin import SINGLE_NODE_PEER_ID
from .data_errors import BadRequest, Forbidden, NotFound
from .versioning import Emulation

if TYPE_CHECKING:
    from .data_plane import DataPlane
    from .fault_policy import FaultPolicy
    from .settings import Settings

SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
META = "qsc-snapshot.json"
POINTS = "points.jsonl"
FORMAT = "qsc-reference-snapshot/1"
DOWNLOAD_TIMEOUT_S = 10.0
MSG_URL_DISABLED = "Forbidden: Snapshot recovery from remote URLs is disabled in the configuration"
_NAME = re.compile(r"^[^/\\\x00]+$")


@dataclass(frozen=True)
class Description:
    """Qdrant's ``SnapshotDescription``: name, creation time, size in bytes, SHA-256."""

    name: str
    creation_time: str
    size: int
    checksum: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "creation_time": self.creation_time, "size": self.size,
                "checksum": self.checksum}


def _stamp() -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())


def checked_name(name: str) -> str:
    """A snapshot name that is a plain file name (path parameters arrive percent-decoded)."""
    if not _NAME.match(name) or name in (".", "..") or name.startswith("."):
        raise BadRequest(f"Wrong input: Invalid snapshot name `{name}`")
    return name


def url_recovery_refusal(settings: Settings, location: object, faults: FaultPolicy) -> str | None:
    """Qdrant's 403 message for a remote location when URL recovery is off (v1.18.0+), else ``None``."""
    if not isinstance(location, str) or settings.service.enable_snapshot_url_recovery:
        return None
    if faults.active("snapshot-url-recovery-ignores-switch"):  # fault seam
        return None
    if not Emulation.of(settings.version).at_least("1.18.0"):
        return None
    return MSG_URL_DISABLED if urlsplit(location).scheme.lower() in ("http", "https") else None


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_loopback(url: str, *, api_key: str | None = None, method: str = "GET", body: bytes | None = None
                   ) -> bytes:
    """GET (or POST) ``url`` if, and only if, it names a loopback address; 400 on any failure."""
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        # Qdrant's download_snapshot: an unknown scheme is a bad request, before any I/O.
        raise BadRequest(f"Bad request: URL {url} with scheme {parts.scheme} is not supported")
    if not _loopback(parts.hostname):
        raise BadRequest("Wrong input: the reference server downloads snapshots from loopback addresses only")
    headers = {"api-key": api_key} if api_key else {}
    if body is not None:
        headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - loopback only
    # No proxy: a proxy would be another host.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=DOWNLOAD_TIMEOUT_S) as answer:
            data: bytes = answer.read()
            return data
    except urllib.error.HTTPError as exc:
        raise BadRequest(f"Wrong input: Failed to download snapshot from {url}: status - {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BadRequest(f"Wrong input: Failed to download snapshot from {url}: {reason}") from None


def multipart_snapshot(body: bytes, content_type: str | None) -> bytes:
    """The ``snapshot`` field of a multipart upload, as Qdrant's upload handlers read it."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("Wrong input: Expected a multipart/form-data upload with a `snapshot` field")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1")
                                                  + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BadRequest("Wrong input: Malformed multipart upload")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "snapshot":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    raise BadRequest("Wrong input: The upload has no `snapshot` field")


class SnapshotStore:
    """Collection, shard and full snapshots of one data plane."""

    def __init__(self, data: DataPlane, settings: Settings, faults: FaultPolicy) -> None:
        self.data = data
        self.settings = settings
        self.faults = faults
        self.root = Path(settings.snapshots_path)
        self.emulation = Emulation.of(settings.version)
        self._write_lock = threading.Lock()

    # -- directories --------------------------------------------------------------------

    def _collection_dir(self, collection: str) -> Path:
        return self.root / checked_name(collection)

    def _shard_dir(self, collection: str, shard: int) -> Path:
        return self._collection_dir(collection) / "shards" / str(shard)

    def _existing(self, collection: str) -> None:
        self.data.get_collection(collection)  # NotFound first, as Qdrant

    # -- listing, reading, deleting ------------------------------------------------------

    @staticmethod
    def _describe(path: Path) -> Description:
        stat = path.stat()
        sums = path.with_name(path.name + CHECKSUM_SUFFIX)
        checksum = sums.read_text().strip() if sums.is_file() else _sha256(path)
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stat.st_mtime))
        return Description(path.name, created, stat.st_size, checksum)

    def _list(self, directory: Path) -> list[Description]:
        if not directory.is_dir():
            return []
        files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(SUFFIX))
        return [self._describe(p) for p in files]

    def _file(self, directory: Path, name: str) -> Path:
        path = directory / checked_name(name)
        if not path.is_file():
            raise NotFound(f"Not found: Snapshot {name} not found")
        return path

    def _delete(self, directory: Path, name: str) -> bool:
        path = self._file(directory, name)
        path.unlink()
        path.with_name(path.name + CHECKSUM_SUFFIX).unlink(missing_ok=True)
        return True

    def list_collection(self, collection: str) -> list[Description]:
        self._existing(collection)
        return self._list(self._collection_dir(collection))

    def collection_file(self, collection: str, name: str) -> Path:
        self._existing(collection)
        return self._file(self._collection_dir(collection), name)

    def delete_collection_snapshot(self, collection: str, name: str) -> bool:
        self._existing(collection)
        return self._delete(self._collection_dir(collection), name)

    def list_shard(self, collection: str, shard: int | str) -> list[Description]:
        number = self.data.check_shard(collection, shard)
        return self._list(self._shard_dir(collection, number))

    def shard_file(self, collection: str, shard: int | str, name: str) -> Path:
        number = self.data.check_shard(collection, shard)
        return self._file(self._shard_dir(collection, number), name)

    def delete_shard_snapshot(self, collection: str, shard: int | str, name: str) -> bool:
        number = self.data.check_shard(collection, shard)
        return self._delete(self._shard_dir(collection, number), name)

    def list_full(self) -> list[Description]:
        return self._list(self.root)

    def full_file(self, name: str) -> Path:
        return self._file(self.root, name)

    def delete_full(self, name: str) -> bool:
        return self._delete(self.root, name)

    # -- creating ------------------------------------------------------------------------

    def archive(self, collection: str) -> bytes:
        """One collection as a snapshot archive (config, sharding, indexes, every point)."""
        info, records, sharding = self.data.export(collection)
        params = info.config.params
        meta = {
            "format": FORMAT,
            "collection": collection,
            "vectors": _dump(params.vectors),
            "sparse_vectors": _dump(params.sparse_vectors),
            "sharding": sharding,
            "indexes": {k: v.data_type.value for k, v in (info.payload_schema or {}).items()},
        }
        lines = [json.dumps(_dump(p), separators=(",", ":")) for p in records]
        return _tar({META: json.dumps(meta).encode(), POINTS: "\n".join(lines).encode()})

    def _write(self, directory: Path, name: str, content: bytes) -> Description:
        with self._write_lock:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(content)
            partial.replace(path)
            path.with_name(path.name + CHECKSUM_SUFFIX).write_text(hashlib.sha256(content).hexdigest())
            return self._describe(path)

    def create_collection_snapshot(self, collection: str) -> Description:
        content = self.archive(collection)
        name = f"{collection}-{SINGLE_NODE_PEER_ID}-{_stamp()}{SUFFIX}"
        return self._write(self._collection_dir(collection), name, content)

    def create_shard_snapshot(self, collection: str, shard: int | str) -> Description:
        number = self.data.check_shard(collection, shard)
        content = self.archive(collection)
        name = f"{collection}-shard-{number}-{SINGLE_NODE_PEER_ID}-{_stamp()}{SUFFIX}"
        return self._write(self._shard_dir(collection, number), name, content)

    def stream_shard(self, collection: str, shard: int | str) -> bytes:
        """``GET .../shards/{id}/snapshot``: a fresh snapshot, streamed and not kept."""
        self.data.check_shard(collection, shard)
        return self.archive(collection)

    def create_full(self) -> Description:
        names = [c.name for c in self.data.list_collections().collections]
        members = {f"collections/{n}{SUFFIX}": self.archive(n) for n in names}
        aliases = self.data.list_aliases()
        members["aliases.json"] = json.dumps({a.alias_name: a.collection_name for a in aliases.aliases}).encode()
        return self._write(self.root, f"full-snapshot-{_stamp()}{SUFFIX}", _tar(members))

    # -- recovering ----------------------------------------------------------------------

    def read_location(self, location: str, api_key: str | None = None) -> bytes:
        """The snapshot bytes at ``location`` (``file://`` or a loopback ``http(s)://`` URL)."""
        refusal = url_recovery_refusal(self.settings, location, self.faults)
        if refusal is not None:
            raise Forbidden(refusal)
        parts = urlsplit(location)
        if parts.scheme.lower() != "file":
            return fetch_loopback(location, api_key=api_key)
        path = Path(unquote(parts.path))
        resolved = path.resolve()
        root = self.root.resolve()
        inside = resolved.is_relative_to(root) or self.faults.active("snapshot-file-path-unchecked")  # fault seam
        if self.emulation.at_least("1.17.1") and not inside:
            raise Forbidden(f'Forbidden: Snapshot file path must be inside the snapshots directory "{root}"')
        if not resolved.is_file():
            raise BadRequest(f"Wrong input: Snapshot file {path} does not exist")
        return resolved.read_bytes()

    def recover(self, collection: str, content: bytes, checksum: str | None = None) -> bool:
        """Replace ``collection`` (created if missing) with the snapshot in ``content``."""
        if checksum is not None and hashlib.sha256(content).hexdigest() != checksum.lower():
            raise BadRequest("Wrong input: Snapshot checksum mismatch")
        meta, points = _unpack(content)
        create = {"vectors": meta.get("vectors"), "sparse_vectors": meta.get("sparse_vectors")}
        self.data.replace(collection, create, points, meta.get("indexes") or {}, meta.get("sharding"))
        return True

    def recover_shard(self, collection: str, shard: int | str, content: bytes, checksum: str | None = None) -> bool:
        self.data.check_shard(collection, shard)
        return self.recover(collection, content, checksum)


def _dump(value: Any) -> Any:
    if value is None:
        return None
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tar(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _unpack(content: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metadata and points of one of our snapshots; 400 for anything else (no detail, as v1.17.1+)."""
    invalid = BadRequest("Wrong input: Invalid snapshot: not a snapshot archive of this server")
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
            meta_file = archive.extractfile(META)
            points_file = archive.extractfile(POINTS)
            if meta_file is None or points_file is None:
                raise invalid
            meta = json.loads(meta_file.read())
            lines = points_file.read().decode("utf-8").splitlines()
    except (tarfile.TarError, KeyError, ValueError, UnicodeDecodeError, EOFError):
        raise invalid from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise invalid
    points: list[dict[str, Any]] = []
    for line in lines:
        if line.strip():
            record = json.loads(line)
            points.append({"id": record["id"], "vector": record.get("vector") or {},
                           "payload": record.get("payload")})
    return meta, points


_STORES: dict[int, SnapshotStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(data: DataPlane, settings: Settings, faults: FaultPolicy) -> SnapshotStore:
    """The one store of ``data`` (REST and gRPC share it)."""
    with _STORES_LOCK:
        found = _STORES.get(id(data))
        if found is None or found.data is not data:
            found = _STORES[id(data)] = SnapshotStore(data, settings, faults)
        return found
