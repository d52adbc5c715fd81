#!/bin/sh
# The contract of qdrant/qdrant's entrypoint.sh (spec §1.3): run ./qdrant with the
# container's arguments from /qdrant. The image's CMD is ["./entrypoint.sh"] and it has
# no ENTRYPOINT, so whoever passes arguments must name the command too
# (`./entrypoint.sh --config-path ...`), exactly as with Qdrant's image. exec rather
# than Qdrant's background-and-wait (which exists for its recovery mode): `docker stop`'s
# SIGTERM then reaches the server at once and its exit code is the container's.
set -e
cd /qdrant
exec ./qdrant "$@"
