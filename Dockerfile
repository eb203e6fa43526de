# Production image: the bridge only. Point it at a Redis with BRIDGE_REDIS_URL.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
RUN useradd --system --uid 10001 bridge
COPY --from=build /install /usr/local
USER bridge
EXPOSE 8080
ENV BRIDGE_API__LISTEN=0.0.0.0:8080
# Config at /etc/bridge/bridge.toml; secrets as files under /etc/bridge/secrets
# (not /run/secrets, which Kubernetes uses for its own mounts).
ENTRYPOINT ["bridge", "run", "--config", "/etc/bridge/bridge.toml"]
