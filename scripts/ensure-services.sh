#!/usr/bin/env bash
# ensure-services.sh: make sure the PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379) that tsync's demo and tests use are up. A service that is
# down is started when this is a Debian-style machine and we are root
# (pg_ctlcluster, redis-server); otherwise the script says how to start it and
# fails. `tsync demo` does the same check by itself (package devstack).
#
# With TSYNC_TEST_DATABASE_URL set, the tests use that database and the local
# PostgreSQL is not checked.
set -euo pipefail

host=127.0.0.1
pg_port=5432
redis_port=6379

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port
	for _ in $(seq 1 100); do
		if listening "$2" "$3"; then return 0; fi
		sleep 0.2
	done
	echo "ensure-services: $1 was started but does not listen on $2:$3 after 20s" >&2
	return 1
}

fail=0

if [[ -n "${TSYNC_TEST_DATABASE_URL:-}" ]]; then
	echo "PostgreSQL: the tests use TSYNC_TEST_DATABASE_URL; not checking $host:$pg_port"
elif listening "$host" "$pg_port"; then
	echo "PostgreSQL: up at $host:$pg_port"
elif [[ $(id -u) -eq 0 ]] && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
	for version in $(ls /etc/postgresql); do
		echo "PostgreSQL: starting cluster $version/main"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start
	done
	wait_for PostgreSQL "$host" "$pg_port"
	# Accepting TCP is not accepting queries yet.
	if command -v pg_isready >/dev/null; then
		for _ in $(seq 1 100); do pg_isready -q -h "$host" -p "$pg_port" && break; sleep 0.2; done
	fi
	echo "PostgreSQL: up at $host:$pg_port"
else
	cat >&2 <<MSG
PostgreSQL is not running at $host:$pg_port. Start it, e.g. (Debian, as root):
    pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start
or point the tests at another one with TSYNC_TEST_DATABASE_URL (and tsync at it
with TSYNC_DATABASE_URL). It needs a database "test" that user postgres can use.
MSG
	fail=1
fi

if listening "$host" "$redis_port"; then
	echo "Redis: up at $host:$redis_port"
elif [[ $(id -u) -eq 0 ]] && command -v redis-server >/dev/null; then
	echo "Redis: starting redis-server"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	wait_for Redis "$host" "$redis_port"
	echo "Redis: up at $host:$redis_port"
else
	cat >&2 <<MSG
Redis is not running at $host:$redis_port. Start it, e.g.:
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $redis_port --save "" --appendonly no
or point tsync at another one with TSYNC_REDIS_URL.
MSG
	fail=1
fi

exit "$fail"
