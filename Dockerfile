# One image for the production layout: `yingji api` (default) and `yingji worker`.
# docker-compose.yml wires it to PostgreSQL and a Temporal server with YINGJI_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    YINGJI_DATA_DIR=/data \
    YINGJI_API_HOST=0.0.0.0 \
    YINGJI_API_PORT=8000

# WeasyPrint (PDF case files) needs Pango; Chinese text needs a CJK font.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# dependencies first (cached while only the code changes)
COPY pyproject.toml ./
RUN mkdir -p api activities workflows definitions store cli \
 && touch config.py worker.py \
 && pip install -e . \
 && rm -rf api activities workflows definitions store cli config.py worker.py
# the code (explicit list: never the host's .venv or .yingji)
COPY config.py worker.py ./
COPY api ./api
COPY activities ./activities
COPY workflows ./workflows
COPY definitions ./definitions
COPY store ./store
COPY cli ./cli
RUN pip install --no-deps -e . \
 && useradd --system --uid 10001 --home-dir /data yingji \
 && mkdir -p /data && chown yingji /data

USER yingji
VOLUME ["/data"]
EXPOSE 8000
CMD ["yingji", "api"]
