#!/bin/sh
# A persistent worker in POSIX shell with no dependencies: squares its int
# input x (docs/PROTOCOL.md, "Worker line protocol"). As a task:
#
#   square:
#     inputs: {x: int}
#     output: int
#     worker: true
#     command: [sh, /path/to/square_worker.sh]
#
# It reads one request line at a time and answers with one line on stdout;
# its log goes to stderr. It does not parse JSON; it assumes of each line:
# - the input is written "x": (no blank before the colon), and no other
#   key named "x" comes before it. As a key's quotes and colon can never be
#   inside a JSON string (quotes there are escaped), that holds for every
#   request of a task whose only input is x;
# - its value is an integer in plain decimal (JSON's form: no leading
#   zeros, no fraction or exponent), followed by a comma, a closing brace
#   or a blank, and within the shell's arithmetic (dash: 64 bits, where
#   x * x wraps around).
# Anything else gets an error reply and the next line is served. EOF (the
# agent closed stdin): exit 0.

while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    *'"x":'*) x=${line#*\"x\":} ;; # after the first "x":
    *)
        printf '{"error":"the request has no input x"}\n'
        continue
        ;;
    esac
    x=${x#"${x%%[![:blank:]]*}"} # without leading blanks
    x=${x%%[,\}[:blank:]]*}       # up to the first comma, brace or blank
    case $x in
    '' | - | *[!0-9-]* | ?*-* | 0?* | -0?*)
        printf '{"error":"input x is not an integer"}\n'
        continue
        ;;
    esac
    echo "squaring $x" >&2
    printf '{"output":%d}\n' "$((x * x))"
done
exit 0
