# The sloscale operator image: `sloscale run` as uid 65532 on a read-only root filesystem.
#   docker build -t registry.example.com/sloscale:0.1.0 .      (or `make image`, with podman)
# BASE is any Debian-like image with python3 >= 3.11 and its venv module. The default is the
# official one; `make image` passes a base built from Debian packages (hack/image.py) because
# no registry is reachable there. Pin yours by digest:
#   --build-arg BASE=python:3.11-slim-bookworm@sha256:...
# Only the operator's dependencies go in (no numpy, matplotlib or torch: those are the `sim`
# and `runtime` extras, for the simulator and for building models) and no compiler.
ARG BASE=python:3.11-slim-bookworm

# The dependencies, from pyproject.toml alone: rebuilt only when pyproject.toml changes.
FROM ${BASE} AS deps
WORKDIR /src
# pip lives in its own venv and installs into /opt/sloscale, which therefore carries no pip.
RUN python3 -m venv /opt/pip && python3 -m venv --without-pip /opt/sloscale
COPY pyproject.toml ./
# sloscale itself goes to /opt/sloscale-app (next stage), named by a .pth file here, so that a
# code change is a layer of a few hundred KiB rather than one with every dependency.
# pip-cert: an optional build secret with the CA bundle of a TLS-inspecting proxy, if yours has
# one (`--secret id=pip-cert,src=FILE`; hack/image.py passes pip's own); it stays out of the image.
RUN --mount=type=secret,id=pip-cert \
    if [ -f /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && /opt/pip/bin/pip --python /opt/sloscale/bin/python install --no-cache-dir --no-compile \
       --disable-pip-version-check --only-binary=:all: -r requirements.txt \
    && echo /opt/sloscale-app > "$(/opt/sloscale/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/sloscale-app.pth"

# sloscale and sloscale_runtime, with the `sloscale` script (its #! names /opt/sloscale's python).
FROM deps AS app
COPY README.md ./
COPY operator ./operator
COPY runtime ./runtime
# pip fetches the build backend (setuptools) from the index too.
RUN --mount=type=secret,id=pip-cert \
    if [ -f /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
    && /opt/pip/bin/pip --python /opt/sloscale/bin/python install --no-cache-dir --no-compile \
       --disable-pip-version-check --no-deps --target /opt/sloscale-app .

FROM ${BASE}
# The uid/gid the chart runs as (runAsUser/runAsGroup 65532), named for tools that look it up.
RUN echo 'sloscale:x:65532:65532:sloscale:/tmp:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'sloscale:x:65532:' >> /etc/group
COPY --from=deps /opt/sloscale /opt/sloscale
COPY --from=app /opt/sloscale-app /opt/sloscale-app
# Read-only root filesystem, so no bytecode is written at run time, and none is shipped
# (--no-compile above): it would add 66 MiB to save about 0.7 s of compiling at start-up.
# /tmp is an emptyDir in the chart (a tmpfs under podman --read-only).
ENV PATH=/opt/sloscale-app/bin:/opt/sloscale/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sloscale" \
      org.opencontainers.image.description="Kubernetes inference operator that scales Triton GPU services on latency SLOs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["sloscale"]
CMD ["run", "--metrics-address=0.0.0.0:8080", "--health-address=0.0.0.0:8081"]
