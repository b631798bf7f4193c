# One image for the eight services: `docker run IMAGE serve` runs `logitflow service serve`.
#   docker build -t logitflow .
# The build needs only cargo (every C part is built from source by its crate); the runtime
# image needs only the system's CA certificates, for S3 over TLS.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin logitflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/logitflow logitflow \
    && mkdir -p /var/lib/logitflow \
    && chown logitflow /var/lib/logitflow
COPY --from=build /src/target/release/logitflow /usr/local/bin/logitflow
USER 10001
# A container listens on all its addresses, which a service does only with LOGITFLOW_TOKEN
# set; the store is named by LOGITFLOW_STORE (s3://bucket/prefix) and the AWS_* variables.
ENV LOGITFLOW_HOME=/var/lib/logitflow \
    LOGITFLOW_LISTEN=0.0.0.0:8080
EXPOSE 8080 8001
ENTRYPOINT ["logitflow", "service"]
CMD ["serve"]
