#!/bin/sh
# The official nginx image's start-up, for the Debian-built nginx base: sources
# /docker-entrypoint.d/*.envsh, runs its *.sh, renders /etc/nginx/templates/*.template into
# /etc/nginx/conf.d/ with envsubst (only the variables set in the environment, so nginx's own
# $variables stay), then runs the command (nginx -g 'daemon off;').
set -eu
if [ "${1:-}" = nginx ]; then
    for f in $(find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f | sort); do
        case "$f" in
            *.envsh) echo "$0: sourcing $f"; . "$f" ;;
            *.sh) echo "$0: running $f"; "$f" ;;
        esac
    done
    defined=$(env | cut -d= -f1 | sed 's/^/$/' | tr '\n' ' ')
    for template in /etc/nginx/templates/*.template; do
        [ -f "$template" ] || continue
        out="/etc/nginx/conf.d/$(basename "$template" .template)"
        echo "$0: rendering $template to $out"
        envsubst "$defined" < "$template" > "$out"
    done
fi
exec "$@"
