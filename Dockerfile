# The mechtrade CLI (migrate, ingest, coordinate, ...) in a small image, run as a non-root user.
# Stage 1 installs the dependencies into a virtual environment (rebuilt only when pyproject.toml
# changes), the web stage the chart page's JavaScript (npm ci); the last stage copies both and the
# source tree, and runs the code from /app so that sql/, config/, the demo's MES tape and the
# chart library sit where the code looks for them.
FROM python:3.11-slim AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml /tmp/
RUN python -m venv /opt/venv \
    && python -c "import tomllib; project = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']; \
print('\n'.join(project['dependencies']))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

# The chart page's JavaScript (lightweight-charts) from the npm registry, exactly as package-lock.json pins it.
FROM node:20-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY ingest ./ingest
COPY sql ./sql
COPY config ./config
COPY --from=web /web/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js \
    /web/node_modules/lightweight-charts/LICENSE ./node_modules/lightweight-charts/dist/
# The demo's fake gateway replays these real MES trades (the rest of tests/ stays out: .dockerignore).
COPY tests/data/mes/mes_m25_5m.csv ./tests/data/mes/
RUN printf '#!/bin/sh\nexec python -m ingest.cli "$@"\n' > /usr/local/bin/mechtrade \
    && chmod 755 /usr/local/bin/mechtrade \
    && useradd --system --no-create-home --uid 10001 mechtrade \
    && mkdir spill && chown mechtrade spill

USER mechtrade
EXPOSE 8080 8081 8090
ENTRYPOINT ["mechtrade"]
CMD ["--help"]
