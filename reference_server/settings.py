"""Configuration loading, the way Qdrant does it (spec §1.1-§1.2).

Sources, later ones winning: the compiled-in defaults, ``config/config``,
``config/{RUN_MODE}``, ``config/local`` (each relative to the working directory,
each optional, any of ``.yaml``/``.yml``/``.json``), the file named by
``--config-path`` (optional too: Qdrant only logs a missing one and carries on
with defaults, spec §1.2), then ``QDRANT__SECTION__KEY`` environment variables.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "QDRANT__"
_EXTENSIONS = (".yaml", ".yml", ".json")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the problem."""


@dataclass(frozen=True)
class TlsSettings:
    cert: str
    key: str
    ca_cert: str | None
    cert_ttl: int | None


@dataclass(frozen=True)
class ServiceSettings:
    host: str
    http_port: int
    grpc_port: int | None
    api_key: str | None
    alt_api_key: str | None
    read_only_api_key: str | None
    enable_tls: bool
    verify_https_client_certificate: bool
    enforce_internal_auth: bool
    enable_cors: bool
    max_request_size_mb: int
    # v1.18.0+: false refuses http(s) snapshot recovery with 403 (spec §10).
    enable_snapshot_url_recovery: bool = True
    #: The Web UI at ``/dashboard`` (spec §1.1): served, and whitelisted, only
    #: when enabled (unset means true) and ``static_content_dir`` is a directory.
    enable_static_content: bool = True
    static_content_dir: str = "./static"
    jwt_rbac: bool = False
    #: v1.17.0+: a second listener serving only ``/metrics``, with no authentication (spec §1.1).
    metrics_port: int | None = None


@dataclass(frozen=True)
class ClusterSettings:
    enabled: bool
    p2p_port: int
    p2p_enable_tls: bool


@dataclass(frozen=True)
class AuditSettings:
    """``audit.*`` (spec §1.1, §10; read from v1.17.0)."""

    enabled: bool = False
    dir: str = "./storage/audit"
    rotation: str = "daily"
    max_log_files: int = 7
    trust_forwarded_headers: bool = False
    log_api: bool = True


@dataclass(frozen=True)
class Settings:
    service: ServiceSettings
    cluster: ClusterSettings
    tls: TlsSettings
    version: str
    faults: tuple[str, ...]
    storage_path: str
    snapshots_path: str
    log_level: str
    uri: str | None = None
    bootstrap: str | None = None
    warnings: tuple[str, ...] = field(default=())
    audit: AuditSettings = field(default_factory=AuditSettings)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _defaults() -> dict[str, Any]:
    text = resources.files("reference_server").joinpath("default_config.yaml").read_text()
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path} could not be read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _optional_named(stem: Path) -> Path | None:
    for ext in _EXTENSIONS:
        candidate = stem.with_name(stem.name + ext)
        if candidate.is_file():
            return candidate
    return None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = raw  # typed later, per key: "123" may well be an API key
    return tree


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _as_int(value: Any, key: str, *, optional: bool = False) -> int | None:
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in {"", "null"}):
        if optional:
            return None
        raise ConfigError(f"{key} must be an integer")
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None


def _as_key(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _as_path(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a path string")
    return value


def load_settings(
    config_path: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    uri: str | None = None,
    bootstrap: str | None = None,
    extra_faults: tuple[str, ...] = (),
) -> Settings:
    """Build :class:`Settings` from Qdrant's sources, in Qdrant's order."""
    env = dict(os.environ if environ is None else environ)
    base = Path.cwd() if cwd is None else cwd
    tree = _defaults()
    warnings: list[str] = []
    run_mode = env.get("RUN_MODE", "development")
    for stem in ("config", run_mode, "local"):
        found = _optional_named(base / "config" / stem)
        if found is not None:
            _merge(tree, _read_file(found))
    if config_path is not None:
        path = Path(config_path)
        if not path.is_absolute():
            path = base / path
        if path.exists():
            loaded = _read_file(path)
            if _names_fault(loaded, env, extra_faults, "config-path-ignored"):  # fault seam: silently dropped
                loaded = {"reference_server": loaded.get("reference_server") or {}}
            _merge(tree, loaded)
        else:
            # Qdrant does not stop here (spec §1.2): it logs and runs with defaults.
            warnings.append(f"Config file via --config-path is not found: {config_path}")
    _merge(tree, _env_overrides(env))
    return _typed(tree, warnings, uri=uri, bootstrap=bootstrap, extra_faults=extra_faults)


def _names_fault(loaded: dict[str, Any], env: dict[str, str], extra: tuple[str, ...], name: str) -> bool:
    """Whether a fault is switched on by the file itself, the environment or the command line."""
    own = loaded.get("reference_server") or {}
    listed = own.get("faults") if isinstance(own, dict) else None
    named = [str(f) for f in listed] if isinstance(listed, list) else str(listed or "").replace(",", " ").split()
    named += env.get("QDRANT__REFERENCE_SERVER__FAULTS", "").replace(",", " ").split() + list(extra)
    return name in named


def _typed(
    tree: dict[str, Any],
    warnings: list[str],
    *,
    uri: str | None,
    bootstrap: str | None,
    extra_faults: tuple[str, ...],
) -> Settings:
    svc = tree.get("service") or {}
    tls = tree.get("tls") or {}
    cluster = tree.get("cluster") or {}
    p2p = cluster.get("p2p") or {}
    own = tree.get("reference_server") or {}
    storage = tree.get("storage") or {}

    faults_raw = own.get("faults") or []
    if isinstance(faults_raw, str):
        faults_raw = [f for f in faults_raw.replace(",", " ").split() if f]
    faults = tuple(str(f) for f in faults_raw) + tuple(extra_faults)

    cert_ttl = _as_int(tls.get("cert_ttl"), "tls.cert_ttl", optional=True)
    if cert_ttl == 0:
        cert_ttl = None  # 0 switches reload off in Qdrant (spec §1.1)

    service = ServiceSettings(
        host=str(svc.get("host", "0.0.0.0")),
        http_port=_as_int(svc.get("http_port", 6333), "service.http_port") or 0,
        grpc_port=_as_int(svc.get("grpc_port"), "service.grpc_port", optional=True),
        api_key=_as_key(svc.get("api_key")),
        alt_api_key=_as_key(svc.get("alt_api_key")),
        read_only_api_key=_as_key(svc.get("read_only_api_key")),
        enable_tls=_as_bool(svc.get("enable_tls", False), "service.enable_tls"),
        verify_https_client_certificate=_as_bool(
            svc.get("verify_https_client_certificate", False), "service.verify_https_client_certificate"
        ),
        enforce_internal_auth=_as_bool(svc.get("enforce_internal_auth", False), "service.enforce_internal_auth"),
        enable_cors=_as_bool(svc.get("enable_cors", True), "service.enable_cors"),
        max_request_size_mb=_as_int(svc.get("max_request_size_mb", 32), "service.max_request_size_mb") or 32,
        enable_snapshot_url_recovery=_as_bool(svc.get("enable_snapshot_url_recovery", True),
                                              "service.enable_snapshot_url_recovery"),
        enable_static_content=_as_bool(
            True if svc.get("enable_static_content") is None else svc["enable_static_content"],
            "service.enable_static_content",
        ),
        static_content_dir=_as_path(svc.get("static_content_dir"), "service.static_content_dir") or "./static",
        jwt_rbac=_as_bool(svc.get("jwt_rbac") or False, "service.jwt_rbac"),
        metrics_port=_as_int(svc.get("metrics_port"), "service.metrics_port", optional=True),
    )
    return Settings(
        service=service,
        cluster=ClusterSettings(
            enabled=_as_bool(cluster.get("enabled", False), "cluster.enabled"),
            p2p_port=_as_int(p2p.get("port", 6335), "cluster.p2p.port") or 6335,
            p2p_enable_tls=_as_bool(p2p.get("enable_tls", False), "cluster.p2p.enable_tls"),
        ),
        tls=TlsSettings(
            cert=_as_path(tls.get("cert", "./tls/cert.pem"), "tls.cert") or "./tls/cert.pem",
            key=_as_path(tls.get("key", "./tls/key.pem"), "tls.key") or "./tls/key.pem",
            ca_cert=_as_path(tls.get("ca_cert"), "tls.ca_cert"),
            cert_ttl=cert_ttl,
        ),
        version=str(own.get("version", "1.19.0")),
        faults=faults,
        storage_path=str(storage.get("storage_path", "./storage")),
        snapshots_path=str(storage.get("snapshots_path", "./snapshots")),
        log_level=str(tree.get("log_level", "INFO")),
        uri=uri,
        bootstrap=bootstrap,
        warnings=tuple(warnings),
        audit=_audit(tree.get("audit") or {}),
        raw=tree,
    )


def _audit(section: Any) -> AuditSettings:
    if not isinstance(section, dict):
        raise ConfigError("audit must be a mapping")
    rotation = str(section.get("rotation", "daily")).lower()
    if rotation not in ("daily", "hourly"):
        raise ConfigError(f"audit.rotation must be daily or hourly, got {rotation!r}")
    return AuditSettings(
        enabled=_as_bool(section.get("enabled", False), "audit.enabled"),
        dir=_as_path(section.get("dir"), "audit.dir") or "./storage/audit",
        rotation=rotation,
        max_log_files=max(1, _as_int(section.get("max_log_files", 7), "audit.max_log_files") or 1),
        trust_forwarded_headers=_as_bool(section.get("trust_forwarded_headers", False),
                                         "audit.trust_forwarded_headers"),
        log_api=_as_bool(section.get("log_api", True), "audit.log_api"),
    )
