# supportbot: `docker build -t supportbot .` then
#   docker run -p 3000:3000 -v supportbot-data:/data \
#     -e SLACK_BOT_TOKEN=... -e SLACK_SIGNING_SECRET=... [-e GEMINI_API_KEY=...] supportbot
# Migrations: `docker run --rm -v supportbot-data:/data supportbot supportbot db upgrade`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000 \
    DATABASE_URL=sqlite+aiosqlite:////data/supportbot.db

RUN groupadd --system --gid 10001 supportbot \
    && useradd --system --uid 10001 --gid supportbot --home-dir /home/supportbot \
        --create-home --shell /usr/sbin/nologin supportbot \
    && mkdir -p /data \
    && chown supportbot:supportbot /data

WORKDIR /app

# Dependencies first (pinned by constraints.txt), so that code changes reuse this layer.
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY pipelines ./pipelines
COPY storage ./storage
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf /app/build /app/*.egg-info

USER supportbot
VOLUME ["/data"]
EXPOSE 3000

# No curl in the slim image: probe /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["supportbot", "serve"]
