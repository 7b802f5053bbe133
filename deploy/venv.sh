#!/bin/sh
# Create the project's virtual environment in .venv and install Stadspuls into it.
# Installs Debian's python3-venv first when the interpreter cannot make one (root only).
set -eu
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

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
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[dev]'
