# Videoflix: `docker build -t videoflix .` builds the app image (gunicorn by default, or
# `flask --app wsgi worker` / `flask --app wsgi db upgrade`); `--target nginx` builds the front proxy
# with the static files baked in. See docker-compose.yml and README.md.
# Needs BuildKit (build secrets); no `# syntax=` line, so no frontend image is pulled from a registry.
# Without a registry: `make images` builds the three bases below from Debian's packages
# (deploy/images/). Behind a TLS-intercepting proxy: `--secret id=extra_ca,src=bundle.pem` (apt, pip
# and npm trust it during the build; it is never copied into an image); PIP_INDEX_URL and
# NPM_REGISTRY name mirrors.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NGINX_IMAGE=nginx:1.27-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- assets: browser libraries from npm
# tus-js-client for the back office's resumable uploads and uPlot for its charts, at the versions player/package-lock.json pins
# (no CDN); the same file `make player-deps` copies for a checkout.
FROM ${NODE_IMAGE} AS assets
ARG NPM_REGISTRY=https://registry.npmjs.org/
WORKDIR /assets
COPY player/package.json player/package-lock.json ./
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca; fi \
    && npm ci --ignore-scripts --no-audit --no-fund --registry "$NPM_REGISTRY"

# ---------------------------------------------------------------- builder: wheels and the venv
FROM ${PYTHON_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG PIP_INDEX_URL=https://pypi.org/simple
# Compilers only for a dependency that has no wheel for this platform; this stage is thrown away.
# The extra CA (if any) goes into a bundle in /tmp for this RUN alone, beside the system's.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem 2>/dev/null \
            || cp /run/secrets/extra_ca /tmp/ca.pem; \
        echo 'Acquire::https::CAInfo "/tmp/ca.pem";' > /etc/apt/apt.conf.d/99extra-ca; \
    fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/99extra-ca /tmp/ca.pem
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt ./
# Every dependency becomes a wheel here, then installs from those wheels alone (--no-index), so
# the venv holds exactly what requirements.txt pins. FFMPEG=debian (the default): the final image
# runs Debian's ffmpeg, so the copy bundled in imageio-ffmpeg (~165 MB) is dropped; FFMPEG=wheel
# (`make images`): that copy becomes /opt/venv/bin/ffmpeg and Debian's (~650 MB with its libraries)
# is not installed. The venv's own pip makes the wheels (a base image needs only python and its venv
# module), then leaves the venv with pip and setuptools.
ARG FFMPEG=debian
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem 2>/dev/null \
            || cp /run/secrets/extra_ca /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-cache-dir --index-url "$PIP_INDEX_URL" --wheel-dir /wheels -r requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt \
    && for binaries in /opt/venv/lib/python3*/site-packages/imageio_ffmpeg/binaries; do \
        if [ "$FFMPEG" = wheel ]; then mv "$binaries"/ffmpeg-* /opt/venv/bin/ffmpeg; fi; \
        rm -rf "${binaries:?}"/*; \
    done \
    && rm -f /tmp/ca.pem \
    && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools
# Static files for nginx: Flask-Admin's assets, and the app's own if it has any.
COPY videoflix ./videoflix
COPY --from=assets /assets/node_modules/tus-js-client/dist/tus.min.js ./videoflix/static/vendor/tus.min.js
COPY --from=assets /assets/node_modules/uplot/dist/uPlot.iife.min.js /assets/node_modules/uplot/dist/uPlot.min.css ./videoflix/static/vendor/
RUN mkdir -p /srv/static/admin /srv/static/app \
    && cp -r /opt/venv/lib/python3*/site-packages/flask_admin/static/. /srv/static/admin/ \
    && if [ -d videoflix/static ]; then cp -r videoflix/static/. /srv/static/app/; fi

# ---------------------------------------------------------------- nginx: the front proxy
FROM ${NGINX_IMAGE} AS nginx
COPY --from=builder /srv/static /srv/static
# The official image sources /docker-entrypoint.d/*.envsh (NGINX_MAX_BODY_MB from MAX_UPLOAD_MB),
# then renders /etc/nginx/templates/*.template with envsubst (NGINX_MAX_BODY_MB, APP_UPSTREAM, S3_UPSTREAM);
# nginx's own $variables are left alone. The two snippets are shared with deploy/nginx/videoflix.conf.
COPY deploy/nginx/compose.conf.template /etc/nginx/templates/default.conf.template
COPY deploy/nginx/protected-media.conf deploy/nginx/proxy-app.conf /etc/nginx/videoflix/
COPY deploy/nginx/protected-s3.conf /etc/nginx/videoflix/
COPY --chmod=755 deploy/nginx/body-size.envsh /docker-entrypoint.d/15-videoflix-body-size.envsh
ENV MAX_UPLOAD_MB=4096 \
    APP_UPSTREAM=web:8000 \
    S3_UPSTREAM=127.0.0.1:8333 \
    NGINX_PORT=80
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${NGINX_PORT}/nginx-health\""]

# ---------------------------------------------------------------- runtime: the app (default target)
FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
ARG FFMPEG=debian
# ffmpeg from Debian (or the wheel's, FFMPEG=wheel) does the transcoding; nothing else is installed,
# and no compiler.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem 2>/dev/null \
            || cp /run/secrets/extra_ca /tmp/ca.pem; \
        echo 'Acquire::https::CAInfo "/tmp/ca.pem";' > /etc/apt/apt.conf.d/99extra-ca; \
    fi \
    && if [ "$FFMPEG" = debian ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends ffmpeg \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && rm -rf /tmp/ca.pem /etc/apt/apt.conf.d/99extra-ca \
    && groupadd --system --gid "${APP_UID}" videoflix \
    && useradd --system --uid "${APP_UID}" --gid videoflix --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin videoflix \
    && install -d -o videoflix -g videoflix -m 0755 /srv/media \
    && install -d -o videoflix -g videoflix -m 0750 /app/instance
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi \
    VIDEOFLIX_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    MEDIA_ROOT=/srv/media \
    IMAGEIO_FFMPEG_EXE=ffmpeg
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The code belongs to root and is only readable by the app's user: a compromised process cannot
# rewrite it. Compiled ahead, since the user cannot write __pycache__ at run time.
COPY wsgi.py gunicorn.conf.py ./
COPY migrations ./migrations
COPY videoflix ./videoflix
COPY --from=assets /assets/node_modules/tus-js-client/dist/tus.min.js ./videoflix/static/vendor/tus.min.js
COPY --from=assets /assets/node_modules/uplot/dist/uPlot.iife.min.js /assets/node_modules/uplot/dist/uPlot.min.css ./videoflix/static/vendor/
RUN python -m compileall -q /app/videoflix /app/wsgi.py
# Numeric, so an orchestrator can verify it is not root (runAsNonRoot) without the passwd file.
USER ${APP_UID}:${APP_UID}
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health/' % os.environ.get('PORT', '8000'), timeout=8)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
