# Sourced by the TCP bench scripts: nginx_stream_conf DIR RELAY_PORT ECHO_PORT NOFILE writes
# DIR/nginx.conf, one worker relaying 127.0.0.1:RELAY_PORT to 127.0.0.1:ECHO_PORT with the
# settings of ../shared/bench/run-peers.sh (stream module, proxy_timeout 120s, in the foreground).
nginx_stream_conf() {
  cat > "$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
worker_rlimit_nofile $4;
pid $1/nginx.pid;
error_log $1/nginx-error.log warn;
daemon off;
events { worker_connections 65536; }
stream { server { listen 127.0.0.1:$2; proxy_pass 127.0.0.1:$3; proxy_timeout 120s; } }
CONF
}
