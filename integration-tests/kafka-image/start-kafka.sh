#!/bin/sh
# Entry point of the streamtime test broker: formats KRaft storage once and runs a single
# combined broker+controller. The advertised host/port come from the environment because a
# test container only learns its mapped port after it starts (see the harness).
set -eu

ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-localhost}"
ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-${KAFKA_PORT:-9092}}"
# A file written by the harness after the port is mapped overrides the environment.
if [ -n "${KAFKA_ADVERTISED_FILE:-}" ]; then
  while [ ! -s "$KAFKA_ADVERTISED_FILE" ]; do sleep 0.1; done
  ADVERTISED_PORT="$(cat "$KAFKA_ADVERTISED_FILE")"
fi
DATA_DIR="${KAFKA_DATA_DIR:-/var/lib/kafka}"
# The local-JVM fallback runs beside other services, so its ports are configurable.
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((PORT + 1))
INTERNAL_PORT=$((PORT + 2))
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
CONF="${KAFKA_CONF:-$KAFKA_HOME/server.properties}"

mkdir -p "$DATA_DIR"
cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://0.0.0.0:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT},INTERNAL://127.0.0.1:${INTERNAL_PORT}
advertised.listeners=PLAINTEXT://${ADVERTISED_HOST}:${ADVERTISED_PORT},INTERNAL://127.0.0.1:${INTERNAL_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
log.dirs=${DATA_DIR}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
log.segment.bytes=67108864
PROPS

if [ ! -f "$DATA_DIR/meta.properties" ]; then
  java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format \
    --config "$CONF" --cluster-id "${KAFKA_CLUSTER_ID:-c3RyZWFtdGltZS10ZXN0}" \
    --ignore-formatted >/dev/null
fi

export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.yaml" \
  -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$CONF"
