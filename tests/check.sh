# check.sh - the TAP-style check the shell test suites share (sourced).
#
# check NAME EXPECTED ACTUAL prints "ok - NAME", or "not ok - NAME" with
# both values, and counts it in PASSED or FAILED (the sourcing script
# starts them at 0 and reports them).

check() {
    if [ "$2" = "$3" ]; then
        echo "ok - $1"
        PASSED=$((PASSED + 1))
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#   actual:   $3"
        FAILED=$((FAILED + 1))
    fi
}
