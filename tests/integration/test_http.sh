#!/usr/bin/env bash
# Files given as http:// and https:// URLs: mapq run reads each once for
# its hash and size and submits a reference that keeps the URL; agents
# read it again into the attempt's directory, under the name in its path,
# and refuse content the server changed since. Nothing is written to a
# URL. Real web servers (python3's http.server, once behind TLS with a
# certificate made here); waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
P=$MAPQ_NAMESPACE
mkdir -p "$TMP/www/sub"
printf 'alpha\n' >"$TMP/www/a.txt"
printf 'beta\n' >"$TMP/www/sub/b.txt"
printf 'alpha\n' >"$TMP/www/same-as-a.txt"

# A plain server, and one behind TLS whose certificate only CURL_CA_BUNDLE
# vouches for.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
cat >"$TMP/serve.py" <<'PY'
import functools, http.server, ssl, sys
port, root, tls = int(sys.argv[1]), sys.argv[2], len(sys.argv) > 3
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
PY
serve() { # serve PORT [CERT KEY]: starts a server, waits until it answers
    python3 "$TMP/serve.py" "$1" "$TMP/www" "${@:2}" >>"$TMP/www.log" 2>&1 &
    PIDS+=($!)
}
HP=$(free_port)
serve "$HP"
SP=$(free_port)
serve "$SP" "$TMP/cert.pem" "$TMP/key.pem"
up() { python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"; }
wait_for 10 up "$HP" && wait_for 10 up "$SP" || { echo "not ok - the web servers did not start"; exit 1; }
H="http://127.0.0.1:$HP"
S="https://localhost:$SP"
export CURL_CA_BUNDLE="$TMP/cert.pem"
start_agents 2

cat >"$TMP/urls.yaml" <<YAML
name: urls
inputs:
  docs: {type: "list[file]"}
tasks:
  look:
    inputs: {doc: file}
    output: str
    cache: {version: "1"}
    command:
      - sh
      - -c
      - |
        echo "\$MAPQ_IN_doc" >>"$TMP/ran.log"
        echo "\"\$(basename "\$MAPQ_IN_doc") \$(cat "\$MAPQ_IN_doc")\""
nodes:
  m: {map: look, over: {doc: \$inputs.docs}, system_retries: 1}
output: {seen: \$m, docs: \$inputs.docs}
YAML
inputs() { list_input "$1" docs "${@:2}"; } # inputs FILE URL...
ran() { [ -f "$TMP/ran.log" ] && wc -l <"$TMP/ran.log" | tr -d ' ' || echo 0; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- http and https in, the files seen by the task -------------------------------
inputs "$TMP/in.json" "$H/a.txt?v=1" "$S/sub/b.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/in.json" --json \
    >"$TMP/run1.json" 2>"$TMP/run1.err"
rc=$?
out() { python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["output"][sys.argv[2]]))' "$@" 2>&1; }
check "each task reads its URL's content, under the name in the URL's path" \
    '0 ["a.txt alpha", "b.txt beta"]' "$rc $(out "$TMP/run1.json" seen)"
check "the submitted references keep the URLs, with the contents' hashes and sizes" \
    "[{\"sha256\": \"$(sha "$TMP/www/a.txt")\", \"size\": 6, \"uri\": \"$H/a.txt?v=1\"}, {\"sha256\": \"$(sha "$TMP/www/sub/b.txt")\", \"size\": 5, \"uri\": \"$S/sub/b.txt\"}]" \
    "$(out "$TMP/run1.json" docs)"
x1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run1.json")
"$MAPQ" result "$x1" --fetch "$TMP/got" >/dev/null 2>"$TMP/fetch.err"
check "mapq result --fetch reads URLs too" "0 mapq: 2 files written to $TMP/got alpha beta" \
    "$? $(cat "$TMP/fetch.err") $(cat "$TMP/got/a.txt" "$TMP/got/b.txt" | tr '\n' ' ' | sed 's/ $//')"

# ---- cache keys take content --------------------------------------------------------
inputs "$TMP/in2.json" "$H/same-as-a.txt"
before=$(ran)
timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/in2.json" >/dev/null 2>"$TMP/run2.err"
check "the same content at another URL is a cache hit" "0 $before" "$? $(ran)"

# ---- bad input ------------------------------------------------------------------------
execs_before=$(redis_cli ZCARD "$P:execs")
inputs "$TMP/404.json" "$H/a.txt" "$H/nope.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/404.json" >/dev/null 2>"$TMP/404.err"
check "a URL the server does not have is refused at submit, naming the element" \
    "2 mapq: \$inputs.docs[1]: $H/nope.txt: HTTP 404" "$? $(cat "$TMP/404.err")"
dead=$(free_port)
inputs "$TMP/dead.json" "http://127.0.0.1:$dead/a.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/dead.json" >/dev/null 2>"$TMP/dead.err"
check "a server that is not there is refused at submit, saying why" \
    "2 yes" "$? $(grep -q "^mapq: \$inputs.docs\[0\]: http://127.0.0.1:$dead/a.txt: .*[Cc]onnect" "$TMP/dead.err" && echo yes || cat "$TMP/dead.err")"
inputs "$TMP/tls.json" "$S/a.txt"
env -u CURL_CA_BUNDLE timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/tls.json" \
    >/dev/null 2>"$TMP/tls.err"
check "an https server whose certificate nobody vouches for is refused" \
    "2 yes" "$? $(grep -q "^mapq: \$inputs.docs\[0\]: $S/a.txt: .*certificate" "$TMP/tls.err" && echo yes || cat "$TMP/tls.err")"
check "... and nothing is submitted" "$execs_before" "$(redis_cli ZCARD "$P:execs")"

# Content that changed on the server after submit: the agents refuse it,
# retry once (system_retries: 1), then the subtask fails naming the URL.
printf 'gamma\n' >"$TMP/www/g.txt"
inputs "$TMP/g.json" "$H/g.txt"
execs=$(redis_cli ZCARD "$P:execs")
kill -STOP "${PIDS[@]:2}"
timeout -s KILL 60 "$MAPQ" run "$TMP/urls.yaml" --inputs "$TMP/g.json" >"$TMP/g.out" 2>"$TMP/g.err" &
run_pid=$!
created() { [ "$(redis_cli ZCARD "$P:execs")" -gt "$execs" ]; }
wait_for 30 created
printf 'GAMMA\n' >"$TMP/www/g.txt"
kill -CONT "${PIDS[@]:2}"
wait_for 60 exited "$run_pid"
wait "$run_pid"
check "content changed since submit fails its subtask (exit 1), naming the URL" \
    "1 yes" "$? $(grep -q "0: cannot fetch $H/g.txt: content of $H/g.txt does not match its sha256/size" "$TMP/g.err" && echo yes || cat "$TMP/g.err")"
x=$(exec_of "$TMP/g.err")
check "... after one system retry (system_retries: 1)" "system_error failed" \
    "$("$MAPQ" logs "$x" m --json | python3 -c '
import json, sys
print(" ".join(e["phase"] for e in json.load(sys.stdin)))')"

finish
