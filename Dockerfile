# syntax=docker/dockerfile:1
# DayTrader: one image for every role (serve, worker, quote-server).
#   docker build -t daytrader .
#   docker run -p 9999:9999 daytrader           # embedded, data in /data

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p daytrader \
 && cp target/release/daytrader /usr/local/bin/daytrader \
 && mkdir -p /empty-data

# Distroless: glibc and nothing else, no shell, a non-root user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/daytrader /usr/local/bin/daytrader
COPY --from=build --chown=65532:65532 /empty-data /data
USER 65532:65532
ENV PORT=9999 \
    BIND=0.0.0.0 \
    DAYTRADER_DATA_DIR=/data \
    LOG_FORMAT=json
EXPOSE 9999
VOLUME ["/data"]
# No curl in the image: the binary checks its own /readyz.
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/daytrader", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/daytrader"]
CMD ["serve"]
