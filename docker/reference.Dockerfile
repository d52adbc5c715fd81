# The reference server in an image laid out like qdrant/qdrant (spec §1.3): WORKDIR
# /qdrant, the server as ./qdrant, ./entrypoint.sh running ./qdrant "$@", config/ with
# config.yaml and production.yaml, static/ with the Web UI, RUN_MODE=production,
# CMD ["./entrypoint.sh"] and no ENTRYPOINT. A harness that starts this image the way
# it must start Qdrant's goes down the path users take.
#
# Built by docker/build.sh with no registry: the base image comes from
# debootstrap and every Python package from wheels downloaded on the host, so
# nothing here reaches the network. Build context: docker/build/context/.

ARG BASE_IMAGE=local/qsc-debian-py:bookworm

# Dependencies in their own stage, so the final image carries the venv but not the wheels.
FROM ${BASE_IMAGE} AS deps
COPY requirements.txt /tmp/qsc/requirements.txt
COPY wheels/ /tmp/qsc/wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-index --find-links /tmp/qsc/wheels \
        --no-cache-dir --disable-pip-version-check --no-compile -r /tmp/qsc/requirements.txt \
 && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib

FROM ${BASE_IMAGE}
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/opt/qsc \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RUN_MODE=production
WORKDIR /qdrant
COPY image/config/ /qdrant/config/
COPY image/static/ /qdrant/static/
COPY image/entrypoint.sh image/qdrant /qdrant/
COPY image/check_imports.py /opt/qsc-tools/check_imports.py
RUN mkdir -p /qdrant/tls /qdrant/storage /qdrant/snapshots
# Last, because it changes most often: everything above stays cached.
COPY reference_server/ /opt/qsc/reference_server/
# The compiled-in defaults double as config/config.yaml, as in Qdrant's image.
RUN cp /opt/qsc/reference_server/default_config.yaml /qdrant/config/config.yaml \
 && python -m compileall -q /opt/qsc \
 && python /opt/qsc-tools/check_imports.py
# As Qdrant's image: 6335 (p2p) is not declared; a cluster publishes it explicitly.
EXPOSE 6333 6334
# The base image's CMD is bash; this one replaces it. No ENTRYPOINT, as in Qdrant's image.
CMD ["./entrypoint.sh"]
