# syntax=docker/dockerfile:1
#
# Builds kubelift's two images from one build stage:
#
#   docker build --target operator    -t ghcr.io/kubelift/operator:0.1.0 .
#   docker build --target node-helper -t ghcr.io/kubelift/node-helper:0.1.0 .
#
# The manifests (manifests/kustomization.yaml) name these images; push them where your nodes can
# pull from and point the kustomization at them.

# The toolchain the workspace is tested with; Debian bookworm, like both runtime images, so the
# binaries link the glibc they run with.
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# protoc: the CRI client's build script compiles the CRI protobuf definitions.
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The caches keep the registry and the target directory between builds; the binaries are copied
# out because a cache mount does not persist into the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kubelift-operator --bin kubelift-node-helper \
    && mkdir /out \
    && cp target/release/kubelift-operator target/release/kubelift-node-helper /out/

# The operator needs nothing from the host: distroless with glibc, CA certificates and time-zone
# data (maintenance windows), running as the image's nonroot user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/kubelift-operator /usr/local/bin/kubelift-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubelift-operator"]

# The helper restarts the kubelet by entering the host's namespaces with nsenter (util-linux), and
# downloads artifacts over HTTPS (ca-certificates), so it cannot be distroless. It runs as root
# in a privileged pod: it replaces the kubelet binary on the host.
FROM docker.io/library/debian:bookworm-slim AS node-helper
RUN apt-get update \
    && apt-get install -y --no-install-recommends util-linux ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kubelift-node-helper /usr/local/bin/kubelift-node-helper
ENTRYPOINT ["/usr/local/bin/kubelift-node-helper"]
