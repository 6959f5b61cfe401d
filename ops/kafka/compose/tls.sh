#!/bin/sh
# One-shot (docker-compose.yml, service kafka-tls): a private CA and the broker's
# certificate, for the SASL_SSL listeners of the compose cluster. Idempotent: an
# existing CA and keystore are kept. Needs keytool (any Java runtime).
#
#   /tls/ca.pem       the CA certificate: clients' RELAIS_KAFKA_CA_FILE
#   /tls/kafka.p12    the broker's key and certificate (SAN kafka, localhost), PKCS12
#   /tls/ca.p12       the CA's key: keep it, or delete the volume to start again
set -eu
: "${KAFKA_TLS_PASSWORD:?set KAFKA_TLS_PASSWORD (the keystores password)}"
DIR="${TLS_DIR:-/tls}"
DAYS="${TLS_DAYS:-825}"
cd "$DIR"
if [ -s kafka.p12 ] && [ -s ca.pem ]; then
  echo "kafka-tls: keeping the existing CA and broker certificate in $DIR"
  exit 0
fi
rm -f ca.p12 ca.pem kafka.p12 kafka.csr kafka.pem
keytool -genkeypair -noprompt -alias ca -dname "CN=Relais Kafka CA" -keyalg RSA -keysize 3072 \
  -validity "$DAYS" -ext bc:c -keystore ca.p12 -storetype PKCS12 -storepass "$KAFKA_TLS_PASSWORD"
keytool -exportcert -rfc -alias ca -keystore ca.p12 -storepass "$KAFKA_TLS_PASSWORD" -file ca.pem
keytool -genkeypair -noprompt -alias kafka -dname "CN=kafka" -keyalg RSA -keysize 3072 \
  -validity "$DAYS" -keystore kafka.p12 -storetype PKCS12 -storepass "$KAFKA_TLS_PASSWORD"
keytool -certreq -alias kafka -keystore kafka.p12 -storepass "$KAFKA_TLS_PASSWORD" -file kafka.csr
keytool -gencert -rfc -alias ca -keystore ca.p12 -storepass "$KAFKA_TLS_PASSWORD" \
  -infile kafka.csr -outfile kafka.pem -validity "$DAYS" \
  -ext "SAN=dns:kafka,dns:localhost" -ext "EKU=serverAuth" -ext "KU=digitalSignature,keyEncipherment"
keytool -importcert -noprompt -alias ca -file ca.pem -keystore kafka.p12 \
  -storepass "$KAFKA_TLS_PASSWORD"
keytool -importcert -noprompt -alias kafka -file kafka.pem -keystore kafka.p12 \
  -storepass "$KAFKA_TLS_PASSWORD"
rm -f kafka.csr kafka.pem
chmod 0644 ca.pem
chmod 0640 ca.p12 kafka.p12
echo "kafka-tls: CA and broker certificate written to $DIR"
