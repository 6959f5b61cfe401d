# The Relais image: one image for the hub worker, the hub API, the partner
# sandboxes and the one-shot topic creation (see docker-compose.yml).
#
#   docker build -t relais .
#   docker run --rm -e RELAIS_KAFKA_BOOTSTRAP=kafka:9092 relais worker
#
# The local-broker tooling (`relais kafka up`) is not used in containers: Kafka
# runs as its own service and RELAIS_KAFKA_BOOTSTRAP points at it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs: no .venv, no .relais (local jars and data), no tests.
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY relais ./relais
COPY agents ./agents
COPY connectors ./connectors
COPY topics ./topics
COPY ops ./ops
COPY schemas ./schemas
COPY sandbox ./sandbox

RUN pip install . \
    && useradd --system --create-home --uid 10001 relais \
    && mkdir -p /data \
    && chown relais:relais /data

USER relais

# Blobs, worker state and logs; docker-compose.yml mounts a shared volume here.
ENV RELAIS_DATA_DIR=/data \
    RELAIS_LOG_FORMAT=json

ENTRYPOINT ["relais"]
CMD ["--help"]
