#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests: Debian's etcd, kube-apiserver
# and kube-controller-manager (built by build-control-plane.sh). No kubelet and no
# scheduler: kubelet_sim.py plays the kubelet.
#
# Usage: tests/kubernetes/control-plane.sh start DIR   (prints DIR/env on the last line of stdout)
#        tests/kubernetes/control-plane.sh stop DIR    (safe to call twice, or after a failed start)
#        tests/kubernetes/control-plane.sh status DIR
#
# start writes into DIR: env (source it), kubeconfig (admin), kubeconfig-<user> for each
# unprivileged user, pki/ (CA, serving cert, service-account keys), tokens.csv, *.log, *.pid.
#   SS_K8S_BIN         dir with the binaries (default: whatever build-control-plane.sh prints)
#   SS_K8S_NAMESPACES  namespaces to create, each with its `default` ServiceAccount
#                      (default "sparkscale-test")
#   SS_K8S_START_TIMEOUT  seconds to wait for each component (default 60)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "control-plane: $*" >&2; exit 1; }
log() { echo "control-plane: $*" >&2; }

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
if [ "$cmd" != start ] && [ ! -d "$2" ]; then
  [ "$cmd" = stop ] && exit 0
  echo "no control plane in $2"; exit 1
fi
mkdir -p "$2" || die "cannot create $2"
dir=$(cd "$2" && pwd)

# Each pid file names one process we started; the process must still mention DIR on its
# command line, so a recycled pid never gets killed.
ours() {  # ours PID -> true when PID is alive and was started for this DIR
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$dir/"
}

stop_one() {  # stop_one PIDFILE
  local f=$1 pid i
  pid=$(cat "$f" 2>/dev/null || true)
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      log "$(basename "$f" .pid) (pid $pid) ignored SIGTERM for 10 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do ours "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

do_stop() {
  local f
  # Clients first (kubelet_sim and anything else a test registered), then the
  # controller manager, the API server, and etcd last.
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in
      etcd.pid|kube-apiserver.pid|kube-controller-manager.pid) ;;
      *) stop_one "$f" ;;
    esac
  done
  for f in kube-controller-manager kube-apiserver etcd; do
    [ -e "$dir/$f.pid" ] && stop_one "$dir/$f.pid"
  done
  return 0
}

do_status() {
  local f n=0 pid
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if ours "$pid"; then echo "$(basename "$f" .pid) running (pid $pid)"; n=$((n + 1))
    else echo "$(basename "$f" .pid) not running"; fi
  done
  [ "$n" -gt 0 ]
}

case "$cmd" in
  stop)   do_stop; exit 0 ;;
  status) do_status; exit $? ;;
  start)  ;;
  *)      usage ;;
esac

# ---------------------------------------------------------------- start
for f in etcd kube-apiserver kube-controller-manager; do
  ours "$(cat "$dir/$f.pid" 2>/dev/null || true)" && die "$f is already running for $dir (stop it first)"
done
need_pkgs=()
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "installing the Debian packages ${need_pkgs[*]}"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2; }; } \
    || die "apt-get install ${need_pkgs[*]} failed"
fi
command -v etcd >/dev/null 2>&1 || die "etcd not found (Debian: apt-get install etcd-server)"
command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian: apt-get install openssl)"
command -v curl >/dev/null 2>&1 || die "curl not found (Debian: apt-get install curl)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"

t0=$(date +%s.%N)
if [ -n "${SS_K8S_BIN:-}" ]; then
  bin=$SS_K8S_BIN
else
  bin=$("$here/build-control-plane.sh" | tail -n 1) || die "build-control-plane.sh failed"
fi
for b in kube-apiserver kube-controller-manager; do
  [ -x "$bin/$b" ] || die "$bin/$b not found (run tests/kubernetes/build-control-plane.sh)"
done
timeout=${SS_K8S_START_TIMEOUT:-60}
namespaces=${SS_K8S_NAMESPACES:-sparkscale-test}

# A failed start leaves nothing running, and shows why.
started=0
on_fail() {
  local rc=$?
  [ "$started" = 1 ] && exit 0
  log "start failed; the last lines of each log:"
  local l
  for l in "$dir"/etcd.log "$dir"/kube-apiserver.log "$dir"/kube-controller-manager.log; do
    [ -s "$l" ] && { echo "== $l" >&2; tail -n 15 "$l" >&2; }
  done
  do_stop
  exit "$rc"
}
trap on_fail EXIT

rm -rf "$dir/etcd-data" "$dir/pki" "$dir"/*.log
mkdir -p "$dir/pki"
pki=$dir/pki

# ------------------------------------------------ free loopback ports
# Asked of the kernel all at once (port 0), so the three differ; a race with another
# process that grabs one before we bind it shows up as a start failure in the logs.
read -r etcd_port peer_port api_port < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------ certificates and keys
# A CA, and a serving certificate it signed for 127.0.0.1/localhost: clients verify
# the API server with pki/ca.crt. EC P-256 keys: fast to make.
(
  cd "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=sparkscale-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
  openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
  cat > apiserver.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
EOF
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
    -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  # Service-account token signing key pair (TokenRequest, and the controllers' own tokens).
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 600 ./*.key
) || die "openssl failed to make the certificates in $pki"
openssl verify -CAfile "$pki/ca.crt" "$pki/apiserver.crt" >/dev/null || die "the serving certificate does not verify against the CA"

# ------------------------------------------------ static tokens
tok() { openssl rand -hex 24; }
admin_token=$(tok)
kcm_token=$(tok)
user1=scaler user1_token=$(tok)
user2=viewer user2_token=$(tok)
# token,user,uid,"group1,group2"
cat > "$dir/tokens.csv" <<EOF
$admin_token,sparkscale-admin,uid-admin,"system:masters"
$kcm_token,system:kube-controller-manager,uid-kcm
$user1_token,$user1,uid-$user1,"sparkscale:testers"
$user2_token,$user2,uid-$user2,"sparkscale:testers"
EOF
chmod 600 "$dir/tokens.csv"

api=https://127.0.0.1:$api_port

kubeconfig() {  # kubeconfig FILE USER TOKEN
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sparkscale-test
  cluster:
    server: $api
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@sparkscale-test
  context:
    cluster: sparkscale-test
    user: $2
current-context: $2@sparkscale-test
EOF
  chmod 600 "$1"
}
kubeconfig "$dir/kubeconfig" sparkscale-admin "$admin_token"
kubeconfig "$dir/kubeconfig-$user1" "$user1" "$user1_token"
kubeconfig "$dir/kubeconfig-$user2" "$user2" "$user2_token"
kubeconfig "$dir/kube-controller-manager.kubeconfig" system:kube-controller-manager "$kcm_token"

launch() {  # launch NAME CMD...   (background, logs to DIR/NAME.log, pid to DIR/NAME.pid)
  local name=$1; shift
  "$@" < /dev/null > "$dir/$name.log" 2>&1 &
  echo $! > "$dir/$name.pid"
}

wait_for() {  # wait_for WHAT PIDNAME CMD...  until CMD succeeds, the process dies, or time runs out
  local what=$1 name=$2 i; shift 2
  for ((i = 0; i < timeout * 10; i++)); do
    "$@" > /dev/null 2>&1 && return 0
    ours "$(cat "$dir/$name.pid")" || die "$name exited while waiting for $what (see $dir/$name.log)"
    sleep 0.1
  done
  die "timed out after ${timeout}s waiting for $what (see $dir/$name.log)"
}

# ------------------------------------------------ etcd
launch etcd etcd \
  --name sparkscale-test \
  --data-dir "$dir/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "sparkscale-test=http://127.0.0.1:$peer_port" \
  --initial-cluster-state new \
  --experimental-watch-progress-notify-interval 500ms \
  --logger zap --log-level warn
wait_for "etcd /health" etcd curl -fsS "http://127.0.0.1:$etcd_port/health"
t_etcd=$(date +%s.%N)

# ------------------------------------------------ kube-apiserver
launch kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 \
  --advertise-address 127.0.0.1 \
  --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" \
  --tls-private-key-file "$pki/apiserver.key" \
  --token-auth-file "$dir/tokens.csv" \
  --authorization-mode Node,RBAC \
  --endpoint-reconciler-type none \
  --service-cluster-ip-range 10.0.0.0/24 \
  --service-account-issuer "https://kubernetes.default.svc" \
  --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --feature-gates SizeBasedListCostEstimate=false \
  --profiling=false \
  --v 1
wait_for "kube-apiserver /readyz" kube-apiserver \
  curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token" "$api/readyz"
t_api=$(date +%s.%N)

# ------------------------------------------------ namespaces and their default ServiceAccount
# The ServiceAccount admission plugin rejects pods in a namespace without a `default`
# ServiceAccount. The serviceaccount controller below adds one to every namespace that
# tests create later; these are made now so the first test never races it.
acurl() {  # acurl METHOD PATH [BODY]  (admin; prints the HTTP status)
  local body=${3:-}
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -X "$1" ${body:+--data "$body"} "$api$2"
}
for ns in $namespaces; do
  code=$(acurl POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}")
  case "$code" in 201|409) ;; *) die "creating namespace $ns: HTTP $code" ;; esac
  code=$(acurl POST "/api/v1/namespaces/$ns/serviceaccounts" '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}')
  case "$code" in 201|409) ;; *) die "creating serviceaccount $ns/default: HTTP $code" ;; esac
done

# ------------------------------------------------ kube-controller-manager
# Only what scaling needs: Deployments, ReplicaSets, StatefulSets; the garbage collector
# (deleting a Deployment removes its ReplicaSets and their pods); the serviceaccount
# controller (a `default` ServiceAccount in every new namespace). Each controller runs
# with its own ServiceAccount's token (from TokenRequest), as in a real cluster.
launch kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
  --controllers deployment-controller,replicaset-controller,statefulset-controller,garbage-collector-controller,serviceaccount-controller \
  --use-service-account-credentials=true \
  --leader-elect=false \
  --bind-address 127.0.0.1 \
  --secure-port 0 \
  --kube-api-qps 100 --kube-api-burst 200 \
  --profiling=false \
  --v 1
# Ready when each controller has made its ServiceAccount in kube-system, which it does
# as it starts.
sa_exists() { [ "$(acurl GET "/api/v1/namespaces/kube-system/serviceaccounts/$1")" = 200 ]; }
for sa in deployment-controller replicaset-controller statefulset-controller; do
  wait_for "kube-controller-manager to start $sa" kube-controller-manager sa_exists "$sa"
done
t_kcm=$(date +%s.%N)

cat > "$dir/env" <<EOF
# Written by tests/kubernetes/control-plane.sh start $dir
export SS_K8S_DIR='$dir'
export SS_K8S_BIN='$bin'
export SS_K8S_API='$api'
export SS_K8S_CA='$pki/ca.crt'
export SS_K8S_ADMIN_TOKEN='$admin_token'
export SS_K8S_KUBECONFIG='$dir/kubeconfig'
export SS_K8S_USER1='$user1'
export SS_K8S_USER1_TOKEN='$user1_token'
export SS_K8S_USER1_KUBECONFIG='$dir/kubeconfig-$user1'
export SS_K8S_USER2='$user2'
export SS_K8S_USER2_TOKEN='$user2_token'
export SS_K8S_USER2_KUBECONFIG='$dir/kubeconfig-$user2'
export SS_K8S_NAMESPACES='$namespaces'
export SS_K8S_NAMESPACE='${namespaces%% *}'
export SS_K8S_ETCD='http://127.0.0.1:$etcd_port'
EOF
chmod 600 "$dir/env"   # it holds the admin token
started=1
trap - EXIT
elapsed() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
log "up in $(elapsed "$t0" "$t_kcm") s (etcd $(elapsed "$t0" "$t_etcd") s, kube-apiserver ready $(elapsed "$t_etcd" "$t_api") s, controllers $(elapsed "$t_api" "$t_kcm") s); API $api"
echo "$dir/env"
