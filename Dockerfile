# The sloscale operator image: `sloscale run` as a non-root user on a slim Python base.
#   docker build -t ghcr.io/sloscale/sloscale:0.1.0 .
# Only the operator's dependencies are installed (no torch: the runtime extra is for
# building and profiling models, not for the operator). Pin the base by digest in your
# registry mirror for reproducible builds: FROM python:3.11-slim-bookworm@sha256:...
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY runtime ./runtime
RUN pip install --no-cache-dir --no-compile --prefix=/install .

FROM python:3.11-slim-bookworm
# The uid/gid the chart runs as (runAsUser/runAsGroup 65532); a passwd entry for tools
# that look the user up.
RUN groupadd --gid 65532 sloscale \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin sloscale
COPY --from=build /install /usr/local
# Read-only root filesystem: no bytecode writes; /tmp is an emptyDir in the chart.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MPLCONFIGDIR=/tmp
USER 65532:65532
EXPOSE 8080 8081
# Kubernetes probes kopf's /healthz (the chart's --health-address); Docker's own check
# would run beside them for nothing.
HEALTHCHECK NONE
ENTRYPOINT ["sloscale"]
CMD ["run", "--metrics-address=0.0.0.0:8080", "--health-address=0.0.0.0:8081"]
