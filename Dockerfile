# One image for every production role: api, worker, scheduler and the one-shot migrate job.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini worker.py ./
COPY dispatcher ./dispatcher
COPY alembic ./alembic
COPY templates ./templates
COPY rosters ./rosters
# Debian's Chromium and Noto CJK render the 一事一档 PDF (the `pdf` extra drives them through Playwright).
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fontconfig \
    && rm -rf /var/lib/apt/lists/*
ENV JIAOYING_CHROMIUM_PATH=/usr/bin/chromium
RUN pip install --no-cache-dir -e ".[pdf]" && useradd --system --home /app jiaoying
USER jiaoying
EXPOSE 8000
CMD ["uvicorn", "--factory", "dispatcher.api.app:production_app", "--host", "0.0.0.0", "--port", "8000"]
