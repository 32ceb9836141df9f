# The tsync command (demo synchronizer: worker, starter, seed, status, ...).
#
#   docker build -t tsync .
#   docker run --rm tsync --help
#
# docker-compose.yml runs it against PostgreSQL, Redis and Temporal.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -o /out/tsync ./cmd/tsync \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tsync /usr/local/bin/tsync
# The demo backend's tree (TSYNC_DEMO_DIR) lives in /data, a volume.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
# No config.yaml here: the sample config built into the binary applies, and
# TSYNC_* environment variables override it.
ENTRYPOINT ["/usr/local/bin/tsync"]
CMD ["--help"]
