#!/usr/bin/env bash
# Make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) answer; start them if installed
# locally but stopped; fail loudly when they cannot be reached (the integration tests need them).
set -uo pipefail

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
postgres_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if ! redis_up && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/adn-redis.log >/dev/null 2>&1 || true
  sleep 1
fi
if ! postgres_up && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1 || true
  sleep 2
fi

ok=1
redis_up || { echo "Redis is not reachable at 127.0.0.1:6379: install and start redis-server" >&2; ok=0; }
postgres_up || { echo "PostgreSQL is not reachable at 127.0.0.1:5432: install and start it (trust auth)" >&2; ok=0; }
[ "$ok" = 1 ] || exit 1
echo "services: Redis and PostgreSQL are up"
