#!/bin/sh
# As the official redis image: protected mode off (the server is reached over the compose
# network, never published), unless the command turns it back on.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    case "${1:-}" in
        ""|-*) set -- redis-server --protected-mode no "$@" ;;
        *) conf=$1; shift; set -- redis-server "$conf" --protected-mode no "$@" ;;
    esac
fi
exec "$@"
