# One image for CodeMentor's processes (docker-compose.yml runs each as its own service):
#   the API            hypercorn 'backend.app:create_app()'  as uid 10001, no privileges
#   the job worker     python -m backend worker              as uid 10001, no privileges
#   the sandbox runner python -m backend sandbox             as root in a container of its own, because it
#                      gives every slot its own uid and starts bubblewrap (SETUP.md, "Containers")
# Debian's python3 (3.11, /usr/bin/python3) on purpose: inside bubblewrap the sandbox sees only /usr, and
# the official python images keep their interpreter in /usr/local (and have no bubblewrap).
# Every dependency is installed here, at build time; nothing is installed when a container starts.

ARG DEBIAN_IMAGE=debian:12.11-slim

# --- build: the virtualenv (wheels from PyPI) and the sandbox's pinned TypeScript compiler ---------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv npm \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -r /tmp/requirements.txt
COPY backend/integrations/sandbox/languages/typescript/package.json \
     backend/integrations/sandbox/languages/typescript/package-lock.json /opt/typescript/
RUN cd /opt/typescript && npm ci --no-audit --no-fund --loglevel=error

# --- runtime -----------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}
# bubblewrap, and util-linux's prlimit/setpriv and procps' kill, are what the runner wraps each run in;
# nodejs grades the JavaScript and TypeScript exercises; golang-go the Go ones.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 bubblewrap util-linux procps nodejs golang-go ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 codementor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin \
        codementor
# The JDK grades the Java exercises (javac and java, both run in the sandbox); openjdk's postinst needs the
# man directory that the slim image leaves out.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/*
# g++ grades the C++ exercises (it compiles in the sandbox, linking with binutils' gold); clang-format
# checks their style (the style part of the grade; without it C++ style is not scored).
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ binutils clang-format \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
COPY backend ./backend
COPY --from=build /opt/typescript/node_modules ./backend/integrations/sandbox/languages/typescript/node_modules
# Compiled once here: the containers run with a read-only root file system.
RUN python3 -m compileall -q backend alembic
USER 10001:10001
EXPOSE 8000
ENV HOST=0.0.0.0 PORT=8000
CMD ["python", "-m", "backend", "serve"]
