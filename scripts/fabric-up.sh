#!/usr/bin/env bash
# Starts a local Hyperledger Fabric 2.5 network natively on 127.0.0.1 (no Docker)
# for the ledger's Fabric anchoring: one etcdraft orderer (OrdererMSP), one peer
# (peer0.org1.example.com, Org1MSP), channel `ordergrid`, and the
# chaincode-as-a-service chaincode `anchors` (label anchors_1) installed,
# approved and committed; then starts the chaincode server.
#
#   scripts/fabric-up.sh DIR        # scripts/fabric-down.sh DIR stops it
#
# Everything goes under DIR: crypto/ (cryptogen), configtx/ and ordergrid.block,
# orderer/ and peer/ (config + ledgers), chaincode/ (package), logs/, *.pid,
# admin.env (peer CLI as Org1 admin: `. DIR/admin.env; peer channel list`) and
# fabric.env (ORDERGRID_LEDGER_FABRIC_* settings for the node and the tests).
# Refuses a DIR whose network is still running; otherwise removes what a previous
# run left there and starts afresh.
#
# Fabric binaries (peer, orderer, configtxgen, cryptogen, osnadmin) are taken from
# $FABRIC_BIN, else from PATH. Install them with Fabric's official script:
#   curl -sSLO https://raw.githubusercontent.com/hyperledger/fabric/main/scripts/install-fabric.sh
#   bash install-fabric.sh --fabric-version 2.5.x binary    # e.g. 2.5.16
#   export FABRIC_BIN=$PWD/bin
# The ccaas external builder is looked for at $FABRIC_BIN/../builders/ccaas
# (FABRIC_CCAAS_BUILDER overrides), the sample core.yaml and orderer.yaml at
# $FABRIC_BIN/../config (FABRIC_CFG_DIR overrides); without FABRIC_BIN, relative
# to the directory holding `peer`.
#
# Environment:
#   ORDERGRID_FABRIC_BASE_PORT  shifts every port by (value - 7050); default 7050:
#                               orderer 7050, peer 7051, peer chaincode 7052,
#                               orderer admin 7053, orderer ops 8443, peer ops 9443
#   ORDERGRID_CHAINCODE_PORT    chaincode server port (default 9999)
#   ORDERGRID_CHAINCODE_CMD     chaincode server command, run from the repository
#                               root with CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS
#                               set (default `go run ./cmd/anchorcc`; `none` skips it)
#   ORDERGRID_CHAINCODE_TIMEOUT seconds to wait for it to listen (default 300)
#   FABRIC_UP_TIMEOUT           seconds for every other wait (default 60)
#   FABRIC_LOGGING_SPEC         orderer and peer log level (default INFO)
#   FABRIC_LOGGING_FORMAT       their log format (default: Fabric's, without colours)
#   FABRIC_UP_KEEP_ON_FAILURE=1 leave started processes running after a failure
# Inherited CORE_* and ORDERER_* variables are cleared so they cannot leak into
# the orderer, the peer or the CLI.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
case $dir in
  *[[:space:],\'\"\[\]\\\$]*) echo "fabric-up: DIR must not contain blanks, commas, quotes, brackets or \$: $dir" >&2; exit 2 ;;
esac

log() { echo "fabric-up: $*" >&2; }

for v in $(compgen -e); do
  case $v in CORE_* | ORDERER_*) unset "$v" ;; esac
done
# Fabric's default log format is coloured; keep the logs in DIR plain.
plain_format='%{time:2006-01-02 15:04:05.000 MST} %{level:.4s} [%{module}] %{shortfunc} -> %{message}'
export FABRIC_LOGGING_FORMAT="${FABRIC_LOGGING_FORMAT:-$plain_format}"

# ---------------------------------------------------------------- binaries
missing=()
find_bin() { # NAME -> its path on stdout; fails if it is neither in $FABRIC_BIN nor on PATH
  if [ -n "${FABRIC_BIN:-}" ] && [ -x "$FABRIC_BIN/$1" ]; then
    echo "$FABRIC_BIN/$1"
  else
    command -v "$1" 2> /dev/null
  fi
}
PEER=$(find_bin peer) || missing+=(peer)
ORDERER=$(find_bin orderer) || missing+=(orderer)
CONFIGTXGEN=$(find_bin configtxgen) || missing+=(configtxgen)
CRYPTOGEN=$(find_bin cryptogen) || missing+=(cryptogen)
OSNADMIN=$(find_bin osnadmin) || missing+=(osnadmin)
for tool in curl tar gzip setsid; do
  command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "missing binaries: ${missing[*]}"
  log "install Fabric 2.5 binaries (see the header of $0) and set FABRIC_BIN=/path/to/fabric/bin"
  exit 1
fi
fabric_home=$(cd "$(dirname "$PEER")/.." && pwd)
if [ -n "${FABRIC_BIN:-}" ] && [ -d "$FABRIC_BIN/.." ]; then fabric_home=$(cd "$FABRIC_BIN/.." && pwd); fi
builder=${FABRIC_CCAAS_BUILDER:-$fabric_home/builders/ccaas}
cfgsrc=${FABRIC_CFG_DIR:-$fabric_home/config}
for f in "$builder/bin/detect" "$builder/bin/build" "$builder/bin/release"; do
  [ -x "$f" ] || missing+=("$f")
done
for f in "$cfgsrc/core.yaml" "$cfgsrc/orderer.yaml"; do
  [ -f "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "missing: ${missing[*]}"
  log "expected the ccaas builder at \$FABRIC_BIN/../builders/ccaas (or FABRIC_CCAAS_BUILDER) and core.yaml/orderer.yaml at \$FABRIC_BIN/../config (or FABRIC_CFG_DIR)"
  exit 1
fi

# ---------------------------------------------------------------- ports
base=${ORDERGRID_FABRIC_BASE_PORT:-7050}
shift_by=$((base - 7050))
orderer_port=$((7050 + shift_by))
peer_port=$((7051 + shift_by))
peer_cc_port=$((7052 + shift_by))
admin_port=$((7053 + shift_by))
orderer_ops_port=$((8443 + shift_by))
peer_ops_port=$((9443 + shift_by))
cc_port=${ORDERGRID_CHAINCODE_PORT:-9999}
cc_cmd=${ORDERGRID_CHAINCODE_CMD:-go run ./cmd/anchorcc}
timeout=${FABRIC_UP_TIMEOUT:-60}
cc_timeout=${ORDERGRID_CHAINCODE_TIMEOUT:-300}
channel=ordergrid
cc_name=anchors
cc_label=anchors_1

# ---------------------------------------------------------------- helpers
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2> /dev/null; }
port_open() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

started=0 ok=0
on_exit() {
  if [ "$ok" != 1 ] && [ "$started" = 1 ]; then
    if [ "${FABRIC_UP_KEEP_ON_FAILURE:-0}" = 1 ]; then
      log "leaving the started processes running (FABRIC_UP_KEEP_ON_FAILURE=1); stop them with scripts/fabric-down.sh $dir"
    else
      log "stopping the processes started so far (logs stay in $dir/logs)"
      bash "$root/scripts/fabric-down.sh" "$dir" > /dev/null 2>&1 || true
    fi
  fi
}
trap on_exit EXIT
trap 'log "ERROR: command failed at line $LINENO"' ERR

die() { # MESSAGE [LOG...]: report, show the tail of each log, exit 1
  local f
  log "ERROR: $1"
  shift
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 25 "$f" >&2
  done
  exit 1
}

run() { # LABEL CMD...: runs CMD with its output in logs/LABEL.out; dies on failure
  local label=$1 out="$dir/logs/$1.out"
  shift
  if ! "$@" > "$out" 2>&1; then
    die "$label failed (output in $out)" "$out" "$dir/logs/peer.log" "$dir/logs/orderer.log"
  fi
}

wait_for() { # SECONDS WHAT PROC LOG CMD...: polls CMD until it succeeds; dies if PROC exits or time runs out
  local secs=$1 what=$2 proc=$3 logf=$4 deadline
  shift 4
  deadline=$(($(date +%s) + secs))
  until "$@" > /dev/null 2>&1; do
    if [ "$proc" != - ] && ! alive "$proc"; then
      die "$proc exited while waiting for $what" "$logf"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "timed out after ${secs}s waiting for $what" "$logf"
    fi
    sleep 0.25
  done
}

start_bg() { # NAME CMD...: starts CMD in its own session, log logs/NAME.log, pid NAME.pid
  local name=$1
  shift
  started=1
  setsid "$@" >> "$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
  log "started $name (pid $!), log $dir/logs/$name.log"
}

# ---------------------------------------------------------------- clean DIR
for p in orderer peer chaincode; do
  if alive "$p"; then
    log "a network is already running in $dir ($p pid $(cat "$dir/$p.pid")); run scripts/fabric-down.sh $dir first"
    exit 1
  fi
done
rm -rf "$dir/crypto" "$dir/configtx" "$dir/orderer" "$dir/peer" "$dir/chaincode" "$dir/logs"
rm -f "$dir"/{orderer,peer,chaincode}.pid "$dir/crypto-config.yaml" "$dir/$channel.block" "$dir/fabric.env" "$dir/admin.env"
mkdir -p "$dir/logs" "$dir/configtx" "$dir/orderer" "$dir/peer" "$dir/chaincode"

ports=("$orderer_port" "$peer_port" "$peer_cc_port" "$admin_port" "$orderer_ops_port" "$peer_ops_port")
[ "$cc_cmd" = none ] || ports+=("$cc_port")
for p in "${ports[@]}"; do
  if port_open "$p"; then
    die "port $p on 127.0.0.1 is in use (set ORDERGRID_FABRIC_BASE_PORT / ORDERGRID_CHAINCODE_PORT)"
  fi
done
log "using $PEER ($("$PEER" version 2> /dev/null | sed -n 's/^ Version: //p')), builder $builder, config $cfgsrc"

# ---------------------------------------------------------------- crypto
cat > "$dir/crypto-config.yaml" << 'EOF'
OrdererOrgs:
  - Name: OrdererOrg
    Domain: example.com
    EnableNodeOUs: true
    Specs:
      - Hostname: orderer
        SANS:
          - localhost
          - 127.0.0.1
PeerOrgs:
  - Name: Org1
    Domain: org1.example.com
    EnableNodeOUs: true
    Template:
      Count: 1
      SANS:
        - localhost
        - 127.0.0.1
    Users:
      Count: 1
EOF
run cryptogen "$CRYPTOGEN" generate --config="$dir/crypto-config.yaml" --output="$dir/crypto"
ord_org=$dir/crypto/ordererOrganizations/example.com
ord_node=$ord_org/orderers/orderer.example.com
org1=$dir/crypto/peerOrganizations/org1.example.com
peer_node=$org1/peers/peer0.org1.example.com
org1_admin_msp=$org1/users/Admin@org1.example.com/msp
user1_msp=$org1/users/User1@org1.example.com/msp
orderer_ca=$ord_org/tlsca/tlsca.example.com-cert.pem
peer_tls_ca=$org1/tlsca/tlsca.org1.example.com-cert.pem
user_cert=$user1_msp/signcerts/User1@org1.example.com-cert.pem
user_key=$(find "$user1_msp/keystore" -type f | head -n 1)
if ! [ -f "$user_cert" ] || [ -z "$user_key" ] || ! [ -f "$ord_node/tls/server.crt" ] || ! [ -f "$peer_node/tls/server.crt" ]; then
  die "cryptogen did not produce the expected files under $dir/crypto" "$dir/logs/cryptogen.out"
fi
log "crypto material generated"

# ---------------------------------------------------------------- channel genesis block
cat > "$dir/configtx/configtx.yaml" << EOF
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: OrdererMSP
    MSPDir: $ord_org/msp
    Policies:
      Readers: {Type: Signature, Rule: "OR('OrdererMSP.member')"}
      Writers: {Type: Signature, Rule: "OR('OrdererMSP.member')"}
      Admins: {Type: Signature, Rule: "OR('OrdererMSP.admin')"}
    OrdererEndpoints:
      - 127.0.0.1:$orderer_port
  - &Org1
    Name: Org1MSP
    ID: Org1MSP
    MSPDir: $org1/msp
    Policies:
      Readers: {Type: Signature, Rule: "OR('Org1MSP.admin', 'Org1MSP.peer', 'Org1MSP.client')"}
      Writers: {Type: Signature, Rule: "OR('Org1MSP.admin', 'Org1MSP.client')"}
      Admins: {Type: Signature, Rule: "OR('Org1MSP.admin')"}
      Endorsement: {Type: Signature, Rule: "OR('Org1MSP.peer')"}

Capabilities:
  Channel: &ChannelCapabilities {V2_0: true}
  Orderer: &OrdererCapabilities {V2_0: true}
  Application: &ApplicationCapabilities {V2_0: true}

Application: &ApplicationDefaults
  Organizations:
  Policies:
    Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
    Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
    Admins: {Type: ImplicitMeta, Rule: "MAJORITY Admins"}
    LifecycleEndorsement: {Type: ImplicitMeta, Rule: "MAJORITY Endorsement"}
    Endorsement: {Type: ImplicitMeta, Rule: "MAJORITY Endorsement"}
  Capabilities: *ApplicationCapabilities

Orderer: &OrdererDefaults
  OrdererType: etcdraft
  BatchTimeout: 250ms
  BatchSize:
    MaxMessageCount: 10
    AbsoluteMaxBytes: 99 MB
    PreferredMaxBytes: 512 KB
  EtcdRaft:
    Consenters:
      - Host: 127.0.0.1
        Port: $orderer_port
        ClientTLSCert: $ord_node/tls/server.crt
        ServerTLSCert: $ord_node/tls/server.crt
    Options:
      TickInterval: 500ms
      ElectionTick: 10
      HeartbeatTick: 1
      MaxInflightBlocks: 5
      SnapshotIntervalSize: 16 MB
  Organizations:
  Policies:
    Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
    Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
    Admins: {Type: ImplicitMeta, Rule: "MAJORITY Admins"}
    BlockValidation: {Type: ImplicitMeta, Rule: "ANY Writers"}

Channel: &ChannelDefaults
  Policies:
    Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
    Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
    Admins: {Type: ImplicitMeta, Rule: "MAJORITY Admins"}
  Capabilities: *ChannelCapabilities

Profiles:
  OrdergridChannel:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      Organizations:
        - *OrdererOrg
      Capabilities: *OrdererCapabilities
    Application:
      <<: *ApplicationDefaults
      Organizations:
        - *Org1
      Capabilities: *ApplicationCapabilities
EOF
run configtxgen env FABRIC_CFG_PATH="$dir/configtx" "$CONFIGTXGEN" -profile OrdergridChannel \
  -channelID "$channel" -outputBlock "$dir/$channel.block"
log "genesis block for channel $channel written"

# ---------------------------------------------------------------- orderer
cp "$cfgsrc/orderer.yaml" "$dir/orderer/orderer.yaml"
start_bg orderer env FABRIC_CFG_PATH="$dir/orderer" \
  FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-INFO}" \
  ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 \
  ORDERER_GENERAL_LISTENPORT="$orderer_port" \
  ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
  ORDERER_GENERAL_LOCALMSPDIR="$ord_node/msp" \
  ORDERER_GENERAL_BOOTSTRAPMETHOD=none \
  ORDERER_GENERAL_TLS_ENABLED=true \
  ORDERER_GENERAL_TLS_PRIVATEKEY="$ord_node/tls/server.key" \
  ORDERER_GENERAL_TLS_CERTIFICATE="$ord_node/tls/server.crt" \
  ORDERER_GENERAL_TLS_ROOTCAS="[$ord_node/tls/ca.crt]" \
  ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$ord_node/tls/server.crt" \
  ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$ord_node/tls/server.key" \
  ORDERER_GENERAL_CLUSTER_ROOTCAS="[$ord_node/tls/ca.crt]" \
  ORDERER_CHANNELPARTICIPATION_ENABLED=true \
  ORDERER_ADMIN_LISTENADDRESS="127.0.0.1:$admin_port" \
  ORDERER_ADMIN_TLS_ENABLED=true \
  ORDERER_ADMIN_TLS_PRIVATEKEY="$ord_node/tls/server.key" \
  ORDERER_ADMIN_TLS_CERTIFICATE="$ord_node/tls/server.crt" \
  ORDERER_ADMIN_TLS_ROOTCAS="[$ord_node/tls/ca.crt]" \
  ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
  ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$ord_node/tls/ca.crt]" \
  ORDERER_OPERATIONS_LISTENADDRESS="127.0.0.1:$orderer_ops_port" \
  ORDERER_METRICS_PROVIDER=prometheus \
  ORDERER_FILELEDGER_LOCATION="$dir/orderer/ledger" \
  ORDERER_CONSENSUS_WALDIR="$dir/orderer/etcdraft/wal" \
  ORDERER_CONSENSUS_SNAPDIR="$dir/orderer/etcdraft/snapshot" \
  "$ORDERER" start
wait_for "$timeout" "the orderer's /healthz" orderer "$dir/logs/orderer.log" \
  curl -fsS "http://127.0.0.1:$orderer_ops_port/healthz"
log "orderer ready"

osn=("$OSNADMIN" -o "127.0.0.1:$admin_port" --ca-file "$ord_node/tls/ca.crt"
  --client-cert "$ord_node/tls/server.crt" --client-key "$ord_node/tls/server.key")
run osnadmin-join "${osn[@]}" channel join --channelID "$channel" --config-block "$dir/$channel.block"
grep -q '^Status: 201' "$dir/logs/osnadmin-join.out" || die "osnadmin channel join did not answer 201" "$dir/logs/osnadmin-join.out"
channel_active() {
  "${osn[@]}" channel list --channelID "$channel" > "$dir/logs/osnadmin-list.out" 2>&1 &&
    grep -q '"status": *"active"' "$dir/logs/osnadmin-list.out"
}
raft_leader() {
  curl -fsS "http://127.0.0.1:$orderer_ops_port/metrics" 2> /dev/null |
    grep -Eq "^consensus_etcdraft_is_leader\{channel=\"$channel\"\} 1\$"
}
wait_for "$timeout" "channel $channel to be active on the orderer" orderer "$dir/logs/osnadmin-list.out" channel_active
wait_for "$timeout" "a Raft leader on channel $channel" orderer "$dir/logs/orderer.log" raft_leader
log "orderer joined channel $channel, Raft leader elected"

# ---------------------------------------------------------------- peer
cp "$cfgsrc/core.yaml" "$dir/peer/core.yaml"
# Declare the ccaas builder as the only external builder and unset the Docker
# endpoint (else the peer's /healthz reports the missing Docker daemon).
awk -v builder="$builder" '
  skipping && /^     / { next }
  { skipping = 0 }
  /^    externalBuilders:/ {
    print "    externalBuilders:"
    print "      - name: ccaas"
    print "        path: " builder
    print "        propagateEnvironment:"
    print "          - CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"
    skipping = 1; next
  }
  /^    endpoint: unix:\/\/\/var\/run\/docker.sock/ { print "    endpoint: \"\""; next }
  { print }
' "$cfgsrc/core.yaml" > "$dir/peer/core.yaml"
grep -q "^        path: $builder\$" "$dir/peer/core.yaml" ||
  die "could not declare the ccaas external builder in $dir/peer/core.yaml (no 'chaincode.externalBuilders' key in $cfgsrc/core.yaml?)"

start_bg peer env FABRIC_CFG_PATH="$dir/peer" \
  FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-INFO}" \
  CORE_PEER_ID=peer0.org1.example.com \
  CORE_PEER_ADDRESS="127.0.0.1:$peer_port" \
  CORE_PEER_LISTENADDRESS="127.0.0.1:$peer_port" \
  CORE_PEER_CHAINCODEADDRESS="127.0.0.1:$peer_cc_port" \
  CORE_PEER_CHAINCODELISTENADDRESS="127.0.0.1:$peer_cc_port" \
  CORE_PEER_GOSSIP_BOOTSTRAP="127.0.0.1:$peer_port" \
  CORE_PEER_GOSSIP_EXTERNALENDPOINT="127.0.0.1:$peer_port" \
  CORE_PEER_LOCALMSPID=Org1MSP \
  CORE_PEER_MSPCONFIGPATH="$peer_node/msp" \
  CORE_PEER_TLS_ENABLED=true \
  CORE_PEER_TLS_CERT_FILE="$peer_node/tls/server.crt" \
  CORE_PEER_TLS_KEY_FILE="$peer_node/tls/server.key" \
  CORE_PEER_TLS_ROOTCERT_FILE="$peer_node/tls/ca.crt" \
  CORE_PEER_FILESYSTEMPATH="$dir/peer/data" \
  CORE_LEDGER_SNAPSHOTS_ROOTDIR="$dir/peer/data/snapshots" \
  CORE_OPERATIONS_LISTENADDRESS="127.0.0.1:$peer_ops_port" \
  CORE_METRICS_PROVIDER=prometheus \
  "$PEER" node start
wait_for "$timeout" "the peer's /healthz" peer "$dir/logs/peer.log" \
  curl -fsS "http://127.0.0.1:$peer_ops_port/healthz"
log "peer ready"

# The peer CLI acts as Org1's admin.
admin_env=(FABRIC_CFG_PATH="$dir/peer" CORE_PEER_LOCALMSPID=Org1MSP
  CORE_PEER_MSPCONFIGPATH="$org1_admin_msp" CORE_PEER_ADDRESS="127.0.0.1:$peer_port"
  CORE_PEER_TLS_ENABLED=true CORE_PEER_TLS_ROOTCERT_FILE="$peer_tls_ca")
{
  echo "# peer CLI as Org1 admin for the network in $dir: . $dir/admin.env"
  for kv in "${admin_env[@]}"; do echo "export $kv"; done
  echo "export ORDERER_ADDRESS=127.0.0.1:$orderer_port"
  echo "export ORDERER_CA=$orderer_ca"
} > "$dir/admin.env"
padmin() { env "${admin_env[@]}" "$PEER" "$@"; }
ord_args=(-o "127.0.0.1:$orderer_port" --tls --cafile "$orderer_ca")

run peer-join padmin channel join -b "$dir/$channel.block"
log "peer joined channel $channel"

# ---------------------------------------------------------------- chaincode package
ccdir=$dir/chaincode
printf '{"address":"127.0.0.1:%s","dial_timeout":"10s","tls_required":false}\n' "$cc_port" > "$ccdir/connection.json"
printf '{"type":"ccaas","label":"%s"}\n' "$cc_label" > "$ccdir/metadata.json"
det_tar() { # OUT FILE...: deterministic gzipped tar of FILEs (relative to $ccdir)
  local out=$1
  shift
  tar -C "$ccdir" --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode=u=rw,go=r -cf - "$@" | gzip -9 -n > "$out"
}
det_tar "$ccdir/code.tar.gz" connection.json
det_tar "$ccdir/$cc_name.tar.gz" code.tar.gz metadata.json
run calculatepackageid padmin lifecycle chaincode calculatepackageid "$ccdir/$cc_name.tar.gz"
package_id=$(tr -d '[:space:]' < "$dir/logs/calculatepackageid.out")
case $package_id in "$cc_label":*) ;; *) die "unexpected package id '$package_id'" "$dir/logs/calculatepackageid.out" ;; esac
echo "$package_id" > "$ccdir/package_id"

run cc-install padmin lifecycle chaincode install "$ccdir/$cc_name.tar.gz"
run cc-queryinstalled padmin lifecycle chaincode queryinstalled
grep -q "Package ID: $package_id, Label: $cc_label" "$dir/logs/cc-queryinstalled.out" ||
  die "package $package_id is not listed by queryinstalled" "$dir/logs/cc-queryinstalled.out" "$dir/logs/peer.log"
log "chaincode installed: $package_id"

def_args=(--channelID "$channel" --name "$cc_name" --version 1.0 --sequence 1)
run cc-approve padmin lifecycle chaincode approveformyorg "${ord_args[@]}" "${def_args[@]}" \
  --package-id "$package_id" --waitForEventTimeout "${timeout}s"
run cc-commit padmin lifecycle chaincode commit "${ord_args[@]}" "${def_args[@]}" \
  --peerAddresses "127.0.0.1:$peer_port" --tlsRootCertFiles "$peer_tls_ca" --waitForEventTimeout "${timeout}s"
run cc-querycommitted padmin lifecycle chaincode querycommitted --channelID "$channel" --name "$cc_name"
grep -q 'Version: 1.0, Sequence: 1,' "$dir/logs/cc-querycommitted.out" ||
  die "querycommitted does not show $cc_name version 1.0 sequence 1" "$dir/logs/cc-querycommitted.out"
log "chaincode $cc_name committed on $channel (version 1.0, sequence 1)"

# ---------------------------------------------------------------- chaincode server
if [ "$cc_cmd" = none ]; then
  log "not starting a chaincode server (ORDERGRID_CHAINCODE_CMD=none); start one with CHAINCODE_ID=$package_id CHAINCODE_SERVER_ADDRESS=127.0.0.1:$cc_port"
else
  (cd "$root" && start_bg chaincode env CHAINCODE_ID="$package_id" \
    CHAINCODE_SERVER_ADDRESS="127.0.0.1:$cc_port" bash -c "$cc_cmd")
  started=1
  wait_for "$cc_timeout" "the chaincode server on 127.0.0.1:$cc_port ($cc_cmd)" chaincode \
    "$dir/logs/chaincode.log" port_open "$cc_port"
  log "chaincode server listening on 127.0.0.1:$cc_port"
fi

# ---------------------------------------------------------------- fabric.env
cat > "$dir/fabric.env" << EOF
ORDERGRID_LEDGER_FABRIC_PEER_ENDPOINT=127.0.0.1:$peer_port
ORDERGRID_LEDGER_FABRIC_PEER_HOST_OVERRIDE=peer0.org1.example.com
ORDERGRID_LEDGER_FABRIC_TLS_CA_FILE=$peer_tls_ca
ORDERGRID_LEDGER_FABRIC_MSP_ID=Org1MSP
ORDERGRID_LEDGER_FABRIC_CERT_FILE=$user_cert
ORDERGRID_LEDGER_FABRIC_KEY_FILE=$user_key
ORDERGRID_LEDGER_FABRIC_CHANNEL=$channel
ORDERGRID_LEDGER_FABRIC_CHAINCODE=$cc_name
FABRIC_UP_CHAINCODE_ID=$package_id
FABRIC_UP_CHAINCODE_ADDRESS=127.0.0.1:$cc_port
FABRIC_UP_ORDERER_ENDPOINT=127.0.0.1:$orderer_port
EOF
ok=1
log "network up; settings in $dir/fabric.env, peer CLI as admin: . $dir/admin.env"
echo "$dir/fabric.env"
