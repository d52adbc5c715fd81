#!/bin/sh
# Mirrors qdrant/qdrant's tools/entrypoint.sh: run the server from /qdrant so that
# relative paths (./config, ./tls, ./storage) resolve as in Qdrant's image, and
# exec so that SIGTERM from `docker stop` reaches the server itself.
set -e
cd /qdrant
exec /opt/venv/bin/python -m reference_server "$@"
