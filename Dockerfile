# syntax=docker/dockerfile:1
#
# Aptic application image: one image for every role (web, worker, beat, migrate); the role is
# picked by the command. Default command: gunicorn on port 8000.
#
#   docker build -t aptic .
#   docker run --rm -e SECRET_KEY=... -e DATABASE_URL=... -p 8000:8000 aptic
#
# Migrations are not run here: docker-compose.yml runs them in a one-shot `migrate` service.

FROM python:3.11-slim-bookworm

# PYTHONPATH=/app: the project is also pip-installed, but settings derive BASE_DIR (templates,
# static, locale) from the location of aptic/settings.py, so every process (gunicorn, celery,
# manage.py) must import the project packages from /app, not from site-packages.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=aptic.settings

# WeasyPrint runtime libraries (Pango, HarfBuzz) and the fonts the PDFs are rendered with.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpango-1.0-0 \
        libpangoft2-1.0-0 \
        libharfbuzz0b \
        libharfbuzz-subset0 \
        fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system aptic \
    && useradd --system --gid aptic --create-home --home-dir /home/aptic --shell /usr/sbin/nologin aptic

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so this layer is reused while only code changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

# Static files are collected (hashed and compressed by whitenoise's manifest storage) at build
# time. The settings refuse to load without SECRET_KEY when DEBUG is off: this throwaway value
# exists only in the environment of this RUN step and never reaches the final image config.
RUN SECRET_KEY=collectstatic-build-only-not-a-secret DEBUG=0 STATIC_MANIFEST=1 \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/media \
    && chown aptic:aptic /app/media

USER aptic

EXPOSE 8000

# Shell form so the WEB_* variables are read at container start; exec so gunicorn gets the
# signals. Threaded workers by default: they hold slow clients without blocking a process, and
# their liveness heartbeat does not wait on a request, so a long streamed export (a million rows)
# is not killed by the worker timeout. A container that serves only the scanning API behind a
# buffering reverse proxy can take WEB_WORKER_CLASS=sync: bench/redeem.py measures the same
# throughput with a p99 under half the threaded workers' (see the README's benchmarks). Sync
# workers get one thread: with more, gunicorn would quietly run threaded workers instead.
CMD ["sh", "-c", "class=${WEB_WORKER_CLASS:-gthread}; threads=${WEB_THREADS:-4}; if [ \"$class\" = sync ]; then threads=1; fi; exec gunicorn aptic.wsgi:application --bind 0.0.0.0:8000 --worker-class \"$class\" --workers ${WEB_CONCURRENCY:-4} --threads \"$threads\" --access-logfile -"]
