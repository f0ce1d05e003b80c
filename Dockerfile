# displayd: the API, board polls, dashboard and scheduler in one slim, non-root image.
#
#   docker build -t displayd .
#   docker run -e DISPLAYD_DATABASE_URL=postgresql+asyncpg://… -e DISPLAYD_SECRET_KEY=… -p 8000:8000 displayd
#
# No secret is baked in: DISPLAYD_SECRET_KEY and the database URL come from the environment
# (compose.yaml shows both). The container migrates the database, then serves on 0.0.0.0:8000.

# --- build: a wheel of displayd, installed with its pinned dependencies into /opt/venv ---
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock pyproject.toml README.md ./
COPY displayd ./displayd
# The lock also pins the test tools; as constraints it pins versions without installing them,
# so the venv holds displayd's runtime dependencies only, at the versions CI tested.
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --constraint requirements.lock /wheels/displayd-*.whl

# --- run: the venv and the time-zone data, nothing else ---
FROM python:3.11-slim

# zoneinfo needs the IANA database for campaign time zones (Asia/Ho_Chi_Minh); slim has none.
# Debian's tzdata moves with the distribution's security updates, so it is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 displayd \
    && useradd --system --uid 10001 --gid displayd --home-dir /srv/displayd --create-home displayd \
    && install -d -o 10001 -g 10001 /srv/displayd/var

COPY --from=builder /opt/venv /opt/venv
COPY deploy/entrypoint.sh /usr/local/bin/displayd-entrypoint

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TZ=UTC \
    DISPLAYD_HOST=0.0.0.0 \
    DISPLAYD_PORT=8000

# The working directory holds var/displayd.db when no PostgreSQL URL is given (mount a volume there).
WORKDIR /srv/displayd
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["displayd-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
