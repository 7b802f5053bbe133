#!/bin/sh
# Create the project's virtual environment in .venv and install Stadspuls into it, with every
# dependency at the exact version and hash that requirements.lock records.
# Installs Debian's python3-venv first when the interpreter cannot make one (root only).
set -eu
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LOCK=${LOCK:-requirements.lock}

if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "stadspuls: installing python3-venv"
        apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y install python3-venv
    else
        echo "stadspuls: $PYTHON cannot create a virtual environment; install python3-venv" >&2
        exit 1
    fi
fi
"$PYTHON" -m venv "$VENV"
# Hash-checking mode: a package whose file differs from the one locked is refused.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$LOCK"
# The project itself, built with the locked setuptools instead of whatever an isolated build
# environment would fetch.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
"$VENV/bin/pip" check
