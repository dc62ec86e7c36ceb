# Images of the sales service. One build stage compiles the workspace; two
# small runtime images take what they need from it:
#   docker build --target server -t sales-server .
#   docker build --target client -t sales-client .
# docker-compose.yml builds and runs both.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sales-server --bin sales-client --bin migrations-tool

FROM debian:bookworm-slim AS server
RUN useradd --system --uid 10001 --home-dir /app sales \
    && mkdir -p /app/db && chown sales /app/db
WORKDIR /app
COPY --from=build /src/target/release/sales-server /src/target/release/migrations-tool /usr/local/bin/
COPY data /app/data
USER sales
# The database lives on a volume; the sample data seeds a new database.
ENV SALES_DB=/app/db SALES_SEED_DATA=/app/data \
    SALES_GRPC_ADDR=0.0.0.0:50051 SALES_HTTP_ADDR=0.0.0.0:50052
VOLUME /app/db
EXPOSE 50051 50052
STOPSIGNAL SIGTERM
CMD ["sales-server"]

FROM debian:bookworm-slim AS client
RUN useradd --system --uid 10001 sales
COPY --from=build /src/target/release/sales-client /usr/local/bin/
USER sales
ENV SALES_SERVER=http://sales-server:50051
ENTRYPOINT ["sales-client"]
