#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker+controller)
# for tickindex development and CI. No tarball and no Docker: the broker jars
# come from Maven Central through pom.xml and are cached in the run dir.
#
# usage: deploy/kafka/kafka.sh start|stop|restart|status|logs [-f]|reset
#
#   start    fetch jars (first time only), format storage (first time only),
#            start the broker in the background and wait until it is up.
#            Already running: says so and exits 0.
#   stop     SIGTERM, wait up to KAFKA_STOP_TIMEOUT s, then SIGKILL.
#            Not running: exits 0.
#   restart  stop, then start.
#   status   exit 0 and print "running pid N on 127.0.0.1:PORT", else exit 1.
#   logs     last 100 lines of the broker log (-f to follow).
#   reset    stop, then delete data and logs (the jar cache is kept).
#
# environment:
#   KAFKA_RUN_DIR          state folder (default: deploy/kafka/.run)
#   KAFKA_PORT             client listener port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   KAFKA_HEAP_OPTS        heap flags (default: -Xmx1g -Xms1g, as kafka-server-start.sh)
#   KAFKA_JVM_PERFORMANCE_OPTS  GC flags (default: kafka-run-class.sh's G1 settings; empty: none)
#   KAFKA_OPTS             extra JVM flags
#   KAFKA_START_TIMEOUT    seconds to wait for "Kafka Server started" (90)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (30)
#   KAFKA_LIB_DIR          jar folder (default: RUN_DIR/lib; filled by Maven when missing)
#   KAFKA_SASL_SSL_PORT    also listen for SASL_SSL clients (SCRAM-SHA-256/512) on this port;
#                          needs KAFKA_SSL_KEYSTORE and KAFKA_SSL_KEYSTORE_PASSWORD
#   KAFKA_SSL_KEYSTORE     the broker's keystore (JKS, or PKCS12 when named *.p12/*.pfx)
#   KAFKA_SSL_KEYSTORE_PASSWORD  its password (also the key's)
#   KAFKA_SCRAM_USERS      SCRAM users created when the storage is formatted (first start
#                          only): name:password[,name:password] (no ',', ':', '[' or ']' inside)
#   JAVA_HOME              java to use (default: java on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$SCRIPT_DIR/pom.xml
LOG4J_CONFIG=$SCRIPT_DIR/log4j2.properties

RUN_DIR=${KAFKA_RUN_DIR:-$SCRIPT_DIR/.run}
HOST=127.0.0.1
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=java
fi

log() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

# Paths inside the run dir; set by init_paths once RUN_DIR exists.
LIB_DIR='' DATA_DIR='' LOG_DIR='' LOG_FILE='' OUT_FILE='' PID_FILE='' CONFIG=''

init_paths() {
  mkdir -p "$RUN_DIR"
  RUN_DIR=$(cd "$RUN_DIR" && pwd)
  LIB_DIR=${KAFKA_LIB_DIR:-$RUN_DIR/lib}
  DATA_DIR=$RUN_DIR/data
  LOG_DIR=$RUN_DIR/logs
  LOG_FILE=$LOG_DIR/server.log
  OUT_FILE=$LOG_DIR/kafka.out
  PID_FILE=$RUN_DIR/kafka.pid
  CONFIG=$RUN_DIR/server.properties
}

# Serialise start/stop/reset between concurrent callers (fd 9 is closed for
# the broker so that it does not inherit the lock).
take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$RUN_DIR/.lock"
    flock -w 180 9 || die "timed out waiting for $RUN_DIR/.lock"
  fi
}

proc_args() {
  if [[ -r /proc/$1/cmdline ]]; then
    tr '\0' ' ' <"/proc/$1/cmdline"
  else
    ps -o args= -p "$1" 2>/dev/null || true
  fi
}

# Prints the broker pid and returns 0 when the pid file names a live
# kafka.Kafka process; removes a stale pid file.
running_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid args
  pid=$(<"$PID_FILE")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && args=$(proc_args "$pid") && [[ $args == *kafka.Kafka* ]]; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  return 1
}

# Port the running broker was started with (from the generated config).
configured_port() {
  local port=
  if [[ -f $CONFIG ]]; then
    port=$(sed -n 's/^advertised\.listeners=PLAINTEXT:\/\/[^:]*:\([0-9]*\).*/\1/p' "$CONFIG")
  fi
  printf '%s\n' "${port:-$PORT}"
}

port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

pom_hash() {
  sha256sum "$POM" | cut -d' ' -f1
}

# Fetch the broker jars into $LIB_DIR unless they are already there for the
# current pom.xml.
ensure_lib() {
  local stamp=$LIB_DIR/.pom.sha256 want
  want=$(pom_hash)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found; needed once to fetch the Kafka jars"
  log "fetching Kafka jars with Maven into $LIB_DIR"
  local tmp=$LIB_DIR.tmp
  rm -rf "$tmp"
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$LOG_DIR/maven.out" 2>&1; then
    cat "$LOG_DIR/maven.out" >&2
    rm -rf "$tmp"
    die "Maven could not resolve the Kafka jars"
  fi
  printf '%s\n' "$want" >"$tmp/.pom.sha256"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

write_config() {
  local listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
  local advertised=PLAINTEXT://$HOST:$PORT
  local protocols=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
  if [[ -n ${KAFKA_SASL_SSL_PORT:-} ]]; then
    listeners+=,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT
    advertised+=,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT
    protocols+=,SASL_SSL:SASL_SSL
  fi
  # The file may hold the keystore password: readable by its owner only.
  (umask 077 && : >"$CONFIG.tmp")
  cat >"$CONFIG.tmp" <<EOF
# Generated by deploy/kafka/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
log.dirs=$DATA_DIR
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  if [[ -n ${KAFKA_SASL_SSL_PORT:-} ]]; then
    [[ -r ${KAFKA_SSL_KEYSTORE:-} ]] || die "KAFKA_SASL_SSL_PORT needs a readable KAFKA_SSL_KEYSTORE"
    [[ -n ${KAFKA_SSL_KEYSTORE_PASSWORD:-} ]] \
      || die "KAFKA_SASL_SSL_PORT needs KAFKA_SSL_KEYSTORE_PASSWORD"
    local store_type=JKS
    if [[ $KAFKA_SSL_KEYSTORE == *.p12 || $KAFKA_SSL_KEYSTORE == *.pfx ]]; then
      store_type=PKCS12
    fi
    local scram=org.apache.kafka.common.security.scram.ScramLoginModule
    cat >>"$CONFIG.tmp" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram required;
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_SSL_KEYSTORE
listener.name.sasl_ssl.ssl.keystore.type=$store_type
listener.name.sasl_ssl.ssl.keystore.password=$KAFKA_SSL_KEYSTORE_PASSWORD
listener.name.sasl_ssl.ssl.key.password=$KAFKA_SSL_KEYSTORE_PASSWORD
EOF
  fi
  mv "$CONFIG.tmp" "$CONFIG"
}

# --add-scram arguments of the storage format for KAFKA_SCRAM_USERS (both SCRAM mechanisms).
scram_arguments() {
  SCRAM_ARGS=()
  local entry name password users=()
  IFS=, read -r -a users <<<"${KAFKA_SCRAM_USERS:-}"
  for entry in "${users[@]}"; do
    [[ $entry == *:* ]] || die "KAFKA_SCRAM_USERS: expected name:password entries"
    name=${entry%%:*} password=${entry#*:}
    SCRAM_ARGS+=(--add-scram "SCRAM-SHA-256=[name=$name,password=$password]"
      --add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
  done
}

java_base() {
  local heap=() performance=() extra=()
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}"
  # Kafka's own defaults: a fixed heap and short G1 pauses keep the broker's stalls, which
  # land directly in event-to-publish latency, to a few milliseconds.
  read -r -a performance <<<"${KAFKA_JVM_PERFORMANCE_OPTS--XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15}"
  read -r -a extra <<<"${KAFKA_OPTS:-}"
  JAVA_CMD=("$JAVA" "${heap[@]}" "${performance[@]}" "${extra[@]}"
    -Djava.awt.headless=true
    "-Dkafka.logs.dir=$LOG_DIR"
    "-Dlog4j2.configurationFile=$LOG4J_CONFIG"
    -cp "$LIB_DIR/*")
}

# Format the KRaft storage once (single voter: --standalone).
ensure_formatted() {
  [[ -f $DATA_DIR/meta.properties ]] && return 0
  local cluster_id
  java_base
  cluster_id=$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid | tail -n 1)
  [[ -n $cluster_id ]] || die "StorageTool random-uuid printed nothing"
  log "formatting $DATA_DIR (cluster id $cluster_id)"
  rm -rf "$DATA_DIR"
  scram_arguments
  if ! "${JAVA_CMD[@]}" kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$CONFIG" "${SCRAM_ARGS[@]}" >"$LOG_DIR/format.out" 2>&1; then
    cat "$LOG_DIR/format.out" >&2
    rm -rf "$DATA_DIR"
    die "storage format failed"
  fi
}

# Stop the broker: SIGTERM, wait, SIGKILL. Caller holds the lock.
stop_broker() {
  local pid waited=0
  if ! pid=$(running_pid); then
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= STOP_TIMEOUT * 2)); then
      log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  log "stopped"
}

print_failure_logs() {
  {
    echo "---- last 40 lines of $LOG_FILE ----"
    tail -n 40 "$LOG_FILE" 2>/dev/null || true
    if [[ -s $OUT_FILE ]]; then
      echo "---- $OUT_FILE ----"
      tail -n 40 "$OUT_FILE"
    fi
  } >&2
}

cmd_start() {
  take_lock
  local pid
  if pid=$(running_pid); then
    log "already running pid $pid on $HOST:$(configured_port)"
    return 0
  fi
  if port_in_use "$PORT"; then
    die "port $HOST:$PORT is already in use by another process (set KAFKA_PORT)"
  fi
  if port_in_use "$CONTROLLER_PORT"; then
    die "port $HOST:$CONTROLLER_PORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"
  fi
  if [[ -n ${KAFKA_SASL_SSL_PORT:-} ]] && port_in_use "$KAFKA_SASL_SSL_PORT"; then
    die "port $HOST:$KAFKA_SASL_SSL_PORT is already in use by another process"
  fi
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Kafka 4 needs Java 17+)"

  local t0=$SECONDS
  mkdir -p "$LOG_DIR"
  ensure_lib
  write_config
  ensure_formatted

  # Only look for the "started" line in what this run writes.
  local offset=0
  [[ -f $LOG_FILE ]] && offset=$(wc -c <"$LOG_FILE")

  java_base
  rm -f "$PID_FILE"
  # setsid + nohup: the broker outlives this shell and its terminal. The
  # inner bash writes its own pid (the one java runs as) before exec.
  # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
  (
    cd "$RUN_DIR"
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "${JAVA_CMD[@]}" "-Xlog:gc:file=$LOG_DIR/gc.log:time,uptime:filecount=3,filesize=20M" \
      kafka.Kafka "$CONFIG" \
      >"$OUT_FILE" 2>&1 </dev/null 9>&- &
  )

  local waited=0
  while [[ ! -s $PID_FILE ]]; do
    ((waited < 100)) || die "broker did not write $PID_FILE"
    sleep 0.1
    waited=$((waited + 1))
  done
  pid=$(<"$PID_FILE")
  log "started pid $pid, waiting for broker (up to ${START_TIMEOUT}s)"

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if [[ -f $LOG_FILE ]]; then
      local size
      size=$(wc -c <"$LOG_FILE")
      ((size >= offset)) || offset=0 # log rolled over
      # grep -c, not -q: an early exit would SIGPIPE tail and, under
      # pipefail, turn a match into a failure.
      if tail -c "+$((offset + 1))" "$LOG_FILE" | grep -c 'Kafka Server started' >/dev/null; then
        log "running pid $pid on $HOST:$PORT (ready in $((SECONDS - t0))s)"
        return 0
      fi
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      print_failure_logs
      die "broker exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      print_failure_logs
      stop_broker >&2
      die "broker not ready after ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

cmd_stop() {
  take_lock
  stop_broker
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    echo "running pid $pid on $HOST:$(configured_port)"
    return 0
  fi
  echo "not running"
  return 1
}

cmd_logs() {
  [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
  if [[ ${1:-} == -f ]]; then
    exec tail -n 100 -F "$LOG_FILE"
  fi
  tail -n 100 "$LOG_FILE"
}

cmd_reset() {
  take_lock
  stop_broker
  log "deleting $DATA_DIR and $LOG_DIR"
  rm -rf "$DATA_DIR" "$LOG_DIR" "$CONFIG"
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    start | stop | status | logs | reset | restart) init_paths ;;
    -h | --help | help) usage; return 0 ;;
    *) usage >&2; return 2 ;;
  esac
  case $cmd in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    reset) cmd_reset ;;
  esac
}

main "$@"
