#!/bin/sh
# The compose cluster's broker (docker-compose.yml, service kafka): one KRaft node with
# the same security as the local broker of ops/kafka/broker.py, over TLS because other
# containers and the host reach it:
#
#   INTERNAL  kafka:9092      SASL_SSL, SCRAM-SHA-512   (containers)
#   HOST      :29092          SASL_SSL, SCRAM-SHA-512   (published on the host's loopback)
#   CONTROLLER 127.0.0.1:9093 SASL_PLAINTEXT, PLAIN     (this container only)
#
# StandardAuthorizer, allow.everyone.if.no.acl.found=false, relais-admin and the
# controller user are super users. The SCRAM credentials of relais-admin (which the
# broker uses to talk to itself) and relais-hub are written when the storage is first
# formatted; `relais kafka grant-hub` (service topics) then gives relais-hub its ACLs.
set -eu
: "${RELAIS_KAFKA_ADMIN_PASSWORD:?set RELAIS_KAFKA_ADMIN_PASSWORD}"
: "${RELAIS_KAFKA_HUB_PASSWORD:?set RELAIS_KAFKA_HUB_PASSWORD}"
: "${KAFKA_CONTROLLER_PASSWORD:?set KAFKA_CONTROLLER_PASSWORD}"
: "${KAFKA_TLS_PASSWORD:?set KAFKA_TLS_PASSWORD}"
: "${CLUSTER_ID:?set CLUSTER_ID (22 characters, kafka-storage random-uuid)}"
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
TLS_DIR="${TLS_DIR:-/tls}"
DATA_DIR="${KAFKA_DATA_DIR:-/var/lib/kafka/data}"
CONFIG="${KAFKA_CONFIG:-/tmp/relais-server.properties}"
INTERNAL="${KAFKA_INTERNAL_ADDRESS:-kafka:9092}"
HOST="${KAFKA_HOST_ADDRESS:-localhost:29092}"
INTERNAL_PORT="${KAFKA_INTERNAL_PORT:-9092}"
HOST_PORT="${KAFKA_HOST_PORT:-29092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
SCRAM=org.apache.kafka.common.security.scram.ScramLoginModule
PLAIN=org.apache.kafka.common.security.plain.PlainLoginModule

umask 077
cat > "$CONFIG" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=INTERNAL://:${INTERNAL_PORT},HOST://:${HOST_PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=INTERNAL://${INTERNAL},HOST://${HOST}
listener.security.protocol.map=INTERNAL:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=${SCRAM} required username="relais-admin" password="${RELAIS_KAFKA_ADMIN_PASSWORD}";
listener.name.host.scram-sha-512.sasl.jaas.config=${SCRAM} required;
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=${PLAIN} required username="relais-controller" password="${KAFKA_CONTROLLER_PASSWORD}" user_relais-controller="${KAFKA_CONTROLLER_PASSWORD}";
ssl.keystore.type=PKCS12
ssl.keystore.location=${TLS_DIR}/kafka.p12
ssl.keystore.password=${KAFKA_TLS_PASSWORD}
ssl.key.password=${KAFKA_TLS_PASSWORD}
ssl.truststore.type=PKCS12
ssl.truststore.location=${TLS_DIR}/kafka.p12
ssl.truststore.password=${KAFKA_TLS_PASSWORD}
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:relais-admin;User:relais-controller
log.dirs=${DATA_DIR}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES

"$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" \
  --config "$CONFIG" \
  --add-scram "SCRAM-SHA-512=[name=relais-admin,password=${RELAIS_KAFKA_ADMIN_PASSWORD}]" \
  --add-scram "SCRAM-SHA-512=[name=relais-hub,password=${RELAIS_KAFKA_HUB_PASSWORD}]"
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG"
