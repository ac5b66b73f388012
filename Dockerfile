# The mechtrade CLI (migrate, ingest, coordinate, ...) in a small image, run as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ./ingest
COPY sql ./sql
RUN pip install . \
    && useradd --system --no-create-home --uid 10001 mechtrade

USER mechtrade
ENTRYPOINT ["mechtrade"]
CMD ["--help"]
