#!/usr/bin/env bash
# nginx as a subject (the contract of bench/relay/subject.sh): one worker relaying TCP
# 127.0.0.1:RELAY_PORT to 127.0.0.1:ECHO_PORT with the bench's stream settings
# (nginx-stream-conf.sh), in the foreground, so the paired TCP connection-rate test can put nginx
# and Sluice on one CPU at the same time (tcp-conn-pair.sh; docs/datapath.md, "Where Sluice spends
# more than nginx"). NGINX_HALF_CLOSE=1 adds `proxy_half_close on` (a FIN forwarded as a FIN, as
# Sluice does). Only the TCP echo route: IPERF_RELAY_PORT and IPERF_PORT are taken and ignored.
#   bench/relay/tcp-conn-pair.sh bench/relay/subject-nginx.sh bench/relay/subject.sh
#   NGINX_HALF_CLOSE=1 bench/relay/tcp-conn-pair.sh bench/relay/subject-nginx.sh bench/relay/subject.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
R=$1 E=$2
W=$(mktemp -d /tmp/sluice-bench-nginx.XXXXXX)
. "$HERE/nginx-stream-conf.sh"
nginx_stream_conf "$W" "$R" "$E" 20000
[ "${NGINX_HALF_CLOSE:-0}" = 1 ] && sed -i 's/proxy_timeout 120s;/proxy_timeout 120s; proxy_half_close on;/' "$W/nginx.conf"
exec nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log"
