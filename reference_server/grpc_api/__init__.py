"""The public gRPC API of the reference server (spec §3, §4).

Entry point: :func:`reference_server.grpc_api.server.start_grpc_server`.
Module map: ``access`` (method → required access, a data table), ``policy``
(authentication and access decisions, the seam for faults), ``server`` (the
generic handler and routing), ``messages`` (message classes from the shipped
descriptors), ``*_api`` (method implementations over the data plane),
``raw_services`` and ``wire`` (services qdrant-client ships no stubs for).
"""
