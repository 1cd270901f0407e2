# netns.sh - the hosts of the multi-host suite, built from network
# namespaces (sourced by test_multihost.sh).
#
# A "switch" namespace holds a bridge; each host is a namespace of its own
# joined to the bridge by a veth pair (eth0 in the host, sw-<host> in the
# switch), with an address of the private subnet MH_NET.0/24 on its eth0
# and its loopback up. Every link, address and route lives inside these
# namespaces: the root namespace is never touched (the pairs are created
# inside the switch namespace, their host end moved straight to its host).
# Namespace names carry the PID of the run, so two runs cannot clash.
#
# A host's link is cut at the switch (sw-<host> set down): the host keeps
# its address and route, and what it sends is silently lost, as when a
# cable or a switch port fails: its programs see timeouts (and, once its
# neighbour entries have failed, "No route to host").
#
# MH_WHY and the like are read by the script that sources this file:
# shellcheck shell=bash disable=SC2034

MH_ID=$$
MH_NET=10.231.0
MH_SW="mqsw-$MH_ID"
MH_HOSTS=() # host names, in the order they were added
MH_WHY=     # why the last mh_netns_usable or mh_netem failed

# mh_ns HOST: the namespace of HOST.
mh_ns() { echo "mq$1-$MH_ID"; }

# mh_in HOST CMD...: runs CMD on HOST (in its network namespace).
mh_in() {
    local ns
    ns=$(mh_ns "$1")
    shift
    ip netns exec "$ns" "$@"
}

# mh_netns_usable: whether network namespaces can be made here; on failure
# MH_WHY says why.
mh_netns_usable() {
    local probe="mqprobe-$MH_ID" out
    if [ "$(id -u)" -ne 0 ]; then
        MH_WHY="needs root (network namespaces)"
        return 1
    fi
    if ! command -v ip >/dev/null 2>&1; then
        MH_WHY="ip (iproute2) is not installed"
        return 1
    fi
    if ! out=$(ip netns add "$probe" 2>&1); then
        MH_WHY="ip netns add failed: $(echo "$out" | head -n 1)"
        return 1
    fi
    if ! out=$(ip -n "$probe" link add mhbr type bridge 2>&1); then
        ip netns del "$probe" 2>/dev/null
        MH_WHY="cannot create a bridge in a namespace: $(echo "$out" | head -n 1)"
        return 1
    fi
    ip netns del "$probe"
}

# mh_switch_up: the switch namespace and its bridge.
mh_switch_up() {
    ip netns add "$MH_SW" || return 1
    ip -n "$MH_SW" link set lo up &&
        ip -n "$MH_SW" link add br0 type bridge stp_state 0 forward_delay 0 &&
        ip -n "$MH_SW" link set br0 up
}

# mh_host_add HOST ADDR: the namespace of HOST, joined to the switch, with
# MH_NET.ADDR/24 on its eth0.
mh_host_add() {
    local host=$1 addr=$2 ns
    ns=$(mh_ns "$host")
    ip netns add "$ns" || return 1
    MH_HOSTS+=("$host")
    ip -n "$ns" link set lo up &&
        ip -n "$MH_SW" link add "sw-$host" type veth peer name eth0 netns "$ns" &&
        ip -n "$MH_SW" link set "sw-$host" master br0 &&
        ip -n "$MH_SW" link set "sw-$host" up &&
        ip -n "$ns" addr add "$MH_NET.$addr/24" dev eth0 &&
        ip -n "$ns" link set eth0 up
}

# mh_addr N: the address MH_NET.N.
mh_addr() { echo "$MH_NET.$1"; }

# mh_cut HOST / mh_restore HOST: takes HOST's switch port down / up.
mh_cut() { ip -n "$MH_SW" link set "sw-$1" down; }
mh_restore() { ip -n "$MH_SW" link set "sw-$1" up; }

# mh_reaches FROM ADDR PORT: whether host FROM can open a TCP connection
# to ADDR:PORT (within 1 s).
mh_reaches() {
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's
    mh_in "$1" timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null
}

# mh_netem HOST DELAY: delays what HOST sends by DELAY (netem on its eth0);
# on failure MH_WHY holds tc's message. mh_netem_off HOST removes it.
mh_netem() {
    local out
    if ! out=$(ip netns exec "$(mh_ns "$1")" tc qdisc add dev eth0 root netem delay "$2" 2>&1); then
        MH_WHY=$(echo "$out" | head -n 1)
        return 1
    fi
}
mh_netem_off() { ip netns exec "$(mh_ns "$1")" tc qdisc del dev eth0 root 2>/dev/null; }

# mh_kill_all SIGNAL: sends SIGNAL to every process left in the hosts'
# namespaces (the namespaces are the run's own, so are they).
mh_kill_all() {
    local host pid
    for host in "${MH_HOSTS[@]}"; do
        for pid in $(ip netns pids "$(mh_ns "$host")" 2>/dev/null); do
            kill "-$1" "$pid" 2>/dev/null
        done
    done
}

# mh_net_down: ends whatever still runs in the hosts, then removes every
# namespace of the run (their links go with them).
mh_net_down() {
    local host
    mh_kill_all TERM
    for _ in $(seq 1 50); do
        [ -z "$(for host in "${MH_HOSTS[@]}"; do ip netns pids "$(mh_ns "$host")" 2>/dev/null; done)" ] && break
        sleep 0.1
    done
    mh_kill_all KILL
    for host in "${MH_HOSTS[@]}"; do
        ip netns del "$(mh_ns "$host")" 2>/dev/null
    done
    ip netns del "$MH_SW" 2>/dev/null
    MH_HOSTS=()
}
