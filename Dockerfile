# mailcanary container image.
#
#   docker build -t mailcanary:local .
#   docker run --rm -p 127.0.0.1:9925:9925 \
#     -v "$PWD/config.toml:/etc/mailcanary/config.toml:ro" mailcanary:local
#
# In a container, configure mailcanary to listen on the container's interface (not only
# 127.0.0.1) and publish the port on the host's loopback as above.

FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependency layer: build the locked dependency set against stub sources, so that a change
# under src/ rebuilds only mailcanary itself. bench/verdict.rs and bench/idle_client.rs must
# exist because Cargo.toml declares the bench and example targets.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src bench \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > bench/verdict.rs \
    && echo 'fn main() {}' > bench/idle_client.rs \
    && cargo build --release --locked --bin mailcanary \
    && rm -rf src bench

COPY src ./src
COPY bench/verdict.rs bench/idle_client.rs ./bench/
COPY scripts/release ./scripts/
# COPY keeps the sources' modification times, which may be older than the stub build:
# touch the crate roots so that cargo rebuilds mailcanary. scripts/release builds it and
# splits the debug info off: target/dist/mailcanary (~20 MB) ships, mailcanary.debug stays here.
RUN touch src/main.rs src/lib.rs \
    && scripts/release


# The line tables of the image's binary, for symbolised backtraces (README, "Building"):
#   docker build --target debug-symbols --output type=local,dest=. .
FROM scratch AS debug-symbols
COPY --from=builder /build/target/dist/mailcanary.debug /


FROM debian:bookworm-slim

# ca-certificates: SMTP and IMAP over TLS verify the servers against the system roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Fixed numeric ids, so that volume ownership and `runAsNonRoot` checks are predictable.
RUN groupadd --system --gid 10001 mailcanary \
    && useradd --system --uid 10001 --gid mailcanary --home-dir /var/lib/mailcanary \
        --no-create-home --shell /usr/sbin/nologin mailcanary \
    && install -d -o mailcanary -g mailcanary -m 0750 /var/lib/mailcanary \
    && install -d -m 0755 /etc/mailcanary

COPY --from=builder /build/target/dist/mailcanary /usr/local/bin/mailcanary

USER 10001:10001
WORKDIR /var/lib/mailcanary
EXPOSE 9925
ENTRYPOINT ["mailcanary"]
CMD ["run", "--config", "/etc/mailcanary/config.toml"]
