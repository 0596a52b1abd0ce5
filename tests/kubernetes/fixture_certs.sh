#!/usr/bin/env bash
# Certificates for the fixture API server's TLS cases, into DIR:
#   ca.crt/ca.key         the CA the client trusts
#   good.crt/good.key     signed by it for 127.0.0.1 and localhost
#   wrong.crt/wrong.key   signed by it for wrong.example only (a name mismatch)
#   other-ca.crt          a CA nobody used: trusting only it, every server is untrusted
# Usage: tests/kubernetes/fixture_certs.sh DIR
set -euo pipefail
dir=${1:?usage: fixture_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ca() {  # ca NAME CN
  ec "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1.crt" 2>/dev/null
}
leaf() {  # leaf NAME SAN
  ec "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
ca ca sparkscale-fixture-ca
ca other-ca sparkscale-untrusted-ca
leaf good "IP:127.0.0.1,DNS:localhost"
leaf wrong "DNS:wrong.example"
chmod 600 ./*.key
