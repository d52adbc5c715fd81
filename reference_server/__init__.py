"""A Qdrant-compatible server that reproduces Qdrant's security behaviour.

It is the embedded default target of the conformance suite and the body into
which the self-tests inject security faults. Behaviour follows
``shared/spec/qdrant-security-behaviour.md``; the emulated Qdrant version is
``reference_server.version`` in the config (default :data:`DEFAULT_VERSION`).
"""

DEFAULT_VERSION = "1.19.0"
TITLE = "qdrant - vector search engine"
COMMIT = "0000000000000000000000000000000000000000"
