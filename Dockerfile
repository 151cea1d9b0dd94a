# promopool in a container: `docker build -t promopool .`, then
#   docker run -p 8080:8080 -v promopool-data:/data promopool
# SQLite keeps its file in the /data volume; for PostgreSQL set PROMOPOOL_DATABASE_URL (see compose.yaml).
# packaging/check-dockerfile runs this file's steps in a temporary venv where no image can be built.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMOPOOL_DATABASE_URL=sqlite:////data/promopool.db \
    PROMOPOOL_PORT=8080

# The server never runs as root: a system user that owns only the data directory.
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin promopool \
    && mkdir -p /data && chown promopool:promopool /data

WORKDIR /opt/promopool
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install .

VOLUME /data
WORKDIR /data
USER promopool
EXPOSE 8080

# python rather than curl, which the slim image does not have. /health/ready answers 503 while the database
# does not answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ['PROMOPOOL_PORT'], timeout=4)"]

CMD ["promopool", "serve", "--host", "0.0.0.0"]
