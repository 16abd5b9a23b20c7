#!/usr/bin/env bash
# Local Kafka (single-node KRaft) + Redis for integration tests, without Docker.
#
#   deployments/local/services.sh up|down|status|env
#   deployments/local/services.sh stop|start kafka|redis    (fault tests, demos)
#
# Kafka jars come from Maven Central via mvn (the only source reachable here and
# in CI) and are cached, so only the first `up` on a machine downloads anything.
# Redis comes from Debian's redis-server package. Both run as plain background
# processes tracked by pid files in the state dir; `down` stops only those pids.
set -euo pipefail

KAFKA_VERSION=${CALLTRACK_KAFKA_VERSION:-4.3.1} # 4.4.0 on Central lacks kafka-tools
LOG4J_VERSION=2.25.4                             # matches kafka-server 4.3.1's log4j-core
CACHE=${CALLTRACK_SERVICES_CACHE:-$HOME/.cache/calltrack-services}
STATE=${CALLTRACK_SERVICES_DIR:-/tmp/calltrack-services}
HOST=127.0.0.1
KAFKA_PORT=${CALLTRACK_SERVICES_KAFKA_PORT:-9092}
CONTROLLER_PORT=${CALLTRACK_SERVICES_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
REDIS_PORT=${CALLTRACK_SERVICES_REDIS_PORT:-6379}
READY_TIMEOUT=${CALLTRACK_SERVICES_TIMEOUT:-120}
# Extra JVM options of the broker, e.g. -XX:TieredStopAtLevel=1 (the fault tests' broker:
# a quicker start and restart on a small box, for less peak speed).
KAFKA_JVM_OPTS=${CALLTRACK_SERVICES_KAFKA_JVM_OPTS:-}
KAFKA_HOME=$CACHE/kafka-$KAFKA_VERSION
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

log() { echo "services: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
	cat >&2 <<EOF
usage: $0 up|down|status|env|diagnose|stop SERVICE|start SERVICE
  up      install (first time) and start Kafka on $HOST:$KAFKA_PORT and Redis on $HOST:$REDIS_PORT
  down    stop what 'up' started (by pid files in $STATE)
  stop kafka|redis   stop one service (by its pid file); its data stays
  start kafka|redis  start it again (Kafka keeps its log dirs; Redis reloads its append-only file)
  status  show whether each service is running
  env     print export lines for the tests: eval "\$($0 env)"
  diagnose  what a failed run needs to know: each service's state, open files, memory,
          partitions, the broker's errors and GC pauses, Redis' memory and clients
  kafka-tool CLASS ARGS...  run a Kafka CLI class from the cached jars, e.g.
          org.apache.kafka.tools.TopicCommand --bootstrap-server $HOST:$KAFKA_PORT --list
env: CALLTRACK_SERVICES_DIR (state, logs), CALLTRACK_SERVICES_CACHE (jars),
     CALLTRACK_SERVICES_KAFKA_PORT, CALLTRACK_SERVICES_REDIS_PORT, CALLTRACK_KAFKA_VERSION,
     CALLTRACK_SERVICES_KAFKA_JVM_OPTS
EOF
	exit 2
}

# True while pid exists and is not a zombie (an unreaped zombie still passes kill -0).
pid_running() { [[ $(ps -o stat= -p "$1" 2>/dev/null) == [^Z]* ]]; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid of a service we started, if it is still alive and still that program
# (guards against pid reuse so `down` never signals a stranger).
our_pid() { # name cmdline-pattern
	local f=$STATE/$1.pid pid
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	kill -0 "$pid" 2>/dev/null && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}
kafka_pid() { our_pid kafka kafka.Kafka; }
redis_pid() { our_pid redis redis-server; }

# Start "$@" detached (own session, no tty, output to a log) and record its pid.
spawn() { # name cmd...
	local name=$1
	shift
	setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
	echo $! >"$STATE/$name.pid"
}

# The process spawn started is alive. Not our_pid: until setsid has exec'd the program,
# the child's cmdline is still this script's, and that is no death.
spawned_alive() { # name
	local f=$STATE/$1.pid
	[[ -s $f ]] && pid_running "$(<"$f")"
}

# Poll "$@" until it succeeds; fail (with the log tail) on deadline or if the process died.
wait_ready() { # name cmd...
	local name=$1 deadline=$((SECONDS + READY_TIMEOUT))
	shift
	until "$@" >/dev/null 2>&1; do
		if ! spawned_alive "$name" || ((SECONDS >= deadline)); then
			log "$name did not become ready (process gone or ${READY_TIMEOUT}s passed); from $STATE/$name.log:"
			grep -E ' (ERROR|FATAL) |Exception:' "$STATE/$name.log" | head -n 10 >&2 || true
			log "--- last lines:"
			tail -n 20 "$STATE/$name.log" >&2 || true
			exit 1
		fi
		sleep 1
	done
}

# ---- Kafka ---------------------------------------------------------------

fetch_kafka() {
	[[ -f $KAFKA_HOME/lib/.complete ]] && return 0
	command -v mvn >/dev/null || die "mvn is required to fetch Kafka jars"
	log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME/lib (one-time)"
	mkdir -p "$KAFKA_HOME"
	# kafka_2.13 = broker (kafka.Kafka, kafka.tools.StorageTool); kafka-tools = TopicCommand
	# etc. (its Connect/Jetty deps are not needed for those, so excluded);
	# log4j-slf4j-impl binds Kafka's slf4j 1.7 API to the log4j2 core kafka-server brings.
	cat >"$KAFKA_HOME/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.calltrack</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
	rm -rf "$KAFKA_HOME/lib"
	mvn -B -q -f "$KAFKA_HOME/pom.xml" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/lib" >"$STATE/mvn.log" 2>&1 ||
		{ tail -n 30 "$STATE/mvn.log" >&2; die "mvn could not fetch Kafka $KAFKA_VERSION"; }
	touch "$KAFKA_HOME/lib/.complete"
}

write_kafka_config() {
	local d=$STATE/kafka
	mkdir -p "$d"
	cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=3
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# small box: fewer threads than the defaults (3 network, 8 io)
num.network.threads=2
num.io.threads=4
EOF
	# Broker logs at INFO to stdout (-> kafka.log); CLI tools only warn, on stderr.
	cat >"$d/log4j2.properties" <<'EOF'
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
EOF
	cat >"$d/log4j2-tools.properties" <<'EOF'
appender.err.type=Console
appender.err.name=ERR
appender.err.target=SYSTEM_ERR
appender.err.layout.type=PatternLayout
appender.err.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.err.ref=ERR
EOF
}

# Run a Kafka CLI class from the cached jars, e.g. kafka_tool org.apache.kafka.tools.TopicCommand --list ...
# (under `timeout`: the admin client retries for a long time when the broker is not up).
kafka_tool() {
	timeout "${KAFKA_TOOL_TIMEOUT:-120}" "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$STATE/kafka/log4j2-tools.properties" \
		-cp "$KAFKA_HOME/lib/*" "$@"
}

kafka_list_topics() { KAFKA_TOOL_TIMEOUT=90 kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --list; }

kafka_up() {
	local p
	if [[ -z $(kafka_pid) ]]; then
		for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
			port_open "$p" && die "port $p is already used by another process (set CALLTRACK_SERVICES_KAFKA_PORT)"
		done
		fetch_kafka
		write_kafka_config
		local d=$STATE/kafka
		# Format KRaft storage once; keeps data (and the cluster id) across down/up.
		if [[ ! -f $d/data/meta.properties ]]; then
			kafka_tool kafka.tools.StorageTool format --ignore-formatted \
				-t "$(kafka_tool kafka.tools.StorageTool random-uuid)" -c "$d/server.properties" \
				>>"$STATE/kafka.log" 2>&1 || { tail -n 20 "$STATE/kafka.log" >&2; die "kafka storage format failed"; }
		fi
		log "starting Kafka $KAFKA_VERSION (log: $STATE/kafka.log)"
		# shellcheck disable=SC2086 # KAFKA_JVM_OPTS is a list of options
		# GC log: `diagnose` shows its long pauses (a broker that stops answering may be
		# collecting).
		spawn kafka "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 $KAFKA_JVM_OPTS \
			-Xlog:gc:file="$STATE/kafka-gc.log":time,uptime:filecount=2,filesize=10m \
			-Djava.awt.headless=true -Dlog4j2.configurationFile="$d/log4j2.properties" \
			-cp "$KAFKA_HOME/lib/*" kafka.Kafka "$d/server.properties"
	else
		log "kafka already running (pid $(kafka_pid))"
	fi
	# Cheap port probe first, then a real metadata request via the admin client.
	wait_ready kafka port_open "$KAFKA_PORT"
	wait_ready kafka kafka_list_topics
	log "kafka ready on $HOST:$KAFKA_PORT (pid $(kafka_pid))"
}

# ---- Redis ---------------------------------------------------------------

redis_up() {
	if [[ -z $(redis_pid) ]]; then
		port_open "$REDIS_PORT" && die "port $REDIS_PORT is already used by another process (set CALLTRACK_SERVICES_REDIS_PORT)"
		if ! command -v redis-server >/dev/null; then
			log "installing redis-server with apt-get (log: $STATE/apt.log)"
			local sudo=
			((EUID == 0)) || sudo=sudo
			{ $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; } \
				>"$STATE/apt.log" 2>&1 || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install redis-server failed"; }
		fi
		mkdir -p "$STATE/redis"
		log "starting redis-server (log: $STATE/redis.log)"
		# Append-only file, fsync'd every second: a restarted redis-server comes back with
		# its data, as production's must (idempotency and parked calls live there). No
		# eviction: calltrack reports any other maxmemory-policy as a fault.
		spawn redis redis-server --port "$REDIS_PORT" --bind "$HOST" --save "" \
			--appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
			--daemonize no --dir "$STATE/redis"
	else
		log "redis already running (pid $(redis_pid))"
	fi
	wait_ready redis redis_ping
	log "redis ready on $HOST:$REDIS_PORT (pid $(redis_pid))"
}

redis_ping() { [[ $(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

# ---- diagnosis ---------------------------------------------------------------

proc_facts() { # pid: open files against the limit, resident memory
	local fds limit rss
	fds=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	limit=$(awk '/Max open files/{print $4}' "/proc/$1/limits" 2>/dev/null)
	rss=$(awk '/VmRSS/{print $2, $3}' "/proc/$1/status" 2>/dev/null)
	echo "open files $fds of $limit, RSS $rss"
}

diagnose() {
	local pid
	echo "services: diagnosis at $(date -u +%FT%TZ) (state: $STATE, ulimit -n here: $(ulimit -n))"
	if pid=$(kafka_pid); then
		echo "kafka: running (pid $pid): $(proc_facts "$pid"); partitions on disk: $(find "$STATE/kafka/data" -mindepth 1 -maxdepth 1 -type d -name '*-[0-9]*' | wc -l)"
		port_open "$KAFKA_PORT" && echo "kafka: port $KAFKA_PORT accepts connections" || echo "kafka: port $KAFKA_PORT refuses connections"
	else
		echo "kafka: not running"
	fi
	echo "--- kafka.log: last ERROR/WARN lines"
	grep -E '\] (ERROR|WARN) ' "$STATE/kafka.log" 2>/dev/null | tail -n 30 || true
	echo "--- kafka.log: last lines"
	tail -n 15 "$STATE/kafka.log" 2>/dev/null || true
	echo "--- kafka GC: pauses of 200 ms or more, and the last collections"
	# rotated files first (.1 is the oldest), so the last lines are the latest pauses
	grep -hE 'Pause.* ([2-9][0-9]{2}|[0-9]{4,})\.[0-9]+ms' "$STATE"/kafka-gc.log.1 "$STATE"/kafka-gc.log.0 \
		"$STATE"/kafka-gc.log 2>/dev/null | tail -n 10 || true
	tail -n 5 "$STATE/kafka-gc.log" 2>/dev/null || true
	if pid=$(redis_pid); then
		echo "redis: running (pid $pid): $(proc_facts "$pid")"
		timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" info 2>/dev/null | grep -E '^(used_memory_human|connected_clients|blocked_clients|rejected_connections|db0):' || echo "redis: no answer to INFO"
	else
		echo "redis: not running"
	fi
	echo "--- redis.log: last lines"
	tail -n 10 "$STATE/redis.log" 2>/dev/null || true
}

# ---- common ----------------------------------------------------------------

stop() { # name pidfn timeout
	local name=$1 pid i
	if pid=$("$2"); then
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < $3; i++)); do
			pid_running "$pid" || break
			sleep 1
		done
		if pid_running "$pid"; then
			log "$name did not exit after $3s, sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do pid_running "$pid" && sleep 0.2; done
		fi
	else
		log "$name not running"
	fi
	rm -f "$STATE/$name.pid"
}

status() { # name pidfn port
	local pid
	if pid=$("$2"); then echo "$1: running (pid $pid, $HOST:$3)"; else echo "$1: stopped"; fi
}

mkdir -p "$STATE"
case ${1:-} in
up)
	command -v "$JAVA" >/dev/null || die "java not found (need JDK 17+)"
	redis_up # first: quick, and Kafka's JVM startup then has both cores
	kafka_up
	;;
down)
	stop kafka kafka_pid 60 # controlled shutdown normally takes a few seconds
	stop redis redis_pid 15
	;;
stop | start)
	case ${2:-} in
	kafka) if [[ $1 == stop ]]; then stop kafka kafka_pid 60; else
		command -v "$JAVA" >/dev/null || die "java not found (need JDK 17+)"
		kafka_up
	fi ;;
	redis) if [[ $1 == stop ]]; then stop redis redis_pid 15; else redis_up; fi ;;
	*) usage ;;
	esac
	;;
status)
	status kafka kafka_pid "$KAFKA_PORT"
	status redis redis_pid "$REDIS_PORT"
	;;
env)
	echo "export CALLTRACK_TEST_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
	echo "export CALLTRACK_TEST_REDIS_ADDR=$HOST:$REDIS_PORT"
	;;
diagnose) diagnose ;;
kafka-tool) # internal/debug: run a Kafka CLI class with the cached jars
	shift
	KAFKA_TOOL_TIMEOUT=0 kafka_tool "$@"
	;;
*) usage ;;
esac
