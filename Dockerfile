# A Podium pod in a container: `podium run-pod /mount/config/config.yaml` by default.
#
#   docker build -t podium-pod .
#   docker run -d --init --name census-pod \
#     -v "$PWD/pod-config:/mount/config:ro" -v "$PWD/data:/mount/data:ro" \
#     -v podium-pod-state:/var/lib/podium \
#     -e PODIUM_API_KEY=pdm_... -e PODIUM_HUB=http://hub:8700 podium-pod
#
# Arguments after the image name go to `podium run-pod` (--hub URL, --policy FILE,
# --dry-run). PODIUM_POD_CONFIG names another config file, PODIUM_POLICY a policy file.
# See docs/docker.md. The core package only: no torch (the `ml` extra) in this image.
FROM python:3.11-slim

LABEL org.opencontainers.image.title="podium-pod" \
      org.opencontainers.image.description="A Podium pod: federated analytics next to the data" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PODIUM_HOME=/var/lib/podium

# The pod runs as an unprivileged user. PODIUM_HOME holds the pod's keys, its pod DB and
# saved logins: it is created and owned here, before VOLUME, so a fresh named volume
# starts out owned by that user too.
RUN groupadd --system --gid 10001 podium \
    && useradd --system --uid 10001 --gid podium --home-dir /var/lib/podium \
       --no-create-home --shell /usr/sbin/nologin podium \
    && mkdir -p /var/lib/podium /mount/config /mount/data \
    && chown podium:podium /var/lib/podium \
    && chmod 0700 /var/lib/podium

WORKDIR /opt/podium
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && cd / && rm -rf /opt/podium

USER podium:podium
WORKDIR /var/lib/podium
VOLUME ["/var/lib/podium"]

# docker stop sends SIGTERM; `podium run-pod` stops cleanly on it and exits 0.
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the pod serves no local port to probe; the hub shows whether it is
# online from its heartbeats.
ENTRYPOINT ["python", "-m", "podium.pod.container"]
CMD []
