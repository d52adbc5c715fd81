#!/usr/bin/env bash
# Build local/qsc-reference:latest, the reference server in an image laid out
# like qdrant/qdrant, on a machine with no container registry.
#
#   docker/build.sh            # from anywhere; idempotent
#
# Three steps, each skipped when its result is already there:
#   1. base image  local/qsc-debian-py:bookworm  from debootstrap (needs root)
#   2. wheels      docker/build/wheels/          pip download on the host
#   3. image       local/qsc-reference:latest    docker build, offline
# The image id goes to stdout; progress and timings go to stderr.
#
# Environment:
#   QSC_PYTHON           host interpreter whose pip downloads wheels (python3)
#   QSC_DEBIAN_MIRROR    mirror for debootstrap (debootstrap's default if unset)
#   QSC_REBUILD_BASE=1   rebuild the base image even if present
#   QSC_REFRESH_WHEELS=1 download the wheels again even if present
#   QSC_IMAGE, QSC_BASE_IMAGE, QSC_BUILD_DIR  other tags / scratch dir (e.g. to time
#                        a cold build without touching the images in use)

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${QSC_BUILD_DIR:-$here/build}"

BASE_IMAGE="${QSC_BASE_IMAGE:-local/qsc-debian-py:bookworm}"
IMAGE="${QSC_IMAGE:-local/qsc-reference:latest}"
SUITE="bookworm"
PYTHON="${QSC_PYTHON:-python3}"
# Bookworm's python3 is CPython 3.11 on glibc 2.36: any manylinux tag up to 2_36 runs there.
PY_VERSION="3.11"
# Test and host-side tooling that the server never imports.
HOST_ONLY="pytest docker sslyze jsonschema trustme"

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
clock() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(clock)" 'BEGIN { printf "%.1f", b - a }'; }

rootfs=""
cleanup() {
    if [[ -n "$rootfs" && -d "$rootfs" ]]; then
        # debootstrap mounts proc/sys inside the tree; an interrupted run can
        # leave them mounted, and rm must never walk into them.
        awk -v r="$rootfs/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r \
            | while read -r m; do umount -l "$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$rootfs"
    fi
    rm -rf "$build/wheels.partial"
}
trap cleanup EXIT

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "cannot reach the Docker engine (is dockerd running?)"
mkdir -p "$build"
# One build at a time per checkout: parallel test sessions may all ask for the image.
exec 9>"$build/.lock"
flock 9

# --- 1. base image -----------------------------------------------------------
if [[ "${QSC_REBUILD_BASE:-0}" == "1" ]] || ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    [[ "$(id -u)" == "0" ]] || die "debootstrap needs root to build $BASE_IMAGE"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    t0="$(clock)"
    rootfs="$(mktemp -d "$build/rootfs.XXXXXX")"
    log "debootstrap $SUITE into $rootfs"
    # shellcheck disable=SC2086  # an empty mirror must expand to no argument
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$rootfs" ${QSC_DEBIAN_MIRROR:-} >"$build/debootstrap.log" 2>&1 \
        || { tail -n 20 "$build/debootstrap.log" >&2; die "debootstrap failed (log: $build/debootstrap.log)"; }
    # Package caches, lists, manuals and translations only make the image bigger
    # (about 50 MB); nothing is installed later and nobody reads them in a test
    # container. Copyright files and glibc's locale.alias stay.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change 'LABEL qsc.image=debian-python qsc.suite=bookworm' \
        --message "debootstrap --variant=minbase $SUITE + python3" \
        - "$BASE_IMAGE" >/dev/null
    cleanup
    rootfs=""
    log "base image $BASE_IMAGE built in $(elapsed "$t0") s"
else
    log "base image $BASE_IMAGE present"
fi
base_python="$(docker run --rm --entrypoint python3 "$BASE_IMAGE" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$base_python" == "$PY_VERSION" ]] \
    || die "$BASE_IMAGE has Python $base_python but the wheels are for $PY_VERSION"

# --- 2. wheels ---------------------------------------------------------------
# The runtime requirements are pyproject's dependencies minus the host-only
# tools, so the image follows the same version ranges as the suite.
requirements="$("$PYTHON" - "$repo/pyproject.toml" "$HOST_ONLY" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
skip = set(sys.argv[2].split())
for dep in deps:
    name = re.match(r"[A-Za-z0-9._-]+", dep).group(0).lower()
    if name not in skip:
        print(dep)
PY
)"
platforms=(manylinux2014_x86_64)
for minor in $(seq 5 36); do platforms+=("manylinux_2_${minor}_x86_64"); done
stamp="$(printf '%s\n' "$requirements" "$PY_VERSION" "${platforms[@]}" | sha256sum | cut -d' ' -f1)"

if [[ "${QSC_REFRESH_WHEELS:-0}" != "1" && -f "$build/wheels/.stamp" \
      && "$(cat "$build/wheels/.stamp")" == "$stamp" ]]; then
    log "wheels present ($(find "$build/wheels" -name '*.whl' | wc -l) files)"
else
    t0="$(clock)"
    rm -rf "$build/wheels.partial"
    mkdir -p "$build/wheels.partial"
    platform_args=()
    for p in "${platforms[@]}"; do platform_args+=(--platform "$p"); done
    log "downloading wheels for: $(tr '\n' ' ' <<<"$requirements")"
    # shellcheck disable=SC2046  # one requirement per line, none contains spaces
    "$PYTHON" -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --implementation cp --python-version "$PY_VERSION" \
        "${platform_args[@]}" --dest "$build/wheels.partial" \
        $(printf '%s\n' "$requirements" | sed 's/ //g') \
        || die "pip download failed"
    printf '%s\n' "$requirements" >"$build/wheels.partial/requirements.txt"
    printf '%s\n' "$stamp" >"$build/wheels.partial/.stamp"
    rm -rf "$build/wheels"
    mv "$build/wheels.partial" "$build/wheels"
    log "downloaded $(find "$build/wheels" -name '*.whl' | wc -l) wheels" \
        "($(du -sh "$build/wheels" | cut -f1)) in $(elapsed "$t0") s"
fi

# --- 3. image ----------------------------------------------------------------
t0="$(clock)"
ctx="$build/context"
rm -rf "$ctx"
mkdir -p "$ctx"
# Hard links keep the context cheap; the build sends only this directory.
cp -al "$build/wheels" "$ctx/wheels" 2>/dev/null || cp -a "$build/wheels" "$ctx/wheels"
cp "$build/wheels/requirements.txt" "$ctx/requirements.txt"
cp -a "$here/image" "$ctx/image"
cp "$here/reference.Dockerfile" "$ctx/Dockerfile"
tar -C "$repo" --exclude='__pycache__' --exclude='*.pyc' -c reference_server | tar -C "$ctx" -x
[[ -f "$ctx/reference_server/__init__.py" ]] || die "no reference_server package in $repo"

digest="$("$PYTHON" "$here/source_digest.py" "$repo")"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
previous="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "docker build $IMAGE"
# The classic builder resolves FROM against the engine's local images; BuildKit
# with a container driver would try a registry.
DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label qsc.image=reference-server \
    --label "qsc.reference-server.digest=$digest" \
    --label "qsc.source-revision=$revision" \
    --label "org.opencontainers.image.title=qdrant-security-conformance reference server" \
    -t "$IMAGE" "$ctx" >"$build/docker-build.log" 2>&1 \
    || { tail -n 30 "$build/docker-build.log" >&2; die "docker build failed (log: $build/docker-build.log)"; }
rm -rf "$ctx"
current="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
# Images the tag moved away from (this time or in an earlier build, while a
# container still used them) would linger untagged; one still in use stays.
for stale in $previous $(docker images -q --no-trunc --filter dangling=true --filter label=qsc.image=reference-server); do
    [[ "$stale" == "$current" ]] || docker image rm "$stale" >/dev/null 2>&1 || true
done
log "image $IMAGE built in $(elapsed "$t0") s, size $(docker image inspect -f '{{.Size}}' "$IMAGE" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }')"
printf '%s\n' "$current"
