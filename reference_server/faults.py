"""The fault catalog: security mistakes the reference server can be told to make.

Each :class:`Fault` is one realistic misconfiguration or bug a Qdrant-compatible
server could ship with, and names the requirements (``fixtures/catalog/requirements``)
it violates. The self-test ``tests/test_fault_kill.py`` switches each fault on
alone and checks that the conformance suite fails on one of those requirements
and on nothing else ("kill score").

This module is data only: it imports nothing of the server, and the server's
behaviour under a fault lives at the seam it changes (``tls_faults.py`` for the
TLS contexts, ``cluster/`` for p2p, a branch in ``auth.py``, ``rest/``, ...).
Over 400 lines: the catalog's rows, each with the reason for its declarations,
are the bulk of it, and they read best as one table.

Switching faults on: ``--fault NAME`` (repeatable), ``reference_server.faults:
[...]`` in the config, or ``QDRANT__REFERENCE_SERVER__FAULTS=a,b``. The server
builds one :class:`reference_server.fault_policy.FaultPolicy` at start-up from
``settings.faults`` (an unknown name is a start-up error, :func:`validate`) and
passes it to each seam, which asks it::

    if self.faults.active("grpc-no-auth"):  # fault seam
        ...

A fault with a ``certificate`` is a deployment mistake rather than server code:
the harness configures the ``tls`` profile with that leaf of the run PKI
(``fixtures.pki.RunPKI`` attribute) as ``tls.cert``/``tls.key``, and the
server serves it as Qdrant would. Where Qdrant's TLS stack would refuse such a
key at start-up (RSA below 2048 bits, spec §1.5), the fault also has a seam in
``tls.py`` that lets the reference server load it, as a server on another stack would.

``requirements`` are the requirements whose text the faulty behaviour breaks.
``collateral`` are requirements the fault does not break by their text but
whose tests legitimately cannot hold with it: their positive or negative twin
(the check that makes a refusal meaningful) is what the fault breaks. The kill
test tolerates failures there and counts only ``requirements`` as a kill.

Where a fault acts (its *layers*): each fault names the seams of the server
(or, for a ``certificate`` fault, of the deployment) it changes
(:data:`LAYERS`), and each layer names the suite tests that can reach that
seam. The kill test runs every selection of every layer of a fault, not only
the tests of its declared requirements, so a fault that breaks something it
does not declare shows up. A layer reaches a test when the test sends traffic
through the seam and judges the answer, with two documented shortcuts, each
resting on a test the layer does run that makes the same call:

- the TLS files (``test_tls_*``, ``test_mtls``) reach the REST and gRPC API
  only through the manage key on ``GET /`` and ``HealthCheck``; the
  authorization sweep makes exactly those calls with every credential class;
- the cluster tests other than the node-API ones (:data:`_CLUSTER_NODE_API`)
  reach a node's API only through ``GET /cluster`` with the manage key on
  every node, which ``test_cluster_forms_over_tls`` makes first.

So an API or TLS fault that could change those tests changes one the layer
runs. The sweep's rows are split by protocol: REST rows go through
``reference_server/rest/`` only, gRPC rows through ``grpc_api/`` only.
Adding a seam means adding a layer here and a line in docs/DESIGN.md;
``tests/test_fault_kill.py`` checks that a fault's layers reach every
requirement it declares and that every suite file is reached by some layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FAMILIES = ("AUTH", "AUTHZ", "TLS", "MTLS", "ROT", "CLUSTER", "HYG", "JWT", "ADV", "HARD")


@dataclass(frozen=True)
class Layer:
    """A seam of the reference server (or the deployment) and the suite tests that can reach it.

    ``suites`` holds selections: a suite file (all of it), ``file::test_name``
    for the tests of a file that reach the seam while the rest of the file
    cannot, or ``file::test_name[pattern]`` (shell-style, on the parameter id)
    for some parametrizations of a test. The reason is written next to each.
    """

    seam: str
    suites: tuple[str, ...]


#: Every suite file (empty where the package runs without the repository's suites/).
_ALL_SUITES = tuple(sorted(f"suites/{p.name}"
                           for p in (Path(__file__).resolve().parents[1] / "suites").glob("test_*.py")))
_CLUSTER = "suites/test_cluster_p2p.py"
#: The cluster tests that talk to the nodes' public REST/gRPC API (over TLS, with or without the manage key).
_CLUSTER_NODE_API = tuple(f"{_CLUSTER}::{name}" for name in (
    "test_cluster_forms_over_tls", "test_cluster_endpoint_reports_peers",
    "test_every_node_rest_refuses_keyless_requests", "test_every_node_grpc_refuses_keyless_calls"))
_SWEEP = "suites/test_authz_sweep.py"
#: The sweep's rows of one protocol: REST rows go through rest/ only, gRPC rows through grpc_api/ only.
SWEEP_REST = f"{_SWEEP}::test_authz[*-rest-*]"
SWEEP_GRPC = f"{_SWEEP}::test_authz[*-grpc-*]"
_JWT = ("suites/test_jwt_tokens.py", "suites/test_jwt_scope.py", "suites/test_jwt_sweep.py", "suites/test_jwt_audit.py")
#: API-key and JWT requests of every profile pass the same credential reading and REST/gRPC gates.
_API_COMMON = ("suites/test_auth_api_key.py", "suites/test_authz_special.py", "suites/test_hygiene_extra.py",
               "suites/test_web_ui.py", "suites/test_adv_snapshots.py", "suites/test_hard_config.py",
               "suites/test_hard_discovery.py", *_JWT, *_CLUSTER_NODE_API)
_TLS_SUITES = ("suites/test_tls_enforcement.py", "suites/test_tls_certificate.py", "suites/test_tls_posture.py",
               "suites/test_mtls.py", "suites/test_tls_rotation.py", "suites/test_tls_startup.py",
               # AUTH-ANY-001 and AUTHZ-REST-018 compare keys over TLS with keys over plaintext
               "suites/test_auth_api_key.py", "suites/test_authz_special.py",
               # cluster nodes serve REST and gRPC over TLS, and the harness confirms the run's cluster through
               # it: every cluster test needs it (the reach kill run showed it)
               _CLUSTER)

#: Where faults act -> which suite tests can see it. Reviewed by hand; see the module docstring.
LAYERS: dict[str, Layer] = {
    "credentials": Layer("reference_server/auth.py: how a presented key or token is read and compared, shared "
                         "by REST, gRPC and the p2p internal-auth check of every node",
                         (*_API_COMMON, _SWEEP, *(f"{_CLUSTER}::{name}" for name in (
                             "test_p2p_port_requires_an_api_key",
                             "test_enforce_internal_auth_refuses_keyless_p2p_calls",
                             "test_enforce_internal_auth_keeps_health_open")))),
    "rest-api": Layer("reference_server/rest/ (gate.py, app.py, web_ui.py): REST whitelist, access decisions, "
                      "refusal status/body/headers, CORS, routing, the Web UI, access log",
                      (*_API_COMMON, SWEEP_REST)),
    "grpc-api": Layer("reference_server/grpc_api/ (policy.py, server.py): gRPC whitelist, access decisions, "
                      "refusal codes and metadata", (*_API_COMMON, SWEEP_GRPC)),
    "jwt": Layer("reference_server/jwt_auth.py, rbac.py and the JWT branches of auth.py and grpc_api/policy.py: "
                 "only servers with service.jwt_rbac (profile jwt)", _JWT),
    "rest-tls": Layer("reference_server/tls.py server context and the REST listener: protocols, cipher suites, "
                      "groups, certificate, client-certificate verification, what the TLS port accepts",
                      _TLS_SUITES),
    "grpc-tls": Layer("reference_server/tls.py gRPC context (new_grpc_context) and the gRPC listener: protocols, "
                      "cipher suites, groups, certificate, client certificates, what the TLS port accepts",
                      _TLS_SUITES),
    "deployment-certificate": Layer("the certificate the harness configures as tls.cert/tls.key of the tls "
                                    "profile (Fault.certificate): every server and test that uses that profile",
                                    _TLS_SUITES),
    "rotation": Layer("reference_server/tls.py reload on tls.cert_ttl (only servers with a TTL: profile rotation)",
                      ("suites/test_tls_rotation.py",)),
    "startup": Layer("reference_server/server.py start-up: loading and validating the TLS files",
                     ("suites/test_tls_startup.py", "suites/test_tls_enforcement.py", _CLUSTER)),
    "p2p": Layer("reference_server/cluster/: the p2p port, its TLS and internal auth, joining peers", (_CLUSTER,)),
    "cluster-mode": Layer("reference_server/server.py switches that apply only in cluster mode", (_CLUSTER,)),
    # a configuration the server misreads changes every profile: the whole suite
    "server-config": Layer("reference_server/settings.py and server.py: reading the configuration, start-up "
                           "switches, extra listeners", _ALL_SUITES),
    "container": Layer("the container's launch options (docker launcher)", ("suites/test_hard_container.py",)),
}


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    requirements: tuple[str, ...]
    family: str
    collateral: tuple[str, ...] = ()
    certificate: str | None = None  # RunPKI leaf the harness configures as the deployment's certificate
    #: Keys of :data:`LAYERS`: the seams this fault changes.
    layers: tuple[str, ...] = ()
    #: The fault takes the server's whole configuration away (keys, TLS, every switch), so every requirement
    #: may fail with it: only the declared ones are judged, and its kill run is their tests in every scope.
    unbounded: bool = False

    @property
    def declared(self) -> tuple[str, ...]:
        """Every requirement a run with this fault may fail on."""
        return self.requirements + self.collateral

    @property
    def selection(self) -> tuple[str, ...]:
        """What this fault's kill run executes: the union of its layers' selections (a whole file wins)."""
        chosen = {sel for layer in self.layers for sel in LAYERS[layer].suites}
        files = {sel for sel in chosen if "::" not in sel}
        return tuple(sorted(sel for sel in chosen if "::" not in sel or sel.split("::", 1)[0] not in files))

    @property
    def suite_files(self) -> tuple[str, ...]:
        """The suite files of :attr:`selection`."""
        return tuple(sorted({sel.split("::", 1)[0] for sel in self.selection}))


class UnknownFault(ValueError):
    """A fault name that is not in :data:`CATALOG`; ``str()`` is one line."""


def _f(name: str, description: str, family: str, requirements: Iterable[str],
       collateral: Iterable[str] = (), certificate: str | None = None, *, layers: Iterable[str] = (),
       unbounded: bool = False) -> Fault:
    return Fault(name, description, tuple(requirements), family, tuple(collateral), certificate, tuple(layers),
                 unbounded)


#: Requirements whose tests first reach the ``tls`` profile with a verifying client (their positive twin).
_BAD_CERT_TWINS = ("TLS-REST-001", "TLS-REST-002", "TLS-GRPC-001", "TLS-REST-006", "TLS-GRPC-005",
                   "TLS-ANY-003", "TLS-ANY-004", "TLS-ANY-005",
                   # "the key is accepted over TLS" is the twin of "not in the clear" (seen by the layered
                   # kill run with tls-cert-wrong-host: the verifying client refuses the certificate)
                   "AUTH-ANY-001", "AUTHZ-REST-018")
#: The Mozilla-profile SHOULDs: sslyze cannot evaluate a deployment through a certificate that fails path
#: validation ("Certificate path validation failed", seen by the layered kill run with tls-cert-wrong-host),
#: so they warn for any certificate the deployment's CA does not validate, whatever its TLS configuration.
_BAD_CERT_SCANNER = ("TLS-REST-008", "TLS-GRPC-007")

CATALOG: tuple[Fault, ...] = (
    # -- AUTH: credentials and how they are read ------------------------------------------
    _f("grpc-no-auth", "the public gRPC port skips API-key authentication on every method", "AUTH",
       ["AUTH-GRPC-001", "AUTH-GRPC-002", "AUTH-GRPC-003", "AUTH-GRPC-006", "AUTH-GRPC-009", "AUTH-GRPC-010",
        "AUTHZ-GRPC-001", "AUTHZ-GRPC-002", "AUTHZ-GRPC-004", "AUTHZ-GRPC-005", "AUTHZ-GRPC-010",
        "AUTHZ-ANY-002",
        # the same defect on every node of a cluster (seen by the full-suite kill run)
        "CLUSTER-GRPC-001",
        # "every method" includes the JWT profile's: no token is read, so none is refused (bad signature,
        # alg, expiry, claims, scope, value_exists), gRPC no longer agrees with REST, and the audit log
        # cannot record the token's caller (seen by the layered kill run)
        "JWT-GRPC-001", "JWT-GRPC-002", "JWT-GRPC-003", "JWT-GRPC-004", "JWT-GRPC-005", "JWT-GRPC-006",
        "JWT-GRPC-007", "JWT-GRPC-008", "JWT-GRPC-009", "JWT-GRPC-010", "JWT-GRPC-011", "JWT-GRPC-020",
        "JWT-GRPC-023", "JWT-GRPC-024", "JWT-GRPC-026", "JWT-GRPC-030", "JWT-GRPC-031", "JWT-GRPC-040",
        "JWT-ANY-001"],
       # their twin "a protected method is refused without a key" no longer holds; JWT-GRPC-012's negative
       # twin (a read token refused a manage call) and the refused-call audit checks (JWT-GRPC-041/042 need
       # a refusal to look for in the log) cannot hold either
       collateral=["AUTH-GRPC-007", "AUTH-GRPC-008", "JWT-GRPC-012", "JWT-GRPC-041", "JWT-GRPC-042"],
       layers=["grpc-api"]),
    _f("key-length-compare", "a presented key is accepted as the manage key when it is as long as the configured "
       "manage key (a length check left where the comparison should be), the read-only key too when its length "
       "is the same", "AUTH",
       ["AUTH-REST-002", "AUTH-GRPC-002",
        # the suite's read-only key is as long as its manage key, so it gets manage access and may write
        # (seen by the layered kill run)
        "AUTHZ-REST-004", "AUTHZ-REST-005", "AUTHZ-GRPC-004", "AUTHZ-GRPC-005"],
       # its test needs a credential without manage access to be refused an upload: the read-only key has
       # manage access here (seen by the layered kill run)
       collateral=["ADV-REST-001"],
       layers=["credentials"]),
    _f("bearer-case-insensitive", 'the Authorization scheme is matched case-insensitively ("bearer <key>" works)',
       "AUTH", ["AUTH-REST-009"],
       layers=["credentials"]),
    _f("bearer-overrides-api-key", "a valid Bearer token is accepted even when a wrong or empty api-key header "
       "is present", "AUTH", ["AUTH-REST-008", "AUTH-GRPC-006"],
       layers=["credentials"]),
    _f("empty-api-key-accepted", "an empty api-key header is taken as the manage key", "AUTH",
       ["AUTH-REST-008", "AUTH-GRPC-006", "AUTHZ-ANY-002",
        # the empty-key trap's check sends exactly an empty api-key header (seen by the layered kill run)
        "ADV-REST-004"],
       layers=["credentials"]),
    _f("key-in-query", "REST reads the API key from an ?api-key= query parameter when no header carries one",
       "AUTH", ["AUTH-REST-010"],
       layers=["rest-api"]),
    _f("key-echo-rest", "a REST refusal repeats the presented credential in a response header", "AUTH",
       ["AUTH-REST-012", "AUTHZ-ANY-001", "AUTHZ-ANY-002"],
       layers=["rest-api"]),
    _f("key-echo-grpc", "a gRPC refusal repeats the presented credential in its trailing metadata", "AUTH",
       ["AUTH-GRPC-009", "AUTHZ-ANY-001", "AUTHZ-ANY-002",
        # the echoed credential is a JWT on the jwt profile: a token in a response (seen by the layered kill run)
        "JWT-ANY-002"],
       layers=["grpc-api"]),
    _f("unauthenticated-403", "REST answers a missing or unknown credential (an API key or a JWT it cannot "
       "validate) with 403 instead of v1.9.0+'s 401",
       "AUTH", ["AUTH-REST-003", "AUTH-REST-004", "AUTH-REST-008", "AUTH-REST-009", "AUTH-REST-013",
                "AUTHZ-REST-002", "AUTHZ-REST-011", "AUTHZ-REST-017", "AUTHZ-REST-019", "AUTHZ-REST-022",
                # JWT refusals that are 401 in Qdrant: not a JWT, payload claim, duplicate collection,
                # jwt_rbac off, value_exists no-match (seen by the layered kill run)
                "JWT-REST-008", "JWT-REST-009", "JWT-REST-010", "JWT-REST-011", "JWT-REST-031"],
       layers=["rest-api"]),
    _f("wrong-401-body", 'REST 401 refusals carry the body "Unauthorized" instead of Qdrant\'s messages', "AUTH",
       ["AUTH-REST-003", "AUTH-REST-004", "AUTH-REST-009", "AUTHZ-REST-002", "AUTHZ-REST-017",
        # the JWT 401s: not a JWT, jwt_rbac off, value_exists with no match (seen by the layered kill run)
        "JWT-REST-008", "JWT-REST-011", "JWT-REST-031"],
       layers=["rest-api"]),
    _f("health-requires-key", "REST /healthz and /livez demand a credential", "AUTH",
       ["AUTH-REST-011", "AUTHZ-REST-010", "AUTHZ-REST-014",
        # a collection token is refused them too, where Qdrant lets every token through (seen by the layered
        # kill run)
        "JWT-REST-021"],
       layers=["rest-api"]),
    _f("grpc-health-requires-key", "gRPC qdrant.Qdrant/HealthCheck and grpc.health.v1.Health/Check demand a "
       "credential (pre-v1.15.1 behaviour in a v1.19 server)", "AUTH", ["AUTH-GRPC-007", "AUTHZ-GRPC-009"],
       layers=["grpc-api"]),
    # -- AUTHZ: what each principal may reach ---------------------------------------------
    _f("rest-route-unauthenticated", "GET /telemetry is served without any credential", "AUTHZ",
       ["AUTH-REST-001", "AUTHZ-REST-001", "AUTHZ-REST-002"],
       layers=["rest-api"]),
    _f("grpc-method-unauthenticated", "qdrant.Points/Count is served without any credential over gRPC", "AUTHZ",
       ["AUTHZ-GRPC-001", "AUTHZ-GRPC-002",
        # no credential is read, so a token for another collection is not refused either, and gRPC no longer
        # agrees with REST (seen by the layered kill run)
        "JWT-GRPC-020", "JWT-ANY-001"],
       layers=["grpc-api"]),
    _f("ro-write-rest-route", "global read access (the read-only key, and a JWT with global access \"r\", which "
       "Qdrant grants the same access) may delete collections over REST (DELETE /collections/{collection_name})",
       "AUTHZ", ["AUTHZ-REST-004", "AUTHZ-REST-005",
                 # the same hole seen through a global-read token (seen by the layered kill run)
                 "JWT-REST-012", "JWT-REST-020", "JWT-ANY-001"],
       layers=["rest-api"]),
    _f("ro-write-grpc-method", "global read access (the read-only key, and a JWT with global access \"r\") may "
       "call qdrant.Collections/Delete over gRPC", "AUTHZ",
       ["AUTHZ-GRPC-004", "AUTHZ-GRPC-005",
        # the same hole seen through a global-read token (seen by the layered kill run)
        "JWT-GRPC-012", "JWT-GRPC-020", "JWT-ANY-001"],
       layers=["grpc-api"]),
    _f("alt-key-ignored", "the alternate API key (service.alt_api_key) is not accepted", "AUTHZ",
       ["AUTHZ-REST-007", "AUTHZ-GRPC-007"],
       # its positive twin "the alternate key works over TLS" fails; the URL-recovery check calls the
       # switches profile with its only working manage key, the alternate one (seen by the layered kill run)
       collateral=["AUTHZ-REST-018", "ADV-REST-003"],
       layers=["credentials"]),
    _f("ro-refused-for-reads", "global read access (the read-only key, and a JWT with global access \"r\") gets "
       "403/PERMISSION_DENIED on read routes and methods too", "AUTHZ",
       ["AUTHZ-REST-008", "AUTHZ-GRPC-008",
        # the global-read token is refused what Qdrant allows it (seen by the layered kill run)
        "JWT-REST-021", "JWT-GRPC-021"],
       # positive twins that read with the read-only key or a global-read token: over TLS, before the upload
       # and empty-key checks, the token listing and telemetry checks, value_exists tokens with access "r"
       collateral=["AUTHZ-REST-018", "ADV-REST-001", "ADV-REST-004", "JWT-ANY-041", "JWT-REST-024",
                   "JWT-GRPC-024", "JWT-REST-025", "JWT-REST-030", "JWT-GRPC-030", "JWT-REST-031",
                   "JWT-GRPC-031"],
       layers=["rest-api", "grpc-api"]),
    _f("whitelist-raw-prefix", "the REST health whitelist matches the raw path by prefix (pre-v1.18.2), so "
       "/readyzX and /livez/x skip authentication", "AUTHZ", ["AUTHZ-REST-019"],
       layers=["rest-api"]),
    _f("unknown-path-404", "REST paths that match no route are answered 404 without a credential", "AUTHZ",
       ["AUTHZ-REST-011", "AUTHZ-REST-019", "AUTHZ-REST-022"],
       layers=["rest-api"]),
    _f("grpc-unknown-method-unimplemented", "gRPC answers unknown methods UNIMPLEMENTED before authentication",
       "AUTHZ", ["AUTHZ-GRPC-010",
                 # methods the server has no handler for (qdrant.ShardSnapshots) are such unknown methods: a
                 # keyless call gets UNIMPLEMENTED instead of UNAUTHENTICATED (seen by the layered kill run)
                 "AUTHZ-GRPC-002"],
       layers=["grpc-api"]),
    _f("cors-preflight-requires-key", "CORS preflights go through authentication and get 401 without a key",
       "AUTHZ", ["AUTHZ-REST-015"],
       layers=["rest-api"]),
    _f("cors-preflight-runs-handler", "a CORS preflight also runs the handler of the method it asks about, "
       "without a credential, and returns its body", "AUTHZ", ["AUTHZ-REST-016"],
       layers=["rest-api"]),
    _f("dot-segment-bypass", "the whitelist matches the raw path by prefix and routing then resolves dot segments, "
       "so /readyz/%2e%2e/collections serves /collections without a key", "AUTHZ",
       ["AUTHZ-REST-012", "AUTHZ-REST-013", "AUTHZ-REST-019"],
       layers=["rest-api"]),
    _f("dashboard-dot-fallthrough", "with the Web UI present, a path under /dashboard whose dot segments climb "
       "out of it (/dashboard/../collections) is handed to the API after the whitelist let it skip "
       "authentication, so it serves and deletes collections without a key", "AUTHZ",
       ["AUTHZ-REST-012", "AUTHZ-REST-019"],
       layers=["rest-api"]),
    _f("options-skips-auth", "any REST OPTIONS request skips authentication, preflight or not", "AUTHZ",
       ["AUTHZ-REST-017",
        # with CORS off a preflight is an ordinary OPTIONS request, which must reach authentication
        "HARD-REST-003"],
       layers=["rest-api"]),
    _f("ro-legacy-refusal-message", 'the read-only key on a write gets v1.8\'s "Write access denied" instead of '
       '"Forbidden: Global manage access is required"', "AUTHZ", ["AUTHZ-REST-005", "AUTHZ-GRPC-005"],
       layers=["rest-api", "grpc-api"]),
    # -- HYG: what the server lets slip (fixtures/catalog/requirements/extra.yaml) ---------------
    _f("key-logged", "the REST access log records the api-key or Authorization header of each request", "HYG",
       ["HYG-ANY-001"],
       layers=["rest-api"]),
    # -- TLS --------------------------------------------------------------------------------
    _f("tls-wrong-certificate", "the REST port presents a self-signed certificate of its own instead of tls.cert",
       "TLS", ["TLS-REST-004", "TLS-REST-005"],
       # every server with REST TLS does it (tls, mtls, rotation profiles, cluster nodes), so every check whose
       # positive twin is "a verifying client reaches REST over TLS" cannot hold, as for any user (seen by the
       # layered kill run)
       collateral=["AUTH-ANY-001", "AUTHZ-REST-018", "TLS-ANY-001", "TLS-ANY-003", "TLS-ANY-004", "TLS-ANY-005",
                   "TLS-REST-001", "TLS-REST-002", "TLS-REST-003", "TLS-REST-006", "TLS-REST-008",
                   "MTLS-REST-001", "MTLS-REST-002", "MTLS-REST-003", "MTLS-REST-004", "MTLS-REST-005",
                   "ROT-GRPC-001", "ROT-REST-001", "ROT-REST-002", "ROT-REST-003", "ROT-REST-005",
                   "CLUSTER-GRPC-001", "CLUSTER-P2P-001", "CLUSTER-REST-001", "CLUSTER-REST-002",
                   # the run's cluster is confirmed over its nodes' REST TLS (GET /cluster by a verifying client):
                   # it cannot be, so every cluster check errs (seen by the reach kill run)
                   *(f"CLUSTER-P2P-{n:03d}" for n in range(2, 14))],
       layers=["rest-tls"]),
    # The deployment's certificate (Fault.certificate: the harness configures it, the server serves it).
    # Collateral: tests whose positive twin is "a verifying client reaches the tls profile", which a bad
    # certificate breaks, as it would for every user (measured on a full run with tls-cert-wrong-host).
    _f("tls-cert-foreign-ca", "the deployment's certificate was issued by a CA other than the one its users trust",
       "TLS", ["TLS-REST-004", "TLS-GRPC-003"],
       # the certificate-quality SHOULDs judge only a certificate that chains to the deployment's CA (seen by
       # the layered kill run)
       collateral=[*_BAD_CERT_TWINS, *_BAD_CERT_SCANNER, "TLS-REST-005", "TLS-GRPC-004", "TLS-REST-003",
                   "TLS-GRPC-002"],
       certificate="foreign_server",
       layers=["deployment-certificate"]),
    _f("tls-cert-wrong-host", "the deployment's certificate names only wrong.example.invalid, not the host users "
       "connect to", "TLS", ["TLS-REST-004", "TLS-GRPC-003"], collateral=[*_BAD_CERT_TWINS, *_BAD_CERT_SCANNER],
       certificate="wrong_host_server",
       layers=["deployment-certificate"]),
    _f("tls-cert-expired", "the deployment's certificate expired yesterday", "TLS",
       ["TLS-REST-004", "TLS-GRPC-003"], collateral=[*_BAD_CERT_TWINS, *_BAD_CERT_SCANNER],
       certificate="expired_server",
       layers=["deployment-certificate"]),
    _f("tls-cert-expiring-soon", "the deployment's certificate expires in 10 days", "TLS",
       ["TLS-REST-003", "TLS-GRPC-002"], certificate="expiring_soon_server",
       layers=["deployment-certificate"]),
    # OpenSSL clients at their default security level refuse these, so the twins break as above. Mozilla's
    # intermediate profile asks for RSA keys of 2048 bits or more and SHA-256 signatures: its SHOULDs are
    # broken by these certificates' own text (sslyze names rsa_key_size / certificate_signatures).
    _f("tls-cert-rsa-1024", "the deployment's certificate has a 1024-bit RSA key (and the server loads it)",
       "TLS", ["TLS-REST-003", "TLS-GRPC-002", *_BAD_CERT_SCANNER], collateral=_BAD_CERT_TWINS,
       certificate="rsa1024_server",
       layers=["deployment-certificate", "rest-tls"]),
    _f("tls-cert-sha1", "the deployment's certificate is signed with SHA-1 (and the server loads it)", "TLS",
       ["TLS-REST-003", "TLS-GRPC-002", *_BAD_CERT_SCANNER], collateral=_BAD_CERT_TWINS, certificate="sha1_server",
       layers=["deployment-certificate", "rest-tls"]),
    _f("tls-rest-p521-group", "the REST TLS port negotiates key exchange over secp521r1 only, a group "
       "Qdrant (rustls/ring) does not offer", "TLS", ["TLS-ANY-002", "TLS-REST-008"],
       layers=["rest-tls"]),
    _f("tls-grpc-p521-group", "the gRPC TLS port negotiates key exchange over secp521r1 only, a group "
       "Qdrant (rustls/ring) does not offer", "TLS", ["TLS-ANY-002", "TLS-GRPC-007"],
       layers=["grpc-tls"]),
    _f("tls-grpc-legacy-versions", "the gRPC TLS port accepts TLS 1.0 and 1.1 (minimum TLSv1, SECLEVEL=0 ciphers)",
       "TLS", ["TLS-GRPC-005", "TLS-GRPC-007", "TLS-GRPC-008"],
       layers=["grpc-tls"]),
    _f("tls-grpc-anon-cipher", "the gRPC TLS port accepts anonymous (unauthenticated) ECDH/DH suites", "TLS",
       ["TLS-GRPC-006", "TLS-GRPC-007", "TLS-GRPC-008"],
       layers=["grpc-tls"]),
    _f("tls-legacy-versions", "the REST TLS port accepts TLS 1.0 and 1.1 (minimum TLSv1, SECLEVEL=0 ciphers)",
       "TLS", ["TLS-REST-006", "TLS-REST-008", "TLS-REST-009"],
       layers=["rest-tls"]),
    _f("tls-weak-cipher", "the REST TLS port offers CBC (and, with an RSA certificate, static-RSA) TLS 1.2 suites",
       "TLS",
       ["TLS-REST-008", "TLS-REST-009"],
       layers=["rest-tls"]),
    _f("tls-anon-cipher", "the REST TLS port accepts anonymous (unauthenticated) ECDH/DH suites", "TLS",
       ["TLS-REST-007", "TLS-REST-008", "TLS-REST-009"],
       layers=["rest-tls"]),
    _f("tls-plaintext-also", "the TLS REST port also answers plaintext HTTP on the same port", "TLS",
       ["TLS-REST-001", "TLS-REST-002", "AUTH-ANY-001", "AUTHZ-REST-018",
        # also while the certificate files are broken (seen by the layered kill run)
        "ROT-REST-005"],
       layers=["rest-tls"]),
    _f("grpc-plaintext-also", "the TLS gRPC port also answers plaintext (h2c) calls on the same port", "TLS",
       ["TLS-GRPC-001", "AUTH-ANY-001", "AUTHZ-REST-018"],
       layers=["grpc-tls"]),
    _f("tls-missing-cert-plaintext", "with TLS enabled and tls.cert or tls.key missing or not matching, the server "
       "starts and serves plaintext", "TLS", ["TLS-ANY-003", "TLS-ANY-004", "TLS-ANY-005"],
       layers=["startup"]),
    # -- MTLS -------------------------------------------------------------------------------
    _f("mtls-no-client-cert-required", "with verify_https_client_certificate on, REST never asks for a client "
       "certificate, so any or none is accepted", "MTLS",
       ["MTLS-REST-001", "MTLS-REST-002", "MTLS-REST-003", "MTLS-REST-004", "MTLS-REST-005"],
       collateral=["MTLS-GRPC-001"],
       layers=["rest-tls"]),  # as for mtls-client-cert-optional
    _f("mtls-client-cert-optional", "REST asks for a client certificate but lets a client without one in",
       "MTLS", ["MTLS-REST-001", "MTLS-REST-005"],
       # MTLS-GRPC-001 first checks that REST demands a client certificate, so gRPC's answer means something
       collateral=["MTLS-GRPC-001"],
       layers=["rest-tls"]),
    _f("mtls-expired-accepted", "REST client-certificate verification ignores validity dates "
       "(X509_V_FLAG_NO_CHECK_TIME)", "MTLS", ["MTLS-REST-003", "MTLS-REST-005"],
       layers=["rest-tls"]),
    _f("grpc-requests-client-cert", "the public gRPC port demands a client certificate when "
       "verify_https_client_certificate is on (Qdrant's never asks)", "MTLS", ["MTLS-GRPC-001"],
       layers=["grpc-tls"]),
    # -- ROT --------------------------------------------------------------------------------
    _f("rotation-never-reloads", "tls.cert_ttl is ignored: REST keeps its start-up certificate forever", "ROT",
       ["ROT-REST-001", "ROT-REST-003"],
       # ROT-GRPC-001 compares gRPC with a REST reload it first has to see; ROT-REST-002/005 need a
       # reload to show anything, and without one they end in error (never unsupported)
       collateral=["ROT-GRPC-001", "ROT-REST-002", "ROT-REST-005"],
       layers=["rotation"]),
    _f("rotation-reloads-grpc", "the public gRPC port re-reads tls.cert/tls.key on new handshakes", "ROT",
       ["ROT-GRPC-001"],
       layers=["rotation", "grpc-tls"]),
    _f("rotation-self-signed-fallback", "when the replacement files cannot be loaded REST serves a self-signed "
       "certificate of its own until valid files appear", "ROT", ["ROT-REST-005", "ROT-REST-003"],
       layers=["rotation"]),
    _f("rotation-drops-old-cert", "when the replacement files cannot be loaded REST drops the old certificate "
       "and new handshakes fail", "ROT", ["ROT-REST-003"],
       layers=["rotation"]),
    # -- CLUSTER (seams in reference_server/cluster/) ----------------------------------------
    _f("p2p-accepts-plaintext", "the p2p port serves plaintext gRPC although cluster.p2p.enable_tls is on",
       "CLUSTER", ["CLUSTER-P2P-001", "CLUSTER-P2P-002", "CLUSTER-P2P-003", "CLUSTER-P2P-004",
                   "CLUSTER-P2P-005", "CLUSTER-P2P-006", "CLUSTER-P2P-007"],
       # their positive twins call the p2p port over mutual TLS, which a plaintext port cannot answer; a port
       # without TLS presents no certificate to check (seen by the layered kill run)
       collateral=["CLUSTER-P2P-010", "CLUSTER-P2P-011", "CLUSTER-P2P-012", "CLUSTER-P2P-013"],
       layers=["p2p"]),
    _f("p2p-accepts-any-client-cert", "the p2p port does not verify client certificates", "CLUSTER",
       ["CLUSTER-P2P-003", "CLUSTER-P2P-004", "CLUSTER-P2P-005"],
       # the bootstrap lets a foreign-CA joiner in, but the cluster's nodes still verify the joiner's own
       # server certificate when they call it, so whether it reaches a peer list is not the fault's to
       # decide (passed in the declared-scope kill run, twice)
       collateral=["CLUSTER-P2P-007"],
       layers=["p2p"]),
    _f("p2p-internal-auth-ignored", "service.enforce_internal_auth is ignored: the p2p port takes internal calls "
       "without an API key", "CLUSTER", ["CLUSTER-P2P-010", "CLUSTER-P2P-011"],
       layers=["p2p"]),
    _f("p2p-health-requires-key", "with enforce_internal_auth the p2p health methods demand a credential too",
       "CLUSTER", ["CLUSTER-P2P-012"],
       layers=["p2p"]),
    _f("p2p-tls-without-ca", "with cluster.p2p.enable_tls on and no tls.ca_cert a node starts anyway, its p2p port "
       "checking no client certificate", "CLUSTER", ["CLUSTER-P2P-008", "CLUSTER-P2P-009"],
       layers=["p2p"]),
    _f("p2p-builtin-certificate", "the p2p port presents a self-signed certificate built into the server (the same "
       "on every node) instead of tls.cert, and peers trust it", "CLUSTER", ["CLUSTER-P2P-013"],
       # measured: their positive twin reaches the p2p port with a client that trusts only the cluster's CA
       collateral=["CLUSTER-P2P-001", "CLUSTER-P2P-002", "CLUSTER-P2P-003", "CLUSTER-P2P-004", "CLUSTER-P2P-005",
                   "CLUSTER-P2P-010", "CLUSTER-P2P-011", "CLUSTER-P2P-012"],
       layers=["p2p"]),
    _f("cluster-node-open", "in cluster mode a node serves its REST and gRPC APIs without API-key checks",
       "CLUSTER", ["CLUSTER-REST-001", "CLUSTER-GRPC-001"],
       layers=["cluster-mode"]),
    _f("p2p-skips-server-name-check", "a joining peer does not check the bootstrap peer's certificate against "
       "the host in its URI", "CLUSTER", ["CLUSTER-P2P-006"],
       layers=["p2p"]),
    # -- JWT: service.jwt_rbac tokens (spec §5) ----------------------------------------------
    _f("jwt-alg-none-accepted", 'a JWT with header alg "none" and no signature is accepted', "JWT",
       ["JWT-REST-006", "JWT-GRPC-006"], collateral=["JWT-REST-008", "JWT-GRPC-008"],
       layers=["jwt"]),
    _f("jwt-exp-ignored", "a JWT's exp claim is never checked: expired tokens keep working", "JWT",
       ["JWT-REST-004", "JWT-GRPC-004"], collateral=["JWT-REST-005", "JWT-GRPC-005"],
       layers=["jwt"]),
    _f("jwt-leeway-hours", "JWT expiry is checked with a leeway of hours instead of 30 s", "JWT",
       ["JWT-REST-004", "JWT-GRPC-004"], collateral=["JWT-REST-005", "JWT-GRPC-005"],
       layers=["jwt"]),
    _f("jwt-scope-ignored-on-writes", 'a collection token with access "r" may write to its collection', "JWT",
       # 026: its "write with r" case is the sweep-independent check of this rule
       ["JWT-REST-020", "JWT-GRPC-020", "JWT-REST-026", "JWT-GRPC-026"],
       # the audit checks of refused calls need a refusal to look for (seen by the layered kill run)
       collateral=["JWT-ANY-001", "JWT-REST-041", "JWT-GRPC-041"],
       layers=["jwt"]),
    _f("jwt-prw-snapshots", 'a collection token with access "prw" may use snapshots, indexes and named vectors',
       "JWT", ["JWT-REST-020", "JWT-GRPC-020", "JWT-REST-026", "JWT-GRPC-026"], collateral=["JWT-ANY-001"],
       layers=["jwt"]),
    _f("jwt-lookup-from-unchecked", "lookup_from / with_lookup may name a collection the token has no access to",
       "JWT", ["JWT-REST-023", "JWT-GRPC-023"],
       layers=["jwt"]),
    _f("jwt-ro-key-secret", "JWTs signed with the read-only key are accepted", "JWT",
       ["JWT-REST-003", "JWT-GRPC-003"],
       layers=["jwt"]),
    _f("jwt-value-exists-cached", "a value_exists claim is checked once per token and the answer cached, so "
       "deleting the point does not revoke it", "JWT", ["JWT-REST-030", "JWT-GRPC-030"],
       layers=["jwt"]),
    _f("jwt-grpc-rbac-skipped", "gRPC qdrant.Points/Upsert skips the JWT collection check", "JWT",
       ["JWT-GRPC-020", "JWT-GRPC-026"],
       # the audit check of a refused gRPC call needs a refusal to look for (seen by the layered kill run)
       collateral=["JWT-ANY-001", "JWT-GRPC-041"],
       layers=["jwt"]),
    _f("audit-log-token", "the audit log writes the presented bearer token (or API key) into the error of "
       "every refused entry", "JWT", ["JWT-ANY-040",
                                      # the audit log is also served over REST (seen by the layered kill run)
                                      "JWT-ANY-002"],
       layers=["jwt"]),
    # -- ADV and HARD: known advisories and deployment hardening (requirements/hardening.yaml) --
    _f("snapshot-upload-read-before-auth", "a snapshot upload's body is read and written to the snapshots "
       "directory before the key is checked (GHSA-3v92-w72v-j994, fixed in v1.18.1)", "ADV", ["ADV-REST-001"],
       layers=["rest-api"]),
    _f("snapshot-file-path-unchecked", "file:// snapshot recovery reads files outside the snapshots directory "
       "(fixed in v1.17.1, #8341)", "ADV", ["ADV-REST-002"],
       layers=["rest-api"]),
    _f("snapshot-url-recovery-ignores-switch", "service.enable_snapshot_url_recovery: false is ignored and remote "
       "snapshot URLs are fetched", "ADV", ["ADV-REST-003"],
       layers=["rest-api"]),
    _f("empty-key-kept", "an empty service.api_key is kept as a key, so an empty api-key header gets full access "
       "(Qdrant up to v1.18.3; fixed in v1.19.0, #9199)", "ADV", ["ADV-REST-004"],
       layers=["credentials"]),
    _f("config-path-ignored", "the file given by --config-path is silently ignored: the server runs with its "
       "defaults (no API key) and logs nothing about it", "HARD", ["HARD-ANY-001"],
       # a server without its configuration has no key, no TLS and none of the profile's switches: every check
       # of every profile may fail (the layered kill run saw 150 requirements fail or err), which is the point
       layers=["server-config"], unbounded=True),
    _f("metrics-port-open-when-off", "an extra listener serves /metrics without a credential although "
       "service.metrics_port is not configured", "HARD", ["HARD-ANY-002"],
       layers=["server-config"]),
    _f("cors-ignores-disable", "service.enable_cors: false is ignored: any Origin is still echoed", "HARD",
       ["HARD-REST-003"],
       layers=["rest-api"]),
    _f("grpc-extra-method", "the public gRPC port serves (and reflection advertises) a qdrant.Debug/DumpConfig "
       "method that no access-table row covers", "HARD", ["HARD-GRPC-004"],
       layers=["grpc-api"]),
)

#: Launcher-level faults (a deployment's launch options, not server code): the Docker launcher applies
#: them when they are named with --reference-fault. Not in :data:`CATALOG`: the kill test runs the
#: embedded server, where they mean nothing; ``tests/test_hardening_docker.py`` kills them.
LAUNCHER_FAULTS: tuple[Fault, ...] = (
    _f("docker-socket-mounted", "the container runs with the host's Docker socket mounted "
       "(/var/run/docker.sock)", "HARD", ["HARD-ANY-008"],
       layers=["container"]),
)

#: Self-test probes: not security mistakes, so not in :data:`CATALOG` and not in the kill score.
#: Each makes the server unable to show something, and a self-test checks the suite reports
#: *error* there, never a pass (a fault that only makes a check inconclusive cannot be "killed").
PROBES: tuple[Fault, ...] = (
    _f("route-answers-501", "GET /aliases answers 501 and qdrant.Collections/ListAliases UNIMPLEMENTED to "
       "every credential that passes authentication, as an unfinished server would", "AUTHZ", []),
)

BY_NAME: dict[str, Fault] = {fault.name: fault for fault in CATALOG + LAUNCHER_FAULTS + PROBES}


def validate(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or :class:`UnknownFault` for the first name not in the catalog."""
    chosen = tuple(names)
    for name in chosen:
        if name not in BY_NAME:
            raise UnknownFault(f"unknown fault {name!r} (see reference_server/faults.py for the catalog)")
    return chosen
