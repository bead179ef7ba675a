#!/usr/bin/env bash
# Builds the local Apache Kafka test image without pulling anything from an image registry:
# a Debian rootfs from debootstrap (with a headless JRE) plus the Kafka jars resolved from
# Maven, imported with `docker import`. Skips the build when the image with the same inputs
# already exists.
#
# Usage: build-image.sh            build if missing, print the tag
#        build-image.sh --force    rebuild
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
image="${STREAMTIME_KAFKA_IMAGE:-streamtime/kafka:$kafka_version}"
# The inputs' hash is stored as a label so an edited start script or pom triggers a rebuild.
inputs_hash="$(cat "$here/pom.xml" "$here/start-kafka.sh" "$here/log4j2.yaml" "$here/build-image.sh" \
  | sha256sum | cut -c1-16)"
force=0
[ "${1:-}" = "--force" ] && force=1

"$here/ensure-docker.sh"

existing="$(docker image inspect -f '{{ index .Config.Labels "streamtime.inputs" }}' "$image" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$existing" = "$inputs_hash" ]; then
  echo "build-image: $image is up to date (inputs $inputs_hash)"
  exit 0
fi

# The Debian mirror is whatever this machine's apt is configured with, never a fixed host.
mirror="$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm\/main$/ {print $2; exit}')"
if [ -z "$mirror" ]; then
  mirror="$(grep -rhoE '^(deb|URIs:)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | awk '{print $2; exit}')"
fi
if [ -z "$mirror" ]; then
  echo "build-image: cannot find a Debian mirror in the apt configuration" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/streamtime-kafka-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
start=$(date +%s)

echo "build-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$rootfs" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }
echo "build-image: rootfs ready after $(( $(date +%s) - start )) s"

echo "build-image: resolving Kafka $kafka_version jars with Maven"
mkdir -p "$rootfs/opt/kafka/libs"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$rootfs/opt/kafka/libs"
install -m 0755 "$here/start-kafka.sh" "$rootfs/opt/kafka/start-kafka.sh"
install -m 0644 "$here/log4j2.yaml" "$rootfs/opt/kafka/log4j2.yaml"

# Documentation, locales and apt caches are dead weight in a test broker image.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

echo "build-image: importing $image"
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/opt/kafka/start-kafka.sh"]' \
  --change 'EXPOSE 9092' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "LABEL streamtime.inputs=$inputs_hash streamtime.kafka.version=$kafka_version" \
  - "$image" >/dev/null
echo "build-image: built $image in $(( $(date +%s) - start )) s"
