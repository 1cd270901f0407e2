# common.sh - sourced by the scripts here.

# quiet COMMAND...: runs COMMAND with its output kept aside, and shows that
# output only when COMMAND fails (cmake names a missing package on stdout).
quiet() {
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || cat "$log"
    rm -f "$log"
    return "$rc"
}
