#!/usr/bin/env bash
# Installs the real components the test suite starts beside PostgreSQL, from Debian's packages,
# when they are missing: PgBouncer (the transaction-pooling tests). Needs root (or sudo).
set -euo pipefail
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  echo "install-test-components: pgbouncer is installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends pgbouncer \
  || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends pgbouncer; }
# The package enables a system service; the tests start their own PgBouncer on a free port.
$SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
echo "install-test-components: installed $(/usr/sbin/pgbouncer --version | head -1)"
