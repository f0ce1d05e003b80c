#!/bin/sh
# Container entry point: migrate the database, then hand the process over to displayd.
#
#   displayd-entrypoint serve --host 0.0.0.0      (the image's default)
#   displayd-entrypoint db upgrade                 (compose's one-shot migration service)
#
# `serve` migrates first unless DISPLAYD_SKIP_MIGRATIONS=1 (compose sets it: its one-shot
# `migrate` service has already run, and two replicas need not race to do it again; Alembic's
# upgrade is idempotent anyway). `exec` makes displayd PID 1's child-free successor, so
# SIGTERM from `docker stop` reaches it and it shuts down cleanly.
set -eu

if [ "${1:-serve}" = "serve" ] && [ "${DISPLAYD_SKIP_MIGRATIONS:-0}" != "1" ]; then
    displayd db upgrade
fi
exec displayd "$@"
