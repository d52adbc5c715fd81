"""``python -m reference_server --config-path FILE [--uri URI] [--bootstrap URI] [--fault NAME]...``

Exit codes: 0 after SIGTERM/SIGINT, 1 when start-up fails (one line,
``Error: <reason>``, on stderr), 2 for bad command-line usage.
"""

from __future__ import annotations

import argparse
import os
import sys

# Before anything loads OpenSSL (it reads OPENSSL_CONF once, when ssl is first imported): offer only
# Qdrant's key-exchange groups on the REST listener (spec §6). grpcio's BoringSSL does not read it.
os.environ.setdefault("OPENSSL_CONF", os.path.join(os.path.dirname(os.path.abspath(__file__)), "openssl.cnf"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reference_server", description="Qdrant-compatible reference server")
    parser.add_argument("--config-path", help="config file, read after Qdrant's own config chain")
    parser.add_argument("--uri", default=os.environ.get("QDRANT_URI"), help="this peer's p2p URI")
    parser.add_argument("--bootstrap", default=os.environ.get("QDRANT_BOOTSTRAP"), help="a peer's p2p URI")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch on a fault")
    parser.add_argument("--disable-telemetry", action="store_true", help="accepted for Qdrant compatibility")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from . import logging_setup, server, watchdog

    try:
        prepared = server.prepare(args.config_path, uri=args.uri, bootstrap=args.bootstrap,
                                  faults=tuple(args.fault))
        rest_socket = server.bind_rest_socket(prepared.settings)
    except server.StartupError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    logging_setup.configure(prepared.settings.log_level)
    server.log_startup_notes(prepared)
    watchdog.start_from_env()
    return server.run(prepared, rest_socket)


if __name__ == "__main__":
    sys.exit(main())
