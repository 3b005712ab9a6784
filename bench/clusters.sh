# Throwaway PostgreSQL clusters for the bench scripts (bench/run.sh, bench/rss.sh,
# bench/jobs-model.sh), sourced, never run alone. The sourcing script sets PG_BINDIR and
# WORK, defines `log`, and calls stop_clusters from its own EXIT trap.
#
# start_cluster NAME VAR: initdb (skipped when WORK already holds one, as a kept rss work
# folder does) and start with the stock configuration, on a free port of 127.0.0.1 only,
# trust auth for this throwaway cluster only; the port goes into VAR. Never call it as
# $(start_cluster …): STARTED must grow in the calling shell, or the trap stops nothing
# (the servers then only went down a minute later, when they found their lock file deleted
# with the work dir) and the CPU counts, which read each postmaster's children, see no server.

STARTED=() # data directories whose server we started: stop_clusters stops exactly these

as_pg() {
  # PostgreSQL refuses to run as root: use the postgres OS user then.
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

start_cluster() {
  local name=$1 dir=$WORK/$1 port
  port=$(free_port)
  mkdir -p "$dir" && chown postgres "$dir" 2>/dev/null || true
  [[ -f $dir/data/PG_VERSION ]] || as_pg "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
  STARTED+=("$dir/data")
  printf -v "$2" '%s' "$port"
}

stop_clusters() {
  local dir
  for dir in "${STARTED[@]}"; do
    as_pg "$PG_BINDIR/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || log "could not stop the cluster in $dir"
  done
}

# admin PORT ARGS…: psql as the clusters' superuser; q ARGS…: psql with the given URL.
admin() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$1/postgres" "${@:2}"; }
q() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
