#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, starting Debian's dockerd if needed.
# Exits non-zero with a clear message when no engine can be had.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
log="${DOCKERD_LOG:-/tmp/streamtime-dockerd.log}"
echo "ensure-docker: starting dockerd (log: $log)"
# setsid detaches dockerd from this script's process group so CI job control cannot stop it.
setsid dockerd >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "ensure-docker: dockerd is up"
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not come up within 60 s; last log lines:" >&2
tail -n 20 "$log" >&2 || true
exit 1
