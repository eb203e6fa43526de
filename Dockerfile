# syntax=docker/dockerfile:1
# Production image of the import-job bridge: `import-bridge run` and nothing else.
# The simulator, the demo and the embedded Redis are left out: point the bridge at
# a Redis with redis_url in the config file (or BRIDGE_REDIS_URL).
#
#   docker build -t import-job-bridge:0.2.0 .
#   docker run -v $PWD/bridge.toml:/etc/bridge/bridge.toml:ro import-job-bridge:0.2.0

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md LICENSE ./
COPY bridge ./bridge
RUN pip install --prefix=/install '/src[otel]' \
 && rm -rf /install/lib/python3*/site-packages/bridge/sim \
           /install/lib/python3*/site-packages/bridge/demo.py

# `--target demo`: the same plus the simulator, a verifying receiver and the demo
# (docker compose --profile demo).
FROM ${PYTHON_IMAGE} AS demo
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /src /src
RUN pip install '/src[demo]' && rm -rf /src \
 && useradd --system --uid 10001 --home-dir /var/lib/bridge --shell /usr/sbin/nologin bridge \
 && mkdir -p /var/lib/bridge && chown bridge:bridge /var/lib/bridge
WORKDIR /var/lib/bridge
USER 10001:10001
ENTRYPOINT ["import-bridge"]

# The production image (the default target).
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="import-job-bridge" \
      org.opencontainers.image.description="Turns polling of SaaS bulk-import jobs into signed webhook pushes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/import-job-bridge/import-job-bridge"
RUN useradd --system --uid 10001 --home-dir /var/lib/bridge --shell /usr/sbin/nologin bridge \
 && mkdir -p /var/lib/bridge /etc/bridge/secrets \
 && chown bridge:bridge /var/lib/bridge
COPY --from=build /install /usr/local
WORKDIR /var/lib/bridge
USER 10001:10001
EXPOSE 8080
# The config file decides everything; nothing here overrides it. Its [api] listen
# must be 0.0.0.0:8080 (or the port published) to be reachable from outside.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["import-bridge", "probe", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["import-bridge", "run", "--config", "/etc/bridge/bridge.toml"]
CMD ["--secrets-dir", "/etc/bridge/secrets"]
