#!/bin/sh
# Entry point of the streamtime test broker: formats KRaft storage once and runs a single
# combined broker+controller. The advertised host/port come from the environment because a
# test container only learns its mapped port after it starts (see the harness).
#
# KAFKA_SECURITY=sasl_ssl secures the client listener instead: TLS with a CA and a broker
# certificate generated at start (the CA certificate is written to $KAFKA_TLS_DIR/ca.pem for
# clients to trust), SASL/SCRAM-SHA-512 users from KAFKA_SCRAM_USERS (`name=password,...`),
# and the standard authorizer with no access unless an ACL grants it. `admin` and the
# principal of the container-local PLAINTEXT listeners are super users.
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

SECURITY="${KAFKA_SECURITY:-plaintext}"
TLS_DIR="${KAFKA_TLS_DIR:-/tmp/tls}"

mkdir -p "$DATA_DIR"
case "$SECURITY" in
  plaintext) CLIENT=PLAINTEXT ;;
  sasl_ssl) CLIENT=SASL_SSL ;;
  *) echo "start-kafka: KAFKA_SECURITY must be plaintext or sasl_ssl, not $SECURITY" >&2; exit 1 ;;
esac
cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=${CLIENT}://0.0.0.0:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT},INTERNAL://127.0.0.1:${INTERNAL_PORT}
advertised.listeners=${CLIENT}://${ADVERTISED_HOST}:${ADVERTISED_PORT},INTERNAL://127.0.0.1:${INTERNAL_PORT}
listener.security.protocol.map=${CLIENT}:${CLIENT},CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT
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

scram=""
if [ "$SECURITY" = sasl_ssl ]; then
  # A fresh CA and broker certificate per container: nothing secret lives in the image.
  mkdir -p "$TLS_DIR"
  pass="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  if [ ! -f "$TLS_DIR/broker.p12" ]; then
    keytool -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 7 -dname CN=streamtime-test-ca \
      -ext bc:c -keystore "$TLS_DIR/ca.p12" -storetype PKCS12 -storepass "$pass" >/dev/null 2>&1
    keytool -exportcert -rfc -alias ca -keystore "$TLS_DIR/ca.p12" -storepass "$pass" \
      -file "$TLS_DIR/ca.pem" >/dev/null 2>&1
    keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 7 -dname CN=localhost \
      -keystore "$TLS_DIR/broker.p12" -storetype PKCS12 -storepass "$pass" >/dev/null 2>&1
    keytool -certreq -alias broker -keystore "$TLS_DIR/broker.p12" -storepass "$pass" 2>/dev/null \
      | keytool -gencert -alias ca -keystore "$TLS_DIR/ca.p12" -storepass "$pass" -validity 7 -rfc \
          -ext "SAN=dns:localhost,ip:127.0.0.1" > "$TLS_DIR/broker.pem" 2>/dev/null
    keytool -importcert -noprompt -alias ca -file "$TLS_DIR/ca.pem" -keystore "$TLS_DIR/broker.p12" \
      -storepass "$pass" >/dev/null 2>&1
    keytool -importcert -noprompt -alias broker -file "$TLS_DIR/broker.pem" \
      -keystore "$TLS_DIR/broker.p12" -storepass "$pass" >/dev/null 2>&1
    echo "$pass" > "$TLS_DIR/store-password"
  fi
  pass="$(cat "$TLS_DIR/store-password")"
  cat >> "$CONF" <<PROPS
ssl.keystore.location=${TLS_DIR}/broker.p12
ssl.keystore.type=PKCS12
ssl.keystore.password=${pass}
ssl.key.password=${pass}
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
PROPS
  # SCRAM credentials are part of the bootstrap metadata written by the format below.
  old_ifs="$IFS"; IFS=','
  for user in ${KAFKA_SCRAM_USERS:-admin=admin-secret}; do
    scram="$scram --add-scram SCRAM-SHA-512=[name=${user%%=*},password=${user#*=}]"
  done
  IFS="$old_ifs"
fi

if [ ! -f "$DATA_DIR/meta.properties" ]; then
  # shellcheck disable=SC2086 # $scram holds separate arguments.
  java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format \
    --config "$CONF" --cluster-id "${KAFKA_CLUSTER_ID:-c3RyZWFtdGltZS10ZXN0}" \
    --ignore-formatted $scram >/dev/null
fi

export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.yaml" \
  -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$CONF"
