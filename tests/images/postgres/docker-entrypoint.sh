#!/bin/bash
# The contract of the official postgres image, on Debian's PostgreSQL: POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB (and their *_FILE forms), POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, data in $PGDATA (initdb on the first start only),
# /docker-entrypoint-initdb.d/*.sh|*.sql on the first start, runs as the postgres user.
set -Eeuo pipefail

# VAR_FILE=/run/secrets/x sets VAR from that file (Docker secrets), never both.
file_env() {
	local var="$1" default="${2:-}"
	local file_var="${var}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	local value="$default"
	if [ -n "${!var:-}" ]; then
		value="${!var}"
	elif [ -n "${!file_var:-}" ]; then
		value="$(<"${!file_var}")"
	fi
	export "$var"="$value"
	unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	# Named volumes and bind mounts arrive owned by root: hand them to postgres, then drop.
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 2775 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
		EOE
		exit 1
	fi
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" 2>/dev/null || true

	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth=trust $POSTGRES_INITDB_ARGS -D "$PGDATA"
	auth_method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	printf '\nhost all all all %s\n' "$auth_method" >>"$PGDATA/pg_hba.conf"

	# A private server on the socket only, for the first-start work.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	export PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD"
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		psql -v ON_ERROR_STOP=1 --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)
			echo "running $f"
			# shellcheck disable=SC1090 # the operator's init scripts, sourced as upstream does
			. "$f"
			;;
		*.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" -f "$f" ;;
		*) ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
elif [ "$1" = 'postgres' ]; then
	echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
fi

exec "$@"
