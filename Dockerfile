# syntax=docker/dockerfile:1
#
# Gatehouse's two images, the ones the Helm chart deploys:
#
#   docker build --target operator -t gatehouse-operator .   # builds from source
#   docker build --target sidecar  -t gatehouse-sidecar  .
#
# `operator-prebuilt` / `sidecar-prebuilt` copy what `cargo xtask image --context-only` leaves in
# target/release instead (the release binaries, and the shared libraries the sidecar links beyond
# the base's, staged as ldd resolves them), so an image can be made without network access
# (`cargo xtask image` does exactly that, then builds with buildah). Both kinds run on the same
# base and end in the same layout: one static path, user 65532, no shell.

# The Rust toolchain the release is built with (Debian bookworm, like the runtime base).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
# Distroless "cc": glibc, libgcc_s, CA certificates, /etc/passwd with nonroot = 65532; no shell.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot
# The image version (the workspace version = the chart's appVersion); labels only.
ARG VERSION=0.1.0

FROM ${RUST_IMAGE} AS builder
# The sidecar verifies SAML signatures with libxmlsec1 (bindings generated with libclang).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libclang-dev libxmlsec1-dev pkg-config >/dev/null
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gatehouse-operator -p gatehouse-sidecar \
 && mkdir -p /out/sidecar-libs \
 && cp target/release/gatehouse-operator target/release/gatehouse-sidecar /out/ \
 && ldd target/release/gatehouse-sidecar | awk '/=> \// {print $3}' \
    | grep -vE '/(ld-linux|libc|libm|libgcc_s|libpthread|libdl|librt)[.-]' \
    | xargs -r -I{} cp -L {} /out/sidecar-libs/

FROM ${RUNTIME_BASE} AS runtime
ARG VERSION
LABEL org.opencontainers.image.source="https://github.com/gatehouse-dev/gatehouse" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# distroless's nonroot user; numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

FROM runtime AS operator
LABEL org.opencontainers.image.title="gatehouse-operator" \
      org.opencontainers.image.description="Gatehouse operator: SsoConfig/SsoUser controllers and the sidecar-injection webhook"
COPY --from=builder /out/gatehouse-operator /usr/local/bin/gatehouse-operator
ENTRYPOINT ["/usr/local/bin/gatehouse-operator"]
CMD ["run"]

FROM runtime AS sidecar
LABEL org.opencontainers.image.title="gatehouse-sidecar" \
      org.opencontainers.image.description="Gatehouse auth sidecar: single sign-on in front of one workload"
COPY --from=builder /out/gatehouse-sidecar /usr/local/bin/gatehouse-sidecar
# libxmlsec1, libxml2 and what they link, which distroless "cc" does not carry (any architecture).
COPY --from=builder /out/sidecar-libs/ /usr/local/lib/gatehouse/
ENV LD_LIBRARY_PATH=/usr/local/lib/gatehouse
ENTRYPOINT ["/usr/local/bin/gatehouse-sidecar"]

FROM runtime AS operator-prebuilt
LABEL org.opencontainers.image.title="gatehouse-operator" \
      org.opencontainers.image.description="Gatehouse operator: SsoConfig/SsoUser controllers and the sidecar-injection webhook"
COPY target/release/gatehouse-operator /usr/local/bin/gatehouse-operator
ENTRYPOINT ["/usr/local/bin/gatehouse-operator"]
CMD ["run"]

FROM runtime AS sidecar-prebuilt
LABEL org.opencontainers.image.title="gatehouse-sidecar" \
      org.opencontainers.image.description="Gatehouse auth sidecar: single sign-on in front of one workload"
COPY target/release/gatehouse-sidecar /usr/local/bin/gatehouse-sidecar
# Staged by `cargo xtask image` (or `--context-only`) from what `ldd` resolves on the build machine.
COPY target/release/sidecar-libs/ /usr/local/lib/gatehouse/
ENV LD_LIBRARY_PATH=/usr/local/lib/gatehouse
ENTRYPOINT ["/usr/local/bin/gatehouse-sidecar"]
