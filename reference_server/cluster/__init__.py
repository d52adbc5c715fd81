"""Cluster mode: the p2p port, joining a cluster and the peer list (spec §1.1, §1.5, §3, §8).

What a Qdrant peer shows from the outside, and nothing of Qdrant's internal
protocol (we test the TLS and authentication posture, not Raft):

* ``cluster.enabled`` binds a gRPC server on ``service.host:cluster.p2p.port``.
* ``cluster.p2p.enable_tls`` makes that port **mutual TLS**: the node's
  ``tls.cert``/``tls.key`` as identity, client certificates required and
  checked against ``tls.ca_cert``. Outgoing p2p connections present the same
  identity, trust ``tls.ca_cert`` only and check the peer's certificate
  against the host in its URI. ``tls.ca_cert`` unset →
  ``CA certificate is required for TLS configuration`` at start-up.
* ``service.enforce_internal_auth`` (v1.18.0+) puts the API-key check on the
  p2p port, with the health methods whitelisted; from v1.18.0 peers always
  send their ``service.api_key`` as ``api-key`` metadata.
* The port serves ``qdrant.Qdrant/HealthCheck``, ``grpc.health.v1.Health/Check``
  and the read-only ``qdrant.QdrantInternal/GetConsensusCommit`` as Qdrant's
  does, plus our own minimal peer service ``qsc.p2p.Peer`` (``Ping``, ``Join``,
  ``Exchange``) whose messages are JSON bytes.

Membership: a node started with ``--bootstrap URI`` calls ``Join`` on that
peer. The bootstrap peer first dials the newcomer back at its URI (so a
newcomer whose certificate does not match its own URI, or that speaks
plaintext to TLS peers, is never admitted), then adds it and answers with
its peer table. Every node then sends its table to every known peer every
``heartbeat_interval`` seconds (``Exchange``) and merges the answers, so
the tables converge within one interval. Only known peers may exchange.
A join that has not succeeded by ``join_timeout`` fails start-up (exit 1).

The package, by seam:

* :mod:`.config`: the validated :class:`ClusterConfig` (``prepare``, before anything binds);
* :mod:`.channels`: p2p TLS, the port's server credentials and the outgoing channels;
* :mod:`.service`: the p2p port's gRPC methods, their wire format and ``enforce_internal_auth``;
* :mod:`.node`: one peer's membership state, the join and the heartbeats.

Fault seams (``reference_server.faults`` names, asked of the server's
:class:`~reference_server.fault_policy.FaultPolicy` carried by :class:`ClusterConfig`):
:data:`FAULTS` in :mod:`.config` and :mod:`.channels`, ``p2p-internal-auth-ignored``
in :func:`prepare`, ``p2p-health-requires-key`` in :class:`~.service.InternalAuth`.

Nothing here logs or formats key material or API keys. There is no process-wide
state: the server hands the :class:`ClusterNode` it started to whatever reports on it.
"""

from .config import FAULTS, ClusterConfig, ClusterError, PeerUri, prepare
from .node import ClusterNode, start

__all__ = ["FAULTS", "ClusterConfig", "ClusterError", "ClusterNode", "PeerUri", "prepare", "start"]
