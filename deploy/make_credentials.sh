#!/usr/bin/env bash
# Makes the files of the psrec-credentials Secret in DIR: a new CA (ca.crt; its key stays in
# DIR/ca.key, which the Secret must not include), one certificate and key that every role uses as
# server and client (tls.crt, tls.key), and a random shared token (token).
#
#   deploy/make_credentials.sh DIR [NAMESPACE] [DAYS] [SERVERS]
#
# The certificate names every address the roles dial: psrec-coordinator, and psrec-ps-<i>.psrec-ps
# for i < SERVERS (default 16; a certificate must be made anew for more servers), each also as
# <name>.<NAMESPACE>, <name>.<NAMESPACE>.svc and <name>.<NAMESPACE>.svc.cluster.local (NAMESPACE:
# default). No wildcards: gRPC refuses *.psrec-ps for psrec-ps-0.psrec-ps ("Invalid toplevel
# subdomain"), and logs that error for every wildcard name while it checks psrec-ps-0.psrec-ps.
# Then, for a cluster:
#   kubectl create secret generic psrec-credentials --from-file=DIR/token --from-file=DIR/tls.crt \
#     --from-file=DIR/tls.key --from-file=DIR/ca.crt
# Never commit these files.
set -euo pipefail
dir=${1:?usage: deploy/make_credentials.sh DIR [NAMESPACE] [DAYS] [SERVERS]}
namespace=${2:-default}
days=${3:-365}
servers=${4:-16}
command -v openssl >/dev/null || { echo "make_credentials: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

names=(psrec-coordinator)
for ((i = 0; i < servers; i++)); do names+=("psrec-ps-$i.psrec-ps"); done
sans=""
for name in "${names[@]}"; do
  for suffix in "" ".$namespace" ".$namespace.svc" ".$namespace.svc.cluster.local"; do
    sans+="${sans:+,}DNS:$name$suffix"
  done
done
cat >leaf.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$sans
EOF
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
{
  openssl req -x509 "${ec[@]}" -days "$days" -subj "/CN=psrec CA" -keyout ca.key -out ca.crt
  openssl req -new "${ec[@]}" -subj "/CN=psrec" -keyout tls.key -out tls.csr
  openssl x509 -req -days "$days" -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -extfile leaf.ext -out tls.crt
} 2>openssl.log || { cat openssl.log >&2; echo "make_credentials: openssl failed in $dir" >&2; exit 1; }
openssl rand -hex 32 >token
rm -f tls.csr leaf.ext ca.srl openssl.log
chmod 0644 ca.crt tls.crt
echo "make_credentials: $dir/{token,tls.crt,tls.key,ca.crt} (and ca.key, which stays out of the Secret)" >&2
