#!/usr/bin/env bash
# Generates the TLS material of the connection-security tests into DIR, fresh each run (nothing is
# committed): a CA (ca.pem), a server certificate it signs for localhost and 127.0.0.1
# (server.pem, server.key), a client certificate it signs (client.pem, client.key) and a second,
# unrelated CA (other-ca.pem) that trusts neither. EC P-256 keys, valid for two days.
set -euo pipefail
dir="$1"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name CN extensions
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days 2 -extfile "$1.ext" 2>/dev/null
}
ca ca dt-test-ca
ca other-ca dt-test-other-ca
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client dt-test-client "extendedKeyUsage=clientAuth"
