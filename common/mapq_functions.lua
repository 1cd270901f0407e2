#!lua name=mapq1
--[[
mapq_functions.lua - every state change of a subtask on Redis, as one
atomic, batched function (Redis 7 Functions: persisted and replicated, so a
restart or failover never loses them).

Keys (P is the namespace prefix, passed as the first argument):
  P:q:<queue>:<cls>:<exec>
                       LIST  the execution's attempts ready to run; cls is
                             nc, np, ic or ip (normal/interruptible x
                             command/plugin). A first attempt is queued as
                             "<k>/<index>", its ref following from the key
                             (see first_entry); any other as its ref
  P:qx:<queue>:<cls>   ZSET  "<exec>/<priority>" -> pass: the executions
                             whose list above is not empty, served lowest
                             pass first (stride scheduling, see pop)
  P:bell:<queue>:<cls> LIST  doorbell of that list: one entry while it has work
  P:lease:<agent>      HASH  ref -> lease deadline (ms, server time): the
                             attempts leased to the agent of that name
  P:leases             ZSET  agent -> the latest deadline of its leases: an
                             agent past it (dead, or cut off) loses them all
  P:inflight           ZSET  ref -> lease deadline: the leases of revision 11
                             and older, honoured until they end (see below)
  P:b:<exec>           HASH  "<k>/<index>" -> subtask body (msgpack)
  P:r:<exec>:<k>       HASH  subtask key (16 bytes) -> result record
  P:ev:<exec>:<epoch>  LIST  events for the scheduler: msgpack arrays
                             [k, index, phase, k, index, phase, ...], or
                             the end marker (the msgpack string "end",
                             queued by abort and cancel); epoch
                             (field epoch of P:x:<exec>, 0 when unset) goes
                             up with every change of owner, so a driver
                             that lost the execution never takes events
                             meant for the next
  P:log:<exec>         HASH  "<k>/<index>" -> the attempts of a subtask, one
                             msgpack map after another; "<k>/p<page>" ->
                             a log page: first attempts that succeeded of
                             a range of node k's elements (the agents'
                             pages, mapq_record.h), each map with its
                             element index i
  P:c:<task>:<hex key> STRING a cache entry: the result record of a success
                             (with PX ttl when the task has one)
  P:ck:<exec>          HASH  "<k>/<index>" -> the subtask's last checkpoint
  P:cr:<hex key>       STRING cache_serialize: "<exec>/<k>/<index>" of the
                             subtask holding the key's reservation (PX lease)
  P:cw:<hex key>       LIST  refs parked while another holds the reservation
  P:cwait              SET   hex keys that have parked refs
  P:f:<exec>:<k>       HASH  subtask key -> "leader,follower,..." indices of a
                             cached node's identical subtasks, while the
                             leader runs
  P:x:<exec>           HASH  the execution record
  P:agents             ZSET  agent name -> last heartbeat (ms)
  P:agent:<name>       HASH  what the agent registered: host, pid, slots,
                             interruptible, queues, cpus (thousandths),
                             mem (bytes), started
  P:delayed            ZSET  ref -> time (ms) it may run: user retries
                             waiting out their retry_backoff
  P:owners             ZSET  exec -> deadline (ms) of its driver's lease;
                             the owner's name is the field owner of P:x:<exec>
  P:blob:<hex>         STRING a blob of the embedded store (mapq_blob.h)
  P:bh:<hex>           ZSET  the blob's holders: the name of a key without P:
                             ('x:<exec>' or 'c:<task>:<hex key>') -> until
                             when (ms) it holds the blob whether its key
                             exists or not (0: while its key exists)
  P:bx                 ZSET  hex -> when (ms) the sweep next looks at the
                             blob: every blob with holders is in it

A ref names one attempt of one subtask:
  <exec>/<k>/<index>/<u>/<s>/<i>/<queue>/<cls>
u = user failures so far, s = system failures (lost or interrupted),
i = interruptions. Every retry makes a new ref, so a ref is also the fencing
token: an attempt may finish only while its ref is in its agent's
P:lease:<agent>.

Leases. Each agent's leases are a hash of its own, so that the calls that
check and end them (every step) read plain strings, not scores, and the
reaper finds the lost ones by agent: P:leases is scored by when each
agent's leases run out, and an agent's claims and renewals (its heartbeat,
every second while it holds any) push that on. An agent past it (killed,
host lost, cut off) loses every lease it has. A lease the agent no longer
lists in its renewals (it lost the reply that handed it over, or an agent
of the same name died and was restarted at once) is taken back by that
renewal once its own deadline has passed, so each lease still ends a lease
period after its agent last vouched for it, as a lease per ref would.

Replies are flat arrays or one msgpack string (hiredis 0.14 limits nesting).
docs/PROTOCOL.md describes all of this for other clients.

Versions. The library is named after the protocol (keys, functions, their
arguments and replies): mapq1. A change that breaks a caller of one
protocol makes the next, loaded beside this one under its own name. Within
a protocol the library has revisions, each compatible with every process of
the protocol: REVISION goes up with every change of this file (with
MAPQ_FUNCTIONS_REVISION and MAPQ_FUNCTIONS_SHA256 in mapq_redis.h), and a
process replaces the library only when Redis holds an older revision
(mapq1_version, below), never a newer one.
]]

local REVISION = 21

local ENDED = {succeeded = true, failed = true, cancelled = true}

-- What abort and cancel queue after the last event a driver counts: the
-- msgpack string "end" (cmsgpack is not there while the library loads).
local END_MARK = '\163end'

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse_ref(ref)
    local e, k, i, u, s, n, q, c =
        string.match(ref, '^([^/]+)/(%d+)/(%d+)/(%d+)/(%d+)/(%d+)/([^/]+)/(%a%a)$')
    if not e then
        return nil
    end
    return {exec = e, k = k, index = i, u = tonumber(u), s = tonumber(s),
            i = tonumber(n), queue = q, cls = c}
end

local function make_ref(r)
    return r.exec .. '/' .. r.k .. '/' .. r.index .. '/' .. r.u .. '/' ..
        r.s .. '/' .. r.i .. '/' .. r.queue .. '/' .. r.cls
end

-- Calls redis.call(cmd, key, [opt,] args...) in slices that stay within
-- Lua's unpack limit, from args[first] (1 when nil) on; step must keep
-- pairs together. Returns the reply of the last call.
local function call_many(cmd, key, args, step, opt, first)
    step = step or 1000
    local reply
    for j = first or 1, #args, step do
        local last = math.min(j + step - 1, #args)
        if opt then
            reply = redis.call(cmd, key, opt, unpack(args, j, last))
        else
            reply = redis.call(cmd, key, unpack(args, j, last))
        end
    end
    return reply
end

--[[
Held counts. Field h:<k> of P:x:<exec> counts the subtasks of node k that
agents hold: leased in a P:lease:<agent> (running, or prefetched to start
on a free slot). Every path that adds a lease adds to it (take: claim and
step) and every path that takes one away subtracts (finish_attempts: done
and step; reserve parking a ref; reap and renew), so that mapq status tells
running subtasks from queued ones. A call gathers its changes per execution and
node and makes one HINCRBY per pair whose count changed, never one per
subtask, at its end, once its leases changed: a step that finishes as many
of a node as it claims makes none. A call that fails part-way (a command
the Redis user may not run) may leave a count off by what it changed;
readers clamp it.
]]
-- A list of changes to held counts, flat: e, k, n, e, k, n, ... Made with
-- room for one change (the usual call makes one): filled from empty, a
-- table would grow twice on the way.
local function held_new()
    return {nil, nil, nil}
end

-- Adds n to the count of node k of execution e in h.
local function held_add(h, e, k, n)
    local m = #h
    for j = m - 2, 1, -3 do
        if h[j + 1] == k and h[j] == e then
            h[j + 2] = h[j + 2] + n
            return
        end
    end
    h[m + 1], h[m + 2], h[m + 3] = e, k, n
end

-- Writes the changes gathered in h: one HINCRBY per execution and node.
local function held_write(P, h)
    for j = 1, #h, 3 do
        if h[j + 2] ~= 0 then
            redis.call('HINCRBY', P .. ':x:' .. h[j], 'h:' .. h[j + 1], h[j + 2])
        end
    end
end

--[[
A hash with a field per subtask (P:b, P:r, P:log, P:lease) is made a hash
table when it is created. Redis keeps a hash as a listpack up to
hash-max-listpack-entries fields (512 in Debian's build), and a listpack
lookup reads every entry before it: written a subtask at a time, such a key
would cost O(n) per entry up to that size (leases in a listpack cost a
command subtask half as much again). A value longer than hash-max-listpack-value
(64 by default) converts the key at once, and Redis never converts it
back, so the first write adds TABLE_MARK, a field no subtask uses, with
such a value, and deletes it. The value is 1 KiB, made once: an agent's
leases go whenever it holds none (between each subtask of a window of one)
and are made again with the next, and Lua hashes every string it makes
whole, so a long value made anew each time would cost such a subtask more
than its lease. 1 KiB still converts unless hash-max-listpack-value is
raised sixteenfold.
]]
local TABLE_MARK = '\0'
local BODIES_TABLE_MIN = 64
-- Made at the first call: loading has no string library.
local table_mark_value

-- HSET of kv (field, value, ...; from kv[first], 1 when nil) into key,
-- making key a hash table when this creates it.
local function hset_many(key, kv, first)
    if #kv < (first or 1) then
        return
    end
    local new = redis.call('EXISTS', key) == 0
    if new then
        table_mark_value = table_mark_value or string.rep('-', 1024)
        redis.call('HSET', key, TABLE_MARK, table_mark_value)
    end
    call_many('HSET', key, kv, 2000, nil, first)
    if new then
        redis.call('HDEL', key, TABLE_MARK)
    end
end

-- The leases of agent.
local function lease_key(P, agent)
    return P .. ':lease:' .. agent
end

local function ring(P, queue, cls)
    local bell = P .. ':bell:' .. queue .. ':' .. cls
    if redis.call('LLEN', bell) == 0 then
        redis.call('RPUSH', bell, '1')
    end
end

-- A subtask's first attempt, as its execution's list holds it: its body
-- field "<k>/<index>". Its ref, <exec>/<k>/<index>/0/0/0/<queue>/<cls>,
-- is made when it is leased, from the list's key (lease_list): a push then
-- makes one string per subtask, not two, and a claim finds the body field
-- without taking a ref apart.
local function first_entry(k, index)
    return k .. '/' .. index
end

--[[
Fair sharing. Each execution has a ready list of its own per queue and
class, and P:qx:<queue>:<cls> holds the executions whose list is not
empty, as "<exec>/<priority>", scored by a pass. A claim serves the lowest
pass and advances it by PASS_UNIT / priority per subtask taken (stride
scheduling), so executions sharing a queue take turns subtask by subtask,
a priority-30 execution getting three turns for each of a priority-10 one.
An execution whose list was empty joins at the lowest pass waiting, level
with the others: a small run submitted after a large one starts at the
next free slot. An execution alone on a queue keeps its pass untouched, so
the common case costs one ZRANGE more than a single list.
]]
-- PRIORITY_DEFAULT and _MAX are MAPQ_PRIORITY_DEFAULT and _MAX of
-- scheduler/driver/mapq_driver.h.
local PASS_UNIT = 1000
local PRIORITY_DEFAULT = 10
local PRIORITY_MAX = 100

local function ready_key(P, queue, cls, exec)
    return P .. ':q:' .. queue .. ':' .. cls .. ':' .. exec
end

local function turns_key(P, queue, cls)
    return P .. ':qx:' .. queue .. ':' .. cls
end

-- The execution and priority of a member of a turns set. A member that is
-- not "<exec>/<priority>" (written by someone else) is read as an
-- execution of the default priority, so its list is still drained.
local function turn_of(member)
    local e, w = string.match(member, '^([^/]+)/(%d+)$')
    if not e then
        return member, PRIORITY_DEFAULT
    end
    w = tonumber(w)
    return e, math.max(1, math.min(PRIORITY_MAX, w))
end

-- Queues attempts (refs, or entries of first_entry; all of exec, for
-- queue and class cls) at the tail of the execution's list, or at its head
-- in their order with front, and rings the bell. An execution whose list
-- was empty joins the turns at the lowest pass waiting; its priority is
-- read from its record then only.
local function enqueue(P, queue, cls, exec, refs, front)
    if #refs == 0 then
        return
    end
    local len
    if front then
        -- LPUSH puts its last argument first: keep their order.
        local rev = {}
        for m = #refs, 1, -1 do
            rev[#rev + 1] = refs[m]
        end
        len = call_many('LPUSH', ready_key(P, queue, cls, exec), rev)
    else
        len = call_many('RPUSH', ready_key(P, queue, cls, exec), refs)
    end
    if len == #refs then
        local turns = turns_key(P, queue, cls)
        local low = redis.call('ZRANGE', turns, 0, 0, 'WITHSCORES')
        local w = tonumber(redis.call('HGET', P .. ':x:' .. exec, 'priority'))
        if not w or w < 1 or w > PRIORITY_MAX then
            w = PRIORITY_DEFAULT
        end
        redis.call('ZADD', turns, 'NX', low[2] or 0,
            exec .. '/' .. string.format('%d', w))
    end
    ring(P, queue, cls)
end

-- Stores bodies (fields: "<k>/<index>", body, ...; from fields[first], 1
-- when nil) and queues their first attempts (entries, see first_entry),
-- ringing the bell.
local function queue_new(P, exec, queue, cls, fields, entries, first)
    if #entries == 0 then
        return
    end
    -- P:b holds the bodies queued or running: a push of fewer than
    -- BODIES_TABLE_MIN (a small window's refill) keeps it small, and a
    -- listpack serves a small hash well.
    if #entries >= BODIES_TABLE_MIN then
        hset_many(P .. ':b:' .. exec, fields, first)
    else
        call_many('HSET', P .. ':b:' .. exec, fields, 2000, nil, first)
    end
    enqueue(P, queue, cls, exec, entries)
end

-- push(P, exec, k, queue, cls, field1, body1, field2, body2, ...)
-- Stores the bodies and queues each subtask's first attempt. A field is
-- "<k>/<index>", or (as schedulers before revision 19 send it) the
-- index alone.
local function push(keys, args)
    local P, exec, k, queue, cls = args[1], args[2], args[3], args[4], args[5]
    -- Placed by index: no length taken per subtask.
    local refs, n = {}, 0
    if args[6] and string.find(args[6], '/', 1, true) then
        -- The fields as they came: the bodies go in with no copy.
        for j = 6, #args, 2 do
            n = n + 1
            refs[n] = args[j]
        end
        queue_new(P, exec, queue, cls, args, refs, 6)
        return n
    end
    local fields = {}
    for j = 6, #args, 2 do
        local entry = first_entry(k, args[j])
        n = n + 1
        fields[2 * n - 1], fields[2 * n] = entry, args[j + 1]
        refs[n] = entry
    end
    queue_new(P, exec, queue, cls, fields, refs)
    return n
end

-- MGET of keys in slices; one reply per key (false where missing).
local function mget_many(keys)
    if #keys == 0 then
        return {}
    elseif #keys <= 1000 then
        return redis.call('MGET', unpack(keys)) -- one slice: not copied
    end
    local out = {}
    for j = 1, #keys, 1000 do
        local last = math.min(j + 999, #keys)
        local got = redis.call('MGET', unpack(keys, j, last))
        for m = 1, last - j + 1 do
            out[#out + 1] = got[m]
        end
    end
    return out
end

-- Calls redis.call(cmd, key, members...) in slices and returns the
-- concatenated replies, one per member (false where Redis says nil): ZMSCORE
-- and HMGET.
local function gather(cmd, key, members)
    if #members == 0 then
        return {}
    elseif #members <= 1000 then
        return redis.call(cmd, key, unpack(members)) -- one slice: not copied
    end
    local out = {}
    for j = 1, #members, 1000 do
        local last = math.min(j + 999, #members)
        local got = redis.call(cmd, key, unpack(members, j, last))
        for m = 1, last - j + 1 do
            out[#out + 1] = got[m]
        end
    end
    return out
end

--[[
Leases of revision 11 and older. Those kept every lease in one sorted set,
P:inflight (ref -> deadline), which does not say whose it is. A library
that replaces one may find leases there, of agents still running their
subtasks, and honours them until they end: a ref that is not in its
agent's hash is looked for there too (only then, and a refused ref is
rare), so that its result is taken and its renewal moves it into the
agent's hash; reap takes back those past their deadline.
]]
-- The positions n of refs not held (held[n] false) that are legacy leases
-- (n -> true), or nil when there are none.
local function legacy_leases(P, refs, held)
    local key = P .. ':inflight'
    if #refs == 0 or redis.call('EXISTS', key) == 0 then
        return nil
    end
    local ask, at = {}, {}
    for n, ref in ipairs(refs) do
        if not held[n] then
            ask[#ask + 1], at[#at + 1] = ref, n
        end
    end
    local out
    if #ask > 0 then
        local scores = gather('ZMSCORE', key, ask)
        for m = 1, #ask do
            if scores[m] then
                out = out or {}
                out[at[m]] = true
            end
        end
    end
    return out
end

-- Counts the legacy leases of refs (see legacy_leases) as held in held.
-- Returns them, for the caller to take out of P:inflight once it has
-- written what it writes (nil when there are none).
local function adopt_legacy(P, refs, held)
    local legacy = legacy_leases(P, refs, held)
    if not legacy then
        return nil
    end
    local out = {}
    for n = 1, #refs do
        if legacy[n] then
            held[n] = true
            out[#out + 1] = refs[n]
        end
    end
    return out
end

-- Takes refs (adopt_legacy's, or nil) out of P:inflight.
local function end_legacy(P, refs)
    if refs then
        call_many('ZREM', P .. ':inflight', refs)
    end
end

-- Returns the group t[name], two parallel lists {a = {}, b = {}}, creating
-- it when new and noting name in order, so iteration stays deterministic.
local function group_of(t, order, name)
    local g = t[name]
    if not g then
        g = {a = {}, b = {}}
        t[name] = g
        order[#order + 1] = name
    end
    return g
end

-- Queues refs again, each on the list it names, ringing their bells: one
-- push per execution's list (at the head with front: they go next). Refs
-- that do not parse are dropped.
local function queue_refs(P, refs, front)
    local lists, order = {}, {}
    for _, ref in ipairs(refs) do
        local r = parse_ref(ref)
        if r then
            local g = group_of(lists, order, r.queue .. '/' .. r.cls .. '/' ..
                r.exec)
            g.a[#g.a + 1] = ref
        end
    end
    for _, target in ipairs(order) do
        local q, c, e = string.match(target, '^([^/]+)/(%a%a)/(.+)$')
        enqueue(P, q, c, e, lists[target].a, front)
    end
end

-- Appends entries[m] to field fields[m] of the hash key, in order: one
-- HMGET and one HSET for the whole batch. With first given, a field whose
-- first[m] is true is known to be new (a subtask's first attempt: nothing
-- logged it before), and a batch of such fields needs no HMGET.
local function append_logs(key, fields, entries, first)
    local old = {}
    for m, f in ipairs(fields) do
        if not (first and first[m]) then
            old[#old + 1] = f
        end
    end
    local got = gather('HMGET', key, old)
    local have = {}
    for m, f in ipairs(old) do
        have[f] = got[m]
    end
    local merged, order = {}, {}
    for m, f in ipairs(fields) do
        if merged[f] == nil then
            merged[f] = have[f] or ''
            order[#order + 1] = f
        end
        merged[f] = merged[f] .. entries[m]
    end
    local kv = {}
    for _, f in ipairs(order) do
        kv[#kv + 1] = f
        kv[#kv + 1] = merged[f]
    end
    hset_many(key, kv)
end

-- The event list of exec for its current owner.
local function events_key(P, exec, epoch)
    if epoch == nil then
        epoch = redis.call('HGET', P .. ':x:' .. exec, 'epoch')
    end
    return P .. ':ev:' .. exec .. ':' .. (epoch or '0')
end

-- Lowercase hex of a binary string (cache keys are 16-byte hashes).
local function hex(b)
    return (string.gsub(b, '.', function(c)
        return string.format('%02x', string.byte(c))
    end))
end

-- The phase in a result record (they begin {"p": phase, ...}): an integer
-- from 0 to 8, or nil for a record that names none.
local function record_phase(rec)
    if string.sub(rec, 2, 3) == '\161p' then
        local b = string.byte(rec, 4)
        if b and b <= 8 then
            return b
        end
    end
    local ok, t = pcall(cmsgpack.unpack, rec)
    local p = ok and type(t) == 'table' and tonumber(t.p)
    if p and p >= 0 and p <= 8 and p == math.floor(p) then
        return p
    end
    return nil
end

-- The same record with another phase.
local function with_phase(rec, phase)
    if string.sub(rec, 2, 3) == '\161p' and (string.byte(rec, 4) or 255) <= 8 then
        return string.sub(rec, 1, 3) .. string.char(phase) .. string.sub(rec, 5)
    end
    local ok, t = pcall(cmsgpack.unpack, rec)
    if ok and type(t) == 'table' then
        t.p = phase
        return cmsgpack.pack(t)
    end
    return rec
end

--[[
Blobs. A blob of the embedded store is kept while something holds it: an
execution whose inputs, results or output name it, or a cache entry whose
record does (docs/ARCHITECTURE.md, "Garbage collection"). Whoever stores a
blob holds it first (blob_hold: the blob's holder set P:bh:<hex> and the
sweep's queue P:bx), so a sweep never takes a blob on its way in. Every
path that copies a result record to a new holder holds the blobs the record
names: its field b, the raw SHA-256 of each blob, which a record has right
after its phase ({"p": phase, "b": bin, "v": value}). The sweep
(blob_sweep) looks at the blobs whose time came, drops the holders that
ended (a key gone and its grace over) and deletes a blob that none holds.
]]
local BLOB_RECHECK_MS = 3600000

-- The hex hashes of the blobs a record holds (its field b, after "p"
-- and its fixint), or nil.
local function record_blobs(rec)
    -- Bytes, not substrings: most records name no blob, and a plugin map
    -- records a hundred thousand a second.
    local m, k1, p, _, k2, b, t = string.byte(rec, 1, 7)
    if not t or m < 0x80 or m > 0x8f or k1 ~= 0xa1 or p ~= 0x70 or
        k2 ~= 0xa1 or b ~= 0x62 then
        return nil
    end
    local n, off
    local b1, b2, b3, b4 = string.byte(rec, 8, 11)
    if t == 0xc4 and b1 then
        n, off = b1, 9
    elseif t == 0xc5 and b2 then
        n, off = b1 * 256 + b2, 10
    elseif t == 0xc6 and b4 then
        n, off = ((b1 * 256 + b2) * 256 + b3) * 256 + b4, 12
    end
    if not n or n % 32 ~= 0 or off + n - 1 > #rec then
        return nil
    end
    local out = {}
    for j = off, off + n - 1, 32 do
        out[#out + 1] = hex(string.sub(rec, j, j + 31))
    end
    return out
end

-- Makes holder (a key's name without P:) hold each blob of hexes: until
-- it ends when grace_ms is 0, else also for grace_ms from now (a holder
-- whose key is yet to be written). Returns a string of '1' (the blob is
-- there) or '0' per hash.
local function hold_blobs(P, holder, grace_ms, hexes)
    local out = {}
    local now = now_ms()
    local until_ = grace_ms > 0 and string.format('%d', now + grace_ms) or '0'
    local due = string.format('%d', now + BLOB_RECHECK_MS)
    for j, h in ipairs(hexes) do
        redis.call('ZADD', P .. ':bh:' .. h, until_, holder)
        redis.call('ZADD', P .. ':bx', 'NX', due, h)
        out[j] = redis.call('EXISTS', P .. ':blob:' .. h) == 1 and '1' or '0'
    end
    return table.concat(out)
end

-- Makes holder hold the blobs record names, if any.
local function hold_record(P, holder, rec)
    local hexes = rec and record_blobs(rec)
    if hexes then
        hold_blobs(P, holder, 0, hexes)
    end
end

-- The phase a subtask that took another's result gets: CACHED for a
-- success, the same phase for a failure.
local function taken_phase(phase)
    return phase == 3 and 4 or phase
end

-- Moves up to limit delayed refs that are due onto their lists and rings
-- their bells. Called by claim and reap, so a due retry waits at most for
-- the next of either.
local function promote(P, now, limit)
    local delayed = P .. ':delayed'
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
    if #due == 0 then
        return
    end
    call_many('ZREM', delayed, due)
    queue_refs(P, due)
end

-- push_cached(P, exec, k, queue, cls, task, overwrite, index1, key1, body1,
--             index2, key2, body2, ...)
-- Pushes the subtasks of a cached node, each with its key. A subtask whose
-- key already has a result in this node takes it; one whose key is
-- already running in this node follows that leader (P:f); one whose key
-- is in the cache (unless overwrite is 1) takes the entry as CACHED; the
-- rest are queued as by push. Returns one character per subtask: 'q'
-- queued, 'f' following, 'd' done at once (its event is queued).
local function push_cached(keys, args)
    local P, exec, k, queue, cls, task = args[1], args[2], args[3], args[4], args[5], args[6]
    local overwrite = args[7] == '1'
    local idx, hkeys, bodies = {}, {}, {}
    for j = 8, #args, 3 do
        idx[#idx + 1] = args[j]
        hkeys[#hkeys + 1] = args[j + 1]
        bodies[#bodies + 1] = args[j + 2]
    end
    if #idx == 0 then
        return ''
    end
    local rkey, fkey = P .. ':r:' .. exec .. ':' .. k, P .. ':f:' .. exec .. ':' .. k
    local have = gather('HMGET', rkey, hkeys)
    local leaders = gather('HMGET', fkey, hkeys)
    local cached = {}
    if not overwrite then
        local ckeys = {}
        for m, h in ipairs(hkeys) do
            ckeys[m] = P .. ':c:' .. task .. ':' .. hex(h)
        end
        cached = mget_many(ckeys)
    end
    local fields, refs, results, triples, lead, lorder = {}, {}, {}, {}, {}, {}
    local status, answered = {}, {}
    local kn = tonumber(k)
    for m = 1, #idx do
        local h = hkeys[m]
        local rec = have[m] or results[h]
        status[m] = 'd'
        if rec then
            triples[#triples + 1] = kn
            triples[#triples + 1] = tonumber(idx[m])
            local ph = record_phase(rec)
            if not ph or ph < 3 then
                ph = 6 -- a record names a final phase, or counts as failed
            end
            triples[#triples + 1] = taken_phase(ph)
        elseif (lead[h] or leaders[m]) and
            string.match(lead[h] or leaders[m], '^(%d+)') ~= idx[m] then
            if not lead[h] then
                lorder[#lorder + 1] = h
            end
            local list = lead[h] or leaders[m]
            -- Pushed again by a reconcile: already listed.
            if not string.find(',' .. list .. ',', ',' .. idx[m] .. ',', 1, true) then
                list = list .. ',' .. idx[m]
            end
            lead[h] = list
            status[m] = 'f'
        elseif cached[m] then
            results[h] = with_phase(cached[m], 4)
            hold_record(P, 'x:' .. exec, cached[m])
            -- Its own followers too, should it be a leader pushed again.
            for i in string.gmatch(lead[h] or leaders[m] or idx[m], '%d+') do
                triples[#triples + 1] = kn
                triples[#triples + 1] = tonumber(i)
                triples[#triples + 1] = 4
            end
            if lead[h] or leaders[m] then
                answered[#answered + 1] = h
                lead[h] = nil
            end
        else
            -- A new leader, or the leader itself pushed again (its push
            -- was lost): queued, keeping its followers.
            status[m] = 'q'
            if not (lead[h] or leaders[m]) then
                lead[h] = idx[m]
                lorder[#lorder + 1] = h
            end
            local entry = first_entry(k, idx[m])
            fields[#fields + 1] = entry
            fields[#fields + 1] = bodies[m]
            refs[#refs + 1] = entry
        end
    end
    local kv = {}
    for h, rec in pairs(results) do
        kv[#kv + 1] = h
        kv[#kv + 1] = rec
    end
    if #kv > 0 then
        hset_many(rkey, kv)
    end
    kv = {}
    for _, h in ipairs(lorder) do
        if lead[h] then
            kv[#kv + 1] = h
            kv[#kv + 1] = lead[h]
        end
    end
    if #kv > 0 then
        call_many('HSET', fkey, kv, 2000)
    end
    if #answered > 0 then
        call_many('HDEL', fkey, answered)
    end
    if #triples > 0 then
        redis.call('RPUSH', events_key(P, exec), cmsgpack.pack(triples))
    end
    queue_new(P, exec, queue, cls, fields, refs)
    return table.concat(status)
end

-- push_recover(P, exec, k, queue, cls, old, index1, key1, oldkey1, body1,
--              index2, ...)
-- Pushes the subtasks of node k of an execution that recovers execution
-- old: a subtask whose result in old (under oldkey) is a success takes it
-- as RECOVERED, with its event; the rest are queued as by push. Returns
-- how many were queued.
local function push_recover(keys, args)
    local P, exec, k, queue, cls, old = args[1], args[2], args[3], args[4], args[5], args[6]
    local idx, nkeys, okeys, bodies = {}, {}, {}, {}
    for j = 7, #args, 4 do
        idx[#idx + 1] = args[j]
        nkeys[#nkeys + 1] = args[j + 1]
        okeys[#okeys + 1] = args[j + 2]
        bodies[#bodies + 1] = args[j + 3]
    end
    if #idx == 0 then
        return 0
    end
    local before = gather('HMGET', P .. ':r:' .. old .. ':' .. k, okeys)
    local kv, triples, fields, refs = {}, {}, {}, {}
    local kn = tonumber(k)
    for m = 1, #idx do
        local rec = before[m]
        local ph = rec and record_phase(rec)
        if ph == 3 or ph == 4 or ph == 5 then
            kv[#kv + 1] = nkeys[m]
            kv[#kv + 1] = with_phase(rec, 5)
            hold_record(P, 'x:' .. exec, rec)
            triples[#triples + 1] = kn
            triples[#triples + 1] = tonumber(idx[m])
            triples[#triples + 1] = 5
        else
            local entry = first_entry(k, idx[m])
            fields[#fields + 1] = entry
            fields[#fields + 1] = bodies[m]
            refs[#refs + 1] = entry
        end
    end
    if #kv > 0 then
        hset_many(P .. ':r:' .. exec .. ':' .. k, kv)
        redis.call('RPUSH', events_key(P, exec), cmsgpack.pack(triples))
    end
    queue_new(P, exec, queue, cls, fields, refs)
    return #refs
end

-- Queues again every ref parked on cache key h (hex), for their next
-- claim to find the cache entry, or to take the reservation over.
local function wake_waiters(P, h)
    local wkey = P .. ':cw:' .. h
    local refs = redis.call('LRANGE', wkey, 0, -1)
    redis.call('DEL', wkey)
    redis.call('SREM', P .. ':cwait', h)
    queue_refs(P, refs)
end

-- Whether ref is leased to agent, or, for agent nil (a caller of revision
-- 11 or older), to any agent in P:leases, or is a legacy lease; with take,
-- that lease also ends.
local function lease_of(P, agent, ref, take)
    local agents = agent and {agent} or
        redis.call('ZRANGE', P .. ':leases', 0, -1)
    for _, name in ipairs(agents) do
        if redis.call(take and 'HDEL' or 'HEXISTS', lease_key(P, name),
            ref) == 1 then
            return true
        end
    end
    if take then
        return redis.call('ZREM', P .. ':inflight', ref) == 1
    end
    return redis.call('ZSCORE', P .. ':inflight', ref) ~= false
end

-- reserve(P, ref, key, lease_ms, task [, agent])
-- cache_serialize: before running the attempt ref of a subtask whose cache
-- key is key, returns ["cached", record] when the entry exists (the record
-- as CACHED, for the agent to finish the attempt with), ["run"] when the
-- key's reservation is free or already this subtask's (it is taken for
-- lease_ms, renewed by renew), ["wait"] when another subtask holds it (the
-- ref leaves the agent's leases and its node's held count, and is parked
-- until the holder ends or its reservation expires), or ["lost"] when ref
-- is no longer leased (to agent, when given).
local function reserve(keys, args)
    local P, ref, key, lease, task = args[1], args[2], args[3], args[4], args[5]
    local r = parse_ref(ref)
    if not r or not lease_of(P, args[6], ref, false) then
        return {'lost'}
    end
    local h = hex(key)
    local entry = redis.call('GET', P .. ':c:' .. task .. ':' .. h)
    if entry then
        -- Held now: the entry may expire before the attempt records it.
        hold_record(P, 'x:' .. r.exec, entry)
        return {'cached', with_phase(entry, 4)}
    end
    local me = r.exec .. '/' .. r.k .. '/' .. r.index
    local rkey = P .. ':cr:' .. h
    local holder = redis.call('GET', rkey)
    if not holder or holder == me then
        redis.call('SET', rkey, me, 'PX', lease)
        return {'run'}
    end
    lease_of(P, args[6], ref, true)
    redis.call('HINCRBY', P .. ':x:' .. r.exec, 'h:' .. r.k, -1)
    redis.call('RPUSH', P .. ':cw:' .. h, ref)
    redis.call('SADD', P .. ':cwait', h)
    return {'wait'}
end

-- True when a ref names a retry (u + s > 0): only those may have a
-- checkpoint.
local function is_retry(ref)
    local u, s = string.match(ref, '^[^/]+/%d+/%d+/(%d+)/(%d+)/')
    return u ~= nil and (u ~= '0' or s ~= '0')
end

-- The checkpoints of the retries among refs (fields "<k>/<index>" of exec
-- e), by position; one HMGET, and none at all for first attempts.
local function checkpoints_of(P, e, fields, refs)
    local want, pos = {}, {}
    for m, ref in ipairs(refs) do
        if is_retry(ref) then
            want[#want + 1] = fields[m]
            pos[#pos + 1] = m
        end
    end
    local out = {}
    if #want > 0 then
        local got = gather('HMGET', P .. ':ck:' .. e, want)
        for n, m in ipairs(pos) do
            out[m] = got[n]
        end
    end
    return out
end

-- Pops attempts for take() from the executions waiting on one queue and
-- class, as a list of {exec = e, entries = {...}}, one per list popped: up
-- to n, each to the lowest pass (see enqueue), plus up to extra more
-- (prefetch) from the execution served next while its list keeps at
-- least as many again for other agents and holds PREFETCH_MIN_LEFT or
-- more, so that the end of a map and a small window (under 9) are shared
-- out between agents. n turns can only serve the n lowest passes, so it
-- reads n + 1 of them: one ZRANGE, then one LLEN and one LPOP per
-- execution served, one ZADD of their new passes unless one execution
-- waits alone, and one ZREM of those emptied. The bell is rung again when
-- work is left.
local PREFETCH_MIN_LEFT = 8
local function pop(P, queue, cls, n, extra)
    local turns = turns_key(P, queue, cls)
    -- Passes are read (formatted and parsed again) only when two or more
    -- executions wait: the arguments stay strings, which costs less.
    local got = redis.call('ZRANGE', turns, '0', '1')
    if #got == 2 then
        got = redis.call('ZRANGE', turns, 0, math.max(n, 1), 'WITHSCORES')
    end
    if #got == 0 then
        return nil
    elseif #got == 1 then
        -- One execution waits here: its list is the queue's, and its pass
        -- stays as it is.
        local list = ready_key(P, queue, cls, (turn_of(got[1])))
        local len = redis.call('LLEN', list)
        local left = len - n
        if extra > 0 and left >= PREFETCH_MIN_LEFT then
            n = n + math.min(extra, math.floor(left / 2))
        end
        if len > n then
            ring(P, queue, cls)
        else
            redis.call('ZREM', turns, got[1])
        end
        if n == 0 or len == 0 then
            return nil
        end
        return {{exec = turn_of(got[1]),
            entries = redis.call('LPOP', list, n)}}
    end
    local ts = {}
    for j = 1, #got, 2 do
        local e, w = turn_of(got[j])
        ts[#ts + 1] = {member = got[j], exec = e, w = w,
            pass = tonumber(got[j + 1]), take = 0}
    end
    local function left(t)
        if not t.len then
            t.len = redis.call('LLEN', ready_key(P, queue, cls, t.exec))
        end
        return t.len - t.take
    end
    -- The lowest pass with work left; a list is read when first served.
    local function next_turn()
        while true do
            local best
            for _, t in ipairs(ts) do
                if not t.dry and (not best or t.pass < best.pass) then
                    best = t
                end
            end
            if not best or left(best) > 0 then
                return best
            end
            best.dry = true
        end
    end
    local function serve(t, count)
        t.take = t.take + count
        t.pass = t.pass + count * PASS_UNIT / t.w
    end
    for _ = 1, n do
        local t = next_turn()
        if not t then
            break
        end
        serve(t, 1)
    end
    local t = extra > 0 and next_turn()
    if t and left(t) >= PREFETCH_MIN_LEFT then
        serve(t, math.min(extra, math.floor(left(t) / 2)))
    end
    local out, passes, emptied, work_left = {}, {}, {}, false
    for _, t in ipairs(ts) do
        if t.take > 0 then
            local entries = redis.call('LPOP',
                ready_key(P, queue, cls, t.exec), t.take)
            if entries then
                out[#out + 1] = {exec = t.exec, entries = entries}
            end
        end
        if t.len and t.len <= t.take then
            emptied[#emptied + 1] = t.member
        else
            work_left = true
            if t.take > 0 and #ts > 1 then
                passes[#passes + 1] = string.format('%.17g', t.pass)
                passes[#passes + 1] = t.member
            end
        end
    end
    if #passes > 0 then
        redis.call('ZADD', turns, 'XX', unpack(passes))
    end
    if #emptied > 0 then
        redis.call('ZREM', turns, unpack(emptied))
    end
    if work_left then
        ring(P, queue, cls)
    end
    if #out == 0 then
        return nil
    end
    return out
end

-- Appends [ref, body, checkpoint] to out and ref, deadline to leases for each
-- of refs (all of execution e, their body fields in fields) whose body is
-- still there, with one HMGET (and one more for checkpoints when some are
-- retries); returns how many became leases. The caller added every ref to
-- held: one without a body is taken off again. Such a ref belongs to an
-- ended execution (its queued subtasks are dropped so) and is dropped, or
-- names no execution and goes back as foreign.
local function lease_bodies(P, e, fields, refs, retries, deadline, out,
                            leases, held)
    local bodies = gather('HMGET', P .. ':b:' .. e, fields)
    local ckpts = retries and checkpoints_of(P, e, fields, refs) or {}
    -- Counted, not #t + 1: this loop runs once per subtask claimed.
    local known, got, no, nl = nil, 0, #out, #leases
    for m = 1, #refs do
        if bodies[m] then
            out[no + 1], out[no + 2], out[no + 3] =
                refs[m], bodies[m], ckpts[m] or false
            leases[nl + 1], leases[nl + 2] = refs[m], deadline
            no, nl, got = no + 3, nl + 2, got + 1
        else
            held_add(held, e, string.match(fields[m], '^%d+'), -1)
            if known == nil then
                known = redis.call('EXISTS', P .. ':x:' .. e) == 1
            end
            if not known then
                out[no + 1], out[no + 2], out[no + 3] = refs[m], false, false
                no = no + 3
            end
        end
    end
    return got
end

-- Leases refs of any execution (see lease_bodies), grouped by execution;
-- a message that is not a ref goes back as foreign.
local function lease_refs(P, refs, deadline, out, leases, held)
    local by_exec, order, got = {}, {}, 0
    for _, ref in ipairs(refs) do
        local r = parse_ref(ref)
        if r then
            local g = group_of(by_exec, order, r.exec)
            g.a[#g.a + 1] = r.k .. '/' .. r.index
            g.b[#g.b + 1] = ref
            held_add(held, r.exec, r.k, 1)
        else
            out[#out + 1] = ref
            out[#out + 1] = false
            out[#out + 1] = false
        end
    end
    for _, e in ipairs(order) do
        local g = by_exec[e]
        got = got + lease_bodies(P, e, g.a, g.b, true, deadline, out, leases,
            held)
    end
    return got
end

-- Leases the attempts popped from execution e's own list (entries, with
-- tail "/0/0/0/<queue>/<cls>" of that list): a first attempt's entry is
-- its body field, and its ref is made from it; any other is a ref, taken
-- apart by one match for its body field and whether it is a retry (only
-- retries may have a checkpoint). Anything else found there (a foreign
-- message, a ref of another execution) goes through lease_refs.
local function lease_list(P, e, entries, tail, deadline, out, leases, held)
    local fields, mine, others, retries = {}, {}, {}, false
    local find, match = string.find, string.match
    -- Counted into held by runs of one node (usually one run); fields
    -- and mine placed by index, no length taken per subtask.
    local rk, rn, nm = nil, 0, 0
    for m = 1, #entries do
        local entry = entries[m]
        local _, _, k = find(entry, '^(%d+)/%d+$')
        local f = entry
        if k then
            nm = nm + 1
            mine[nm] = e .. '/' .. entry .. tail
        else
            local re, us
            re, f, k, us = match(entry,
                '^([^/]+)/((%d+)/%d+)/(%d+/%d+)/%d+/[^/]+/%a%a$')
            if re == e then
                nm = nm + 1
                mine[nm] = entry
                retries = retries or us ~= '0/0'
            else
                k = nil
                others[#others + 1] = entry
            end
        end
        if k then
            fields[nm] = f
            if k ~= rk then
                if rn > 0 then
                    held_add(held, e, rk, rn)
                end
                rk, rn = k, 0
            end
            rn = rn + 1
        end
    end
    if rn > 0 then
        held_add(held, e, rk, rn)
    end
    local got = 0
    if #mine > 0 then
        got = lease_bodies(P, e, fields, mine, retries, deadline, out, leases,
            held)
    end
    if #others > 0 then
        got = got + lease_refs(P, others, deadline, out, leases, held)
    end
    return got
end

-- The claim of claim and step: pops up to want.c command and want.p
-- plugin subtasks (and up to extra more command subtasks, see pop) from
-- the lists of queues, non-interruptible lists first unless
-- only_interruptible, and leases them to agent until now + lease, adding
-- them to held (see held_new; the caller writes it). Returns the flat
-- [ref, body, checkpoint, ...] array.
local function take(P, agent, now, lease, want, extra, only_interruptible,
                    queues, held)
    -- Formatted once: a Lua number would be formatted for every member.
    local deadline = string.format('%d', now + lease)
    local out, leases = {}, {}
    for _, queue in ipairs(queues) do
        for _, kind in ipairs({'c', 'p'}) do
            for _, class in ipairs(only_interruptible and {'i'} or {'n', 'i'}) do
                local n = want[kind]
                local more = kind == 'c' and extra or 0
                local lists = (n > 0 or more > 0) and
                    pop(P, queue, class .. kind, n, more)
                if lists then
                    local got = 0
                    local tail = '/0/0/0/' .. queue .. '/' .. class .. kind
                    for _, l in ipairs(lists) do
                        if l.entries then
                            got = got + lease_list(P, l.exec, l.entries, tail,
                                deadline, out, leases, held)
                        end
                    end
                    want[kind] = math.max(0, n - got)
                    if kind == 'c' then
                        extra = math.max(0, extra - math.max(0, got - n))
                    end
                end
            end
        end
    end
    if #leases > 0 then
        hset_many(lease_key(P, agent), leases)
        redis.call('ZADD', P .. ':leases', 'GT', deadline, agent)
    end
    return out
end

-- claim(P, agent, lease_ms, ncmd, nplugin, interruptible, queue...)
-- Pops up to ncmd command and nplugin plugin subtasks, leases them and
-- returns one msgpack string: [ref1, body1, checkpoint1, ref2, ...], the
-- checkpoint false when there is none (always, for a first attempt). A
-- foreign message (not a ref, or naming no execution) comes back as
-- [msg, false, false], for the agent to log: it is set aside, not run.
local function claim(keys, args)
    local P, agent = args[1], args[2]
    local want = {c = tonumber(args[4]), p = tonumber(args[5])}
    local now = now_ms()
    promote(P, now, 1000)
    local held = held_new()
    local out = take(P, agent, now, tonumber(args[3]), want, 0,
        args[6] == '1', {unpack(args, 7)}, held)
    held_write(P, held)
    redis.call('ZADD', P .. ':agents', now, agent)
    return cmsgpack.pack(out)
end

-- The steps of done, each over the whole batch. b holds what the entries
-- asked for, grouped: b.results (result hash -> fields, records), b.execs
-- (exec -> event triples, body fields), b.requeue, b.delayed, b.logs,
-- b.ckpts, b.leaders (exec:k -> fields, phases), b.cache_sets, b.releases;
-- and b.taken, the leases that end (of b.lkey, the agent's), subtracted
-- from b.held, their nodes' counts (the caller's to write); b.spans, those
-- of groups, as spans of their arguments (see span).
local function new_batch(P, agent, held)
    return {P = P, lkey = lease_key(P, agent), refused = {}, taken = {},
        spans = {}, execs = {}, xorder = {}, ended = {}, held = held,
        states = {}}
end

-- A span of n arguments of args from first: a group's refs or body fields,
-- which a command takes as they came, never copied into a list of their
-- own.
local function span(args, first, n)
    return {args, first, first + n - 1}
end

-- HDEL key of the fields in list, then of those in each of spans.
local function hdel_all(key, list, spans)
    call_many('HDEL', key, list)
    for _, s in ipairs(spans) do
        redis.call('HDEL', key, unpack(s[1], s[2], s[3]))
    end
end

-- What a batch needs of execution e, read once: whether its record is
-- gone (deleted by mapq rm or expired: nothing of it is written again),
-- whether it has ended, whether it is dead (ended, or aborted: abort),
-- its epoch, and once ended with a retention, when what it left expires
-- (ms), which what is written late takes too.
local function exec_of(b, e)
    local s = b.states[e]
    if not s then
        local rec = redis.call('HMGET', b.P .. ':x:' .. e, 'state', 'epoch',
            'aborted', 'expires')
        s = {gone = not rec[1], ended = ENDED[rec[1]] == true, epoch = rec[2]}
        s.dead = s.ended or s.gone or rec[3] ~= false
        s.expires = s.ended and rec[4] or nil
        b.states[e] = s
    end
    return s
end

-- The log entry of an attempt that ended once its execution was dead:
-- ABORTED, as its driver counted the subtask, and saying why.
local function aborted_entry(entry)
    local ok, t = pcall(cmsgpack.unpack, entry)
    if not ok or type(t) ~= 'table' or t.p == 8 then
        return entry -- its agent stopped it: it says so already
    end
    t.p = 8
    t.e = (type(t.e) == 'string' and t.e .. '; ' or '') ..
        'it ended after its execution was aborted'
    return cmsgpack.pack(t)
end

-- What the entries (not the groups) of a batch need besides.
local function batch_for_entries(b)
    b.results, b.rorder, b.requeue, b.front, b.delayed = {}, {}, {}, {}, {}
    b.logs, b.lorder, b.ckpts, b.korder, b.leaders = {}, {}, {}, {}, {}
    b.corder, b.cache_sets, b.releases = {}, {}, {}
end

-- Logs and checkpoints of an attempt still leased: a success drops the
-- subtask's checkpoint (kept until then for its retries); anything else
-- saves its own.
local function plan_side(b, args, j, e, k, index)
    local log, ckpt = args[j + 6] or '', args[j + 7] or ''
    if log ~= '' and args[j + 1] == 'T' and exec_of(b, e).dead then
        log = aborted_entry(log)
    end
    if log ~= '' then
        local g = group_of(b.logs, b.lorder, e)
        g.a[#g.a + 1] = k .. '/' .. index
        g.b[#g.b + 1] = log
        g.first = g.first or {}
        g.first[#g.a] = not is_retry(args[j])
    end
    local p = tonumber(args[j + 2])
    local success = args[j + 1] == 'T' and (p == 3 or p == 4 or p == 5)
    if success and is_retry(args[j]) then
        local g = group_of(b.ckpts, b.korder, e)
        g.b[#g.b + 1] = k .. '/' .. index
    elseif not success and ckpt ~= '' and not exec_of(b, e).ended then
        local g = group_of(b.ckpts, b.korder, e)
        g.a[#g.a + 1] = k .. '/' .. index
        g.a[#g.a + 1] = ckpt
    end
end

-- A terminal attempt: its record, its event, its body to drop, and for a
-- cached node (target "c:<ttl ms>:<task>", or "cs:..." with
-- cache_serialize) its cache entry and reservation.
local function plan_terminal(b, args, j, e, k, index)
    local P = b.P
    local field, record = args[j + 3] or '', args[j + 4] or ''
    local ph = tonumber(args[j + 2])
    if not ph or ph < 3 or ph > 8 or ph ~= math.floor(ph) then
        ph = 6 -- a final phase, whatever a client sends
    end
    local res = group_of(b.results, b.rorder, P .. ':r:' .. e .. ':' .. k)
    res.expires = exec_of(b, e).expires
    res.e = e
    res.a[#res.a + 1] = field ~= '' and field or '#' .. index
    -- After its execution's end (or its abort), a subtask that ends is
    -- ABORTED, as its driver counted it; what its process made still goes
    -- to the cache below, being a true result for its input.
    local dead = exec_of(b, e).dead
    res.b[#res.b + 1] = dead and with_phase(record, 8) or record
    -- Per execution: a = event triples, b = body fields.
    local x = group_of(b.execs, b.xorder, e)
    x.a[#x.a + 1] = tonumber(k)
    x.a[#x.a + 1] = tonumber(index)
    x.a[#x.a + 1] = dead and 8 or ph
    x.b[#x.b + 1] = k .. '/' .. index
    local ser, ttl, task = string.match(args[j + 5] or '', '^c(s?):(%d+):(.+)$')
    -- Identical subtasks of a cached node may follow this one (P:f, made
    -- by push_cached): looked up later. Only a cached node's task sends a
    -- cache target with a success; a failure is looked up whatever it
    -- sends (an agent that could not read the task spec sends none).
    if field == '' or (not task and ph >= 3 and ph <= 5) then
        return
    end
    local g = group_of(b.leaders, b.corder, e .. ':' .. k)
    g.a[#g.a + 1] = field
    g.b[#g.b + 1] = ph
    g.e, g.k = e, tonumber(k)
    if ser == 's' then
        b.releases[#b.releases + 1] = hex(field)
        b.releases[#b.releases + 1] = e .. '/' .. k .. '/' .. index
    end
    -- The ttl stays a string of digits: a Lua number would be formatted as
    -- 1e+17 past 15 digits, which SET refuses.
    if task and ph == 3 and #ttl <= 15 then
        b.cache_sets[#b.cache_sets + 1] = {P .. ':c:' .. task .. ':' ..
            hex(field), record, ttl}
    end
end

-- A failed attempt that runs again: a new ref with u (U), s (S) or s and
-- i (I) increased, on target's list, or for U with a record of ms in
-- P:delayed; or (R) the same ref back at the head of its list. Only a foreign ref that got a lease fails to parse here: its
-- attempt ends without a retry.
local function plan_retry(b, args, j)
    local r, kind = parse_ref(args[j]), args[j + 1]
    if not r then
        return
    end
    if kind == 'R' then
        -- Handed back before it started (a prefetched subtask of an agent
        -- that is stopping): the same ref, at the head of its list.
        b.front[#b.front + 1] = args[j]
        return
    end
    if kind == 'U' then
        r.u = r.u + 1
    else
        r.s = r.s + 1
        if kind == 'I' then
            r.i = r.i + 1
        end
    end
    local q, c = string.match(args[j + 5] or '', '^([^/]+)/(%a%a)$')
    r.queue, r.cls = q or r.queue, c or r.cls
    local delay = tonumber(args[j + 4])
    if kind == 'U' and delay and delay > 0 then
        b.now = b.now or now_ms()
        b.delayed[#b.delayed + 1] = string.format('%d', b.now + delay)
        b.delayed[#b.delayed + 1] = make_ref(r)
    else
        b.requeue[#b.requeue + 1] = make_ref(r)
    end
end

-- Records, first write wins (also between equal fields within the batch),
-- then cache entries, then the reservations that end.
local function write_results(b)
    for _, rk in ipairs(b.rorder) do
        local res = b.results[rk]
        local have = gather('HMGET', rk, res.a)
        local kv, seen = {}, {}
        for m, f in ipairs(res.a) do
            if not have[m] and not seen[f] then
                seen[f] = true
                kv[#kv + 1] = f
                kv[#kv + 1] = res.b[m]
            end
        end
        hset_many(rk, kv)
        if res.expires and #kv > 0 then
            redis.call('PEXPIREAT', rk, res.expires)
        end
        for m = 2, #kv, 2 do
            local hexes = record_blobs(kv[m])
            if hexes then
                hold_blobs(b.P, 'x:' .. res.e, 0, hexes)
            end
        end
    end
    for _, entry in ipairs(b.cache_sets) do
        -- Held by the entry first; a result whose blobs are gone (its
        -- execution was removed, and they reclaimed, while they were
        -- stored) is not cached.
        local hexes = record_blobs(entry[2])
        if not hexes or not string.find(hold_blobs(b.P,
            string.sub(entry[1], #b.P + 2), 0, hexes), '0', 1, true) then
            if string.match(entry[3], '^0*$') then
                redis.call('SET', entry[1], entry[2])
            else
                redis.call('SET', entry[1], entry[2], 'PX', entry[3])
            end
        end
    end
    -- The parked refs go back to their lists after the cache write, so
    -- that they find the entry.
    for m = 1, #b.releases, 2 do
        local rkey = b.P .. ':cr:' .. b.releases[m]
        if redis.call('GET', rkey) == b.releases[m + 1] then
            redis.call('DEL', rkey)
        end
        wake_waiters(b.P, b.releases[m])
    end
end

-- Subtasks that followed a leader take its result, and an event (only
-- cached nodes have followers: one EXISTS per node and batch for others).
local function answer_followers(b)
    for _, name in ipairs(b.corder) do
        local g = b.leaders[name]
        local fkey = b.P .. ':f:' .. name
        local lists = redis.call('EXISTS', fkey) == 1 and
            gather('HMGET', fkey, g.a) or {}
        local x = b.execs[g.e]
        local dead = exec_of(b, g.e).dead
        for m, list in ipairs(lists) do
            if list then
                local first = true
                for i in string.gmatch(list, '%d+') do
                    if not first then
                        x.a[#x.a + 1] = g.k
                        x.a[#x.a + 1] = tonumber(i)
                        x.a[#x.a + 1] = dead and 8 or taken_phase(g.b[m])
                    end
                    first = false
                end
            end
        end
        if #lists > 0 then
            call_many('HDEL', fkey, g.a)
        end
    end
end

-- One event entry per execution (none for an ended one: nobody follows
-- it, and results of its aborted subtasks still arrive), its bodies
-- dropped. An aborted one's events say ABORTED: its driver takes none
-- after the end marker, but a driver that takes it over counts them.
local function write_events(b)
    local P = b.P
    for _, e in ipairs(b.xorder) do
        local x = b.execs[e]
        local s = exec_of(b, e)
        if not s.ended then
            local entries = x.packed or {}
            if #x.a > 0 then
                entries[#entries + 1] = cmsgpack.pack(x.a)
            end
            redis.call('RPUSH', events_key(P, e, s.epoch), unpack(entries))
        else
            b.ended[#b.ended + 1] = e
        end
        hdel_all(P .. ':b:' .. e, x.b, x.spans or {})
    end
end

-- Retries queued, logs and checkpoints written.
local function write_rest(b)
    local P = b.P
    queue_refs(P, b.requeue)
    queue_refs(P, b.front, true)
    if #b.delayed > 0 then
        call_many('ZADD', P .. ':delayed', b.delayed, 2000)
    end
    for _, e in ipairs(b.lorder) do
        append_logs(P .. ':log:' .. e, b.logs[e].a, b.logs[e].b, b.logs[e].first)
        if exec_of(b, e).expires then
            redis.call('PEXPIREAT', P .. ':log:' .. e, exec_of(b, e).expires)
        end
    end
    for _, e in ipairs(b.korder) do
        local g = b.ckpts[e]
        if #g.a > 0 then
            call_many('HSET', P .. ':ck:' .. e, g.a, 2000)
        end
        if #g.b > 0 then
            call_many('HDEL', P .. ':ck:' .. e, g.b)
        end
    end
end

-- Calls fn(digits, record) for each attempt record of the log page s
-- that has an element index (digits: its i); a page that does not parse
-- gives none.
local function each_paged(s, fn)
    local ok, all = pcall(function(p)
        return {cmsgpack.unpack(p)}
    end, s)
    for _, t in ipairs(ok and all or {}) do
        if type(t) == 'table' and type(t.i) == 'number' then
            fn(string.format('%d', t.i), t)
        end
    end
end

-- The attempt records in np log pages (args[first .. first + np - 1] the
-- page fields, the pages after them), each packed on its own, by element
-- index (the digits of its i): for a group finished entry by entry.
local function page_logs(args, first, np)
    local by = {}
    for m = first + np, first + 2 * np - 1 do
        each_paged(args[m], function(i, t)
            by[i] = cmsgpack.pack(t)
        end)
    end
    return by
end

-- The element indices (digits) of the records already in the np log pages
-- of execution e named by args[first .. first + np - 1], as a set: a call
-- of the same step that wrote them failed after, and is sent again.
local function paged_before(P, e, args, first, np)
    local have = redis.call('HMGET', P .. ':log:' .. e,
        unpack(args, first, first + np - 1))
    local seen = {}
    for m = 1, np do
        each_paged(have[m] or '', function(i)
            seen[i] = true
        end)
    end
    return seen
end

-- The groups of step's flag 'g': attempts that the agent found to be
-- first attempts of one node that succeeded (kind T, phase SUCCEEDED),
-- with no cache target and no checkpoint, and whose result fields differ.
-- Each group is laid out so that every command takes a slice of the
-- arguments as they came, with no work per attempt here:
--   exec k n logged events ref... field... record... bodyfield... [log...]
-- n of each; events the msgpack array [k, index, 3, ...] of the n;
-- bodyfield "<k>/<index>". logged is 0 (no attempt records), 1 (n
-- records, each for its subtask's field) or p (log pages: np, np page
-- fields "<k>/p<page>", then np pages, the records of that page's members,
-- each with its i, to append to the page). A group whose refs are not all
-- leased, or whose fields already hold a result, is finished entry by
-- entry instead, as done's entries appended to rest. Returns the index of
-- the first argument after the groups.
local function finish_group(b, args, j, rest)
    local P = b.P
    local e, k, n = args[j], args[j + 1], tonumber(args[j + 2])
    local logged, paged = args[j + 3] == '1', args[j + 3] == 'p'
    local events = args[j + 4]
    if not n or n < 1 or n > 1000 or n ~= math.floor(n) then
        error('ERR mapq1_step: bad group size')
    end
    local refs, fields = j + 5, j + 5 + n
    local records, bodies, logs = j + 5 + 2 * n, j + 5 + 3 * n, j + 5 + 4 * n
    local nxt, np = logs + (logged and n or 0), 0
    if paged then
        np = tonumber(args[logs])
        if not np or np < 1 or np > n or np ~= math.floor(np) then
            error('ERR mapq1_step: bad page count')
        end
        nxt = logs + 1 + 2 * np
    end
    if nxt - 1 > #args then
        error('ERR mapq1_step: group past the arguments')
    end
    -- A dead execution's results are rewritten, entry by entry.
    local fast = not exec_of(b, e).dead
    if fast then
        local held = redis.call('HMGET', b.lkey,
            unpack(args, refs, refs + n - 1))
        for m = 1, n do
            if not held[m] then
                fast = false
                break
            end
        end
    end
    local rkey = P .. ':r:' .. e .. ':' .. k
    if fast then
        local have = redis.call('HMGET', rkey, unpack(args, fields,
            fields + n - 1))
        for m = 1, n do
            if have[m] then
                fast = false
                break
            end
        end
    end
    if not fast then
        local by = paged and page_logs(args, logs + 1, np) or {}
        -- What a page holds already is not logged again.
        local seen = paged and paged_before(P, e, args, logs + 1, np) or {}
        for m = 0, n - 1 do
            local i = string.match(args[bodies + m], '(%d+)$')
            local log = logged and args[logs + m] or
                (not seen[i] and by[i]) or ''
            local entry = {args[refs + m], 'T', '3', args[fields + m],
                args[records + m], '', log, ''}
            for _, v in ipairs(entry) do
                rest[#rest + 1] = v
            end
        end
        return nxt
    end
    local kv, lkv = {}, {}
    local x = group_of(b.execs, b.xorder, e)
    held_add(b.held, e, k, -n)
    -- Pairs placed by index: no length taken per subtask.
    for m = 0, n - 1 do
        kv[2 * m + 1], kv[2 * m + 2] = args[fields + m], args[records + m]
    end
    hset_many(rkey, kv)
    if logged then
        for m = 0, n - 1 do
            lkv[2 * m + 1], lkv[2 * m + 2] = args[bodies + m], args[logs + m]
        end
        hset_many(P .. ':log:' .. e, lkv)
    elseif paged then
        -- A page goes on where another call left it.
        local lkey, first = P .. ':log:' .. e, logs + 1
        local have = redis.call('HMGET', lkey, unpack(args, first,
            first + np - 1))
        for m = 0, np - 1 do
            local page = args[first + np + m]
            lkv[2 * m + 1] = args[first + m]
            lkv[2 * m + 2] = have[m + 1] and have[m + 1] .. page or page
        end
        hset_many(lkey, lkv)
    end
    x.spans = x.spans or {}
    x.spans[#x.spans + 1] = span(args, bodies, n)
    b.spans[#b.spans + 1] = span(args, refs, n)
    x.packed = x.packed or {}
    x.packed[#x.packed + 1] = events
    return nxt
end

local function finish_groups(b, args, j, ngroups, rest)
    for _ = 1, ngroups do
        j = finish_group(b, args, j, rest)
    end
    return j
end

-- done(P, agent, ref, kind, phase, field, record, target, log, ckpt, ...)
-- Finishes attempts. kind T: terminal, the record is stored under field in
-- P:r:<exec>:<k> (first write wins) and an event is queued. kind U / S / I:
-- the attempt failed and the subtask runs again (user retry, system
-- retry, interruption), queued on target ("<queue>/<cls>"); kind R: the
-- attempt never started and its ref goes back to the head of its list,
-- costing no budget (an agent hands back its prefetched subtasks so when
-- it stops; it never sends such an entry twice, since by then the ref may
-- be another agent's lease); for U, a
-- record holding a number of ms (its retry_backoff) parks the new ref in
-- P:delayed until then. For T, a target "c:<ttl ms>:<task>" marks a
-- cached node: a success is also written to the cache (P:c, with PX ttl
-- when ttl > 0), and the subtasks that followed this one (P:f) get its
-- result and their events. A record without a field (its agent could not
-- read the subtask's key from a corrupt body) goes under "#<index>". log,
-- when not empty, is appended to the subtask's attempts in P:log:<exec>;
-- ckpt, when not empty, becomes the subtask's checkpoint (P:ck:<exec>),
-- which a success deletes. A ref that is no longer leased to agent is
-- refused and changes nothing. Returns the refused refs.
--
-- Every step is one command per batch, not per subtask: HMGET of the
-- agent's leases for the fencing check, one HDEL of them, HMGET+HSET per
-- result hash, per execution one RPUSH of a single event entry and one
-- HDEL of the bodies, and per execution and node one HINCRBY of its held
-- count, which the caller makes from held once its own leases changed too.
local function finish_attempts(P, agent, args, first, ngroups, held)
    if ngroups == 0 and first > #args then
        return {}, {} -- a claim alone: no batch to make
    end
    local b = new_batch(P, agent, held)
    if ngroups > 0 then
        local rest = {}
        first = finish_groups(b, args, first, ngroups, rest)
        if #rest > 0 then
            for j = first, #args do
                rest[#rest + 1] = args[j]
            end
            args, first = rest, 1
        end
    end
    local refs = {}
    for j = first, #args, 8 do
        refs[#refs + 1] = args[j]
    end
    if #refs == 0 then
        -- Groups alone, the common case.
        write_events(b)
        hdel_all(b.lkey, b.taken, b.spans)
        return b.refused, b.ended
    end
    batch_for_entries(b)
    local held = gather('HMGET', b.lkey, refs)
    local legacy = adopt_legacy(b.P, refs, held)
    -- The leases that end, counted by runs of one node.
    local he, hk, hn = nil, nil, 0
    -- Entry n is args[j .. j + 7]: ref kind phase field record target log
    -- ckpt (read in place: a table per entry would cost the fast path).
    for n, ref in ipairs(refs) do
        local j = first + (n - 1) * 8
        local e, k, index = string.match(ref, '^([^/]+)/(%d+)/(%d+)/')
        if not held[n] or not e then
            b.refused[#b.refused + 1] = ref
        elseif exec_of(b, e).gone then
            -- Deleted (mapq rm, or its retention ran out): its lease ends,
            -- and nothing of it is made again.
            b.taken[#b.taken + 1] = ref
        else
            b.taken[#b.taken + 1] = ref
            if k ~= hk or e ~= he then
                if hn > 0 then
                    held_add(b.held, he, hk, -hn)
                end
                he, hk, hn = e, k, 0
            end
            hn = hn + 1
            plan_side(b, args, j, e, k, index)
            if args[j + 1] == 'T' then
                plan_terminal(b, args, j, e, k, index)
            elseif not exec_of(b, e).ended then
                plan_retry(b, args, j) -- an ended one runs nothing more
            end
        end
    end
    if hn > 0 then
        held_add(b.held, he, hk, -hn)
    end
    -- The leases go last: a call that fails half-way (a write the Redis
    -- user may not make) leaves them, so that the agent's retry is not
    -- refused; records are first-write-wins, so a repeat is harmless.
    write_results(b)
    answer_followers(b)
    write_events(b)
    write_rest(b)
    hdel_all(b.lkey, b.taken, b.spans)
    end_legacy(b.P, legacy)
    return b.refused, b.ended
end

local function done(keys, args)
    local held = held_new()
    local refused = finish_attempts(args[1], args[2], args, 3, 0, held)
    held_write(args[1], held)
    return refused
end

-- step(P, agent, lease_ms, ncmd, nplugin, prefetch, flags, nqueues,
--      queue..., [ngroups, group...,] ref, kind, phase, field, record,
--      target, log, ckpt, ...)
-- An agent's one call per loop pass: finishes the attempts that follow
-- the queues (as done does; with flag 'g', the ngroups groups of
-- finish_group first), then claims as claim does, plus up to
-- prefetch command subtasks more while their list keeps as many again
-- for others. flags may hold 'i' (only interruptible lists), 'd'
-- (first move due delayed refs to their lists, as the agent that parked
-- one asks when its delay is over) and 'g' (groups follow the queues).
-- Unlike claim it records no heartbeat (renew does, every second) and
-- promotes only when asked, so that a call costs a few commands whatever
-- it carries. Returns one msgpack
-- string: [[ref, body, checkpoint, ...], [refused ref, ...], due, [exec,
-- ...]], due being the ms until the next delayed ref is due (with 'd'),
-- else false, and the execs those of finished attempts that have ended
-- (the agent stops what else it holds of them at once).
local function step(keys, args)
    local P, lease = args[1], tonumber(args[3])
    local want = {c = tonumber(args[4]), p = tonumber(args[5])}
    local extra, flags, nq = tonumber(args[6]), args[7], tonumber(args[8])
    local first, ngroups = 9 + nq, 0
    if string.find(flags, 'g', 1, true) then
        ngroups, first = tonumber(args[first]), first + 1
        if not ngroups or ngroups < 0 or ngroups ~= math.floor(ngroups) then
            error('ERR mapq1_step: bad group count')
        end
    end
    -- One list of held changes for both halves: what it finishes and
    -- claims of the same node cancel out.
    local held = held_new()
    local refused, ended = finish_attempts(P, args[2], args, first, ngroups,
        held)
    local promoting = string.find(flags, 'd', 1, true) ~= nil
    local out, due = {}, false
    local claiming = want.c > 0 or want.p > 0 or extra > 0
    if claiming or promoting then
        local now = now_ms()
        if promoting then
            promote(P, now, 1000)
            local nxt = redis.call('ZRANGE', P .. ':delayed', 0, 0, 'WITHSCORES')
            if nxt[2] then
                due = math.max(0, tonumber(nxt[2]) - now)
            end
        end
        if claiming then
            out = take(P, args[2], now, lease, want, extra,
                string.find(flags, 'i', 1, true) ~= nil, {unpack(args, 9, 8 + nq)},
                held)
        end
    end
    held_write(P, held)
    return cmsgpack.pack({out, refused, due, ended})
end

-- Appends to out those of refs (held[n]: still leased) whose subtask
-- someone follows (P:follow: "<exec>/<k>/<index>" -> until when, ms).
-- One EXISTS when nobody follows anything.
local function followed(P, refs, held, now, out)
    if #refs == 0 or redis.call('EXISTS', P .. ':follow') == 0 then
        return
    end
    local subtasks = {}
    for n, ref in ipairs(refs) do
        local e, k, i = string.match(ref, '^([^/]+)/(%d+)/(%d+)/')
        subtasks[n] = (e or '') .. '/' .. (k or '') .. '/' .. (i or '')
    end
    local until_ms = gather('ZMSCORE', P .. ':follow', subtasks)
    for n, ref in ipairs(refs) do
        if held[n] and until_ms[n] and tonumber(until_ms[n]) > now then
            out[#out + 1] = ref
        end
    end
end

-- The interruptible_failures of ref r's task (its spec's intrf, defaulting
-- as agents do: sysr - 1, sysr being 3 when unset), read once per node and
-- call into limits.
local function interruptible_failures(P, limits, r)
    local key = r.exec .. '/' .. r.k
    if limits[key] == nil then
        local n = 2
        local spec = redis.call('HGET', P .. ':x:' .. r.exec, 't:' .. r.k)
        local ok, t = pcall(cmsgpack.unpack, spec or '')
        if ok and type(t) == 'table' then
            local sysr = tonumber(t.sysr) or 3
            n = tonumber(t.intrf) or math.max(sysr - 1, 0)
        end
        limits[key] = n
    end
    return limits[key]
end

-- Takes back attempts whose lease ran out (refs, already out of their
-- agent's leases): each leaves its node's held count, its attempt is
-- logged as lost, and it is queued again as a system failure (and, from an
-- interruptible list, as an interruption too) unless its execution has
-- ended. A deleted execution gets nothing written again.
local function take_back(P, refs)
    local again, limits, held, states = {}, {}, held_new(), {}
    for _, ref in ipairs(refs) do
        local r = parse_ref(ref)
        local st = r and states[r.exec]
        if r and not st then
            st = redis.call('HGET', P .. ':x:' .. r.exec, 'state') or 'gone'
            states[r.exec] = st
        end
        if r and st ~= 'gone' then
            held_add(held, r.exec, r.k, -1)
            append_logs(P .. ':log:' .. r.exec, {r.k .. '/' .. r.index},
                {cmsgpack.pack({a = r.u + r.s + 1, k = 'L', p = 0,
                    e = 'lease expired: its agent stopped renewing it (killed, '
                        .. 'host lost or cut off)'})})
            r.s = r.s + 1
            if string.sub(r.cls, 1, 1) == 'i' then
                -- Lost with an interruptible host: an interruption, as a
                -- drained attempt is, and after the task's
                -- interruptible_failures its next attempt runs on a
                -- non-interruptible agent.
                r.i = r.i + 1
                if r.i >= interruptible_failures(P, limits, r) then
                    r.cls = 'n' .. string.sub(r.cls, 2)
                end
            end
            if not ENDED[st] then
                again[#again + 1] = make_ref(r)
            end
        end
    end
    held_write(P, held)
    queue_refs(P, again)
end

-- Ends the leases of lkey past their deadline that the agent's renewal
-- did not list (listed: ref -> true) and takes them back. Returns how many.
local function take_back_unlisted(P, lkey, listed, now)
    local all = redis.call('HGETALL', lkey)
    local late = {}
    for j = 1, #all, 2 do
        local until_ms = tonumber(all[j + 1])
        if not listed[all[j]] and (not until_ms or until_ms < now) then
            late[#late + 1] = all[j]
        end
    end
    if #late > 0 then
        call_many('HDEL', lkey, late)
        take_back(P, late)
    end
    return #late
end

-- renew(P, agent, lease_ms, ref... [| key...] [|f])
-- The agent's heartbeat (every second, with the refs it holds, if any).
-- Extends the leases of refs still held and returns the ones that are not
-- (lost: reaped or finished elsewhere) followed by "|" and the refs whose
-- execution is no longer running (to be killed); with a last '|f', then
-- "|" and the refs still held whose subtask someone follows (mapq logs -f).
-- A lease of the agent's that it does not list is taken back once past its
-- deadline (see "Leases" above).
local function renew(keys, args)
    local P, agent, lease = args[1], args[2], tonumber(args[3])
    local now = now_ms()
    local deadline = string.format('%d', now + lease)
    local lkey = lease_key(P, agent)
    local lost, stop, leases, state = {}, {}, {}, {}
    local refs, reserved = {}, {}
    -- A last '|f': the agent asks which of its refs someone follows.
    local asks = args[#args] == '|f'
    local last = asks and #args - 1 or #args
    for j = 4, last do
        if args[j] == '|' then
            for m = j + 1, last do
                reserved[#reserved + 1] = args[m]
            end
            break
        end
        refs[#refs + 1] = args[j]
    end
    -- cache_serialize reservations held by running attempts (their keys).
    for _, key in ipairs(reserved) do
        redis.call('PEXPIRE', P .. ':cr:' .. hex(key), lease)
    end
    local held = gather('HMGET', lkey, refs)
    local legacy = adopt_legacy(P, refs, held) -- moved into lkey below
    for n, ref in ipairs(refs) do
        local e = string.match(ref, '^([^/]+)/')
        if not held[n] or not e then
            lost[#lost + 1] = ref
        else
            leases[#leases + 1] = ref
            leases[#leases + 1] = deadline
            if state[e] == nil then
                state[e] = redis.call('HGET', P .. ':x:' .. e, 'state') or ''
            end
            local st = state[e]
            if st ~= 'running' and st ~= 'submitted' then
                stop[#stop + 1] = ref
            end
        end
    end
    if #leases > 0 then
        call_many('HSET', lkey, leases, 2000)
    end
    end_legacy(P, legacy)
    local nheld = redis.call('HLEN', lkey)
    if nheld > #leases / 2 then
        local listed = {}
        for j = 1, #leases, 2 do
            listed[leases[j]] = true
        end
        nheld = nheld - take_back_unlisted(P, lkey, listed, now)
    end
    if nheld > 0 then
        redis.call('ZADD', P .. ':leases', 'GT', deadline, agent)
    else
        redis.call('ZREM', P .. ':leases', agent)
    end
    redis.call('ZADD', P .. ':agents', now, agent)
    -- Only while it beats: a dead agent's entry goes within the hour.
    redis.call('HSET', P .. ':agent:' .. agent, 'running', #refs)
    redis.call('PEXPIRE', P .. ':agent:' .. agent, 3600000)
    lost[#lost + 1] = '|'
    for _, ref in ipairs(stop) do
        lost[#lost + 1] = ref
    end
    if asks then
        lost[#lost + 1] = '|'
        followed(P, refs, held, now, lost)
    end
    return lost
end

-- reap(P, limit)
-- Takes back the leases of agents past their deadline in P:leases (dead,
-- or cut off), whole agents at a time until about limit attempts (they
-- leave their nodes' held counts), and queues each again as a system
-- failure (and, from an interruptible list, as an interruption too).
-- Returns how many were taken back.
local function reap(keys, args)
    local P, limit = args[1], tonumber(args[2])
    local now = now_ms()
    promote(P, now, limit)
    -- Agents silent for an hour are gone (their hash expired too).
    redis.call('ZREMRANGEBYSCORE', P .. ':agents', '-inf', now - 3600000)
    -- Parked refs whose holder's reservation expired (it crashed).
    local waiting = redis.call('SRANDMEMBER', P .. ':cwait', 100)
    for _, h in ipairs(waiting) do
        if redis.call('EXISTS', P .. ':cr:' .. h) == 0 then
            wake_waiters(P, h)
        end
    end
    local late = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now,
        'LIMIT', 0, limit)
    local expired = {}
    if redis.call('EXISTS', P .. ':inflight') == 1 then
        expired = redis.call('ZRANGEBYSCORE', P .. ':inflight', '-inf', now,
            'LIMIT', 0, limit)
        if #expired > 0 then
            redis.call('ZREM', P .. ':inflight', unpack(expired))
        end
    end
    for _, agent in ipairs(late) do
        local lkey = lease_key(P, agent)
        local refs = redis.call('HKEYS', lkey)
        if #expired > 0 and #expired + #refs > limit then
            break
        end
        redis.call('DEL', lkey)
        redis.call('ZREM', P .. ':leases', agent)
        for _, ref in ipairs(refs) do
            expired[#expired + 1] = ref
        end
    end
    take_back(P, expired)
    return #expired
end

-- Drops what only a running execution needs: its checkpoints and the
-- followers of its cached nodes.
local function drop_running_state(P, exec)
    local x = P .. ':x:' .. exec
    local nodes = tonumber(redis.call('HGET', x, 'nodes')) or 0
    redis.call('DEL', P .. ':ck:' .. exec)
    for k = 0, nodes - 1 do
        redis.call('DEL', P .. ':f:' .. exec .. ':' .. k)
    end
end

-- cancel(P, exec)
-- Cancels a running or submitted execution: marks it cancelled, queues
-- the end marker for its driver (see abort) and drops its queued subtasks
-- (their bodies; claims discard refs without one). Agents kill its
-- running subtasks at their next renewal. Returns 1, 0 if it had already
-- ended, or -1 if there is no such execution.
local function cancel(keys, args)
    local P, exec = args[1], args[2]
    local x = P .. ':x:' .. exec
    local st = redis.call('HGET', x, 'state')
    if not st then
        return -1
    end
    if ENDED[st] then
        return 0
    end
    redis.call('HSET', x, 'state', 'cancelled', 'finished', string.format('%d', now_ms()),
        'error', 'cancelled')
    redis.call('RPUSH', events_key(P, exec), END_MARK)
    redis.call('DEL', P .. ':b:' .. exec)
    drop_running_state(P, exec)
    redis.call('ZREM', P .. ':owners', exec)
    return 1
end

-- abort(P, exec, owner, reason)
-- Its owner's first step in failing a running execution (field aborted =
-- reason): from here on an attempt of it that ends is recorded ABORTED,
-- and its event says so. Queues the end marker on the owner's event list,
-- after the events of every result recorded before: its driver counts
-- the subtasks up to the marker and aborts the rest, so that its counts
-- and the records agree. Returns 1, 0 if it has ended (a cancel queued
-- the marker), -1 if there is no such execution, or -2 if another owner
-- holds it. Doing it again queues the marker again.
local function abort(keys, args)
    local P, exec, owner = args[1], args[2], args[3]
    local x = P .. ':x:' .. exec
    local rec = redis.call('HMGET', x, 'state', 'owner', 'epoch')
    if not rec[1] then
        return -1
    end
    if ENDED[rec[1]] then
        return 0
    end
    if rec[2] and rec[2] ~= '' and rec[2] ~= owner then
        return -2
    end
    redis.call('HSET', x, 'aborted', args[4])
    redis.call('RPUSH', events_key(P, exec, rec[3]), END_MARK)
    return 1
end

-- record(P, exec, owner, field, value [, field, value]...)
-- Writes fields of an execution's record (a node's output o:<k>, its
-- progress p:<k>) for its driver, only while owner holds it: a driver that
-- lost it (cut off while another scheduler adopted it), or a write the
-- network delivers late, cannot overwrite what the new owner wrote.
-- Returns 1, -1 if there is no such execution, or -2 if another owner
-- holds it (nothing is written).
local function record(keys, args)
    local P, exec, owner = args[1], args[2], args[3]
    local x = P .. ':x:' .. exec
    local rec = redis.call('HMGET', x, 'state', 'owner')
    if not rec[1] then
        return -1
    end
    if rec[2] and rec[2] ~= '' and rec[2] ~= owner then
        return -2
    end
    local kv = {}
    for j = 4, #args do
        kv[#kv + 1] = args[j]
    end
    hset_many(x, kv)
    return 1
end

-- Takes or renews one execution for owner, if it is free, already its own
-- or its owner's lease expired. Returns its epoch (>= 1; a new owner gets
-- a new one), 0 if another owner holds it, -1 if it has ended, or -2 if
-- its record does not exist (Redis lost it, or it was deleted).
local function own_one(P, owner, deadline, now, exec)
    local x = P .. ':x:' .. exec
    local st = redis.call('HGET', x, 'state')
    if not st or ENDED[st] then
        redis.call('ZREM', P .. ':owners', exec)
        return st and -1 or -2
    end
    local cur = redis.call('HGET', x, 'owner')
    if cur and cur ~= '' and cur ~= owner then
        local until_ms = tonumber(redis.call('ZSCORE', P .. ':owners', exec))
        if until_ms and until_ms > now then
            return 0
        end
    end
    local epoch
    if cur ~= owner then
        redis.call('HSET', x, 'owner', owner)
        epoch = redis.call('HINCRBY', x, 'epoch', 1)
    else
        epoch = tonumber(redis.call('HGET', x, 'epoch')) or 0
        if epoch < 1 then
            epoch = redis.call('HINCRBY', x, 'epoch', 1)
        end
    end
    if st == 'submitted' then
        redis.call('HSET', x, 'state', 'running')
    end
    redis.call('ZADD', P .. ':owners', deadline, exec)
    return epoch
end

-- own(P, owner, lease_ms, exec...)
-- Takes or renews executions for a driver; returns one integer per exec
-- (see own_one). A driver drives an execution only while this says it
-- owns it, and follows the events of the epoch it was given.
local function own(keys, args)
    local P, owner, lease = args[1], args[2], tonumber(args[3])
    local now = now_ms()
    local deadline = string.format('%d', now + lease)
    local out = {}
    for j = 4, #args do
        out[#out + 1] = own_one(P, owner, deadline, now, args[j])
    end
    return out
end

-- adopt(P, owner, lease_ms, limit)
-- Takes up to limit executions whose owner's lease expired while they
-- still run (their driver died), for owner. Ended ones are forgotten.
-- Returns the execution ids taken.
local function adopt(keys, args)
    local P, owner, lease, limit = args[1], args[2], tonumber(args[3]), tonumber(args[4])
    local now = now_ms()
    local deadline = string.format('%d', now + lease)
    local out = {}
    local due = redis.call('ZRANGEBYSCORE', P .. ':owners', '-inf', now, 'LIMIT', 0, limit)
    for _, exec in ipairs(due) do
        if own_one(P, owner, deadline, now, exec) > 0 then
            out[#out + 1] = exec
        end
    end
    return out
end

-- The keys an ended execution leaves: its record, results, attempt logs
-- and pages (its bodies, events, checkpoints and followers are gone).
local function kept_keys(P, exec)
    local out = {P .. ':x:' .. exec, P .. ':log:' .. exec, P .. ':pg:' .. exec}
    local nodes = tonumber(redis.call('HGET', out[1], 'nodes')) or 0
    for k = 0, nodes - 1 do
        out[#out + 1] = P .. ':r:' .. exec .. ':' .. k
    end
    return out
end

-- finish(P, exec, owner, state, field, value [, retention_ms])
-- Records the end of an execution by its owner: state (succeeded or
-- failed), finished, and field (output or error) = value; drops its queued
-- subtasks and events and its ownership. Field output_of names the field
-- of the record that holds the output already (a node's o:<k>): it is
-- copied here, so a big output crosses the network once. With
-- retention_ms > 0, what the execution leaves expires that long after its
-- end (field expires: when), also when it had already ended (cancelled).
-- Returns 1, 0 if it had already ended (cancelled), -1 if there is no such
-- execution, -2 if another owner holds it, or -3 if the output_of field is
-- not there (nothing is written).
local function finish(keys, args)
    local P, exec, owner = args[1], args[2], args[3]
    local x = P .. ':x:' .. exec
    local st = redis.call('HGET', x, 'state')
    if not st then
        return -1
    end
    if not ENDED[st] then
        local cur = redis.call('HGET', x, 'owner')
        if cur and cur ~= '' and cur ~= owner then
            return -2
        end
        local field, value = args[5], args[6]
        if field == 'output_of' then
            field, value = 'output', redis.call('HGET', x, value)
            if not value then
                return -3
            end
        end
        redis.call('HSET', x, 'state', args[4], 'finished', string.format('%d', now_ms()),
            field, value)
    end
    redis.call('DEL', P .. ':b:' .. exec)
    local epochs = tonumber(redis.call('HGET', x, 'epoch')) or 0
    for epoch = 0, epochs do
        redis.call('DEL', P .. ':ev:' .. exec .. ':' .. epoch)
    end
    drop_running_state(P, exec)
    redis.call('ZREM', P .. ':owners', exec)
    local keep = tonumber(args[7])
    if keep and keep > 0 and redis.call('HEXISTS', x, 'expires') == 0 then
        redis.call('HSET', x, 'expires', string.format('%d', now_ms() + keep))
        for _, key in ipairs(kept_keys(P, exec)) do
            redis.call('PEXPIRE', key, keep)
        end
    end
    return ENDED[st] and 0 or 1
end

-- rm(P, exec)
-- Deletes an ended execution and all it left (mapq rm). Returns 1, -1 if
-- there is no such execution (its entry in P:execs goes), or -2 if it has
-- not ended (nothing is deleted).
local function rm(keys, args)
    local P, exec = args[1], args[2]
    local x = P .. ':x:' .. exec
    local st = redis.call('HGET', x, 'state')
    if st and not ENDED[st] then
        return -2
    end
    redis.call('ZREM', P .. ':execs', exec)
    if not st then
        return -1
    end
    local keys_ = kept_keys(P, exec)
    drop_running_state(P, exec)
    redis.call('DEL', P .. ':b:' .. exec, unpack(keys_))
    redis.call('ZREM', P .. ':owners', exec)
    return 1
end

-- prune(P, start, count)
-- Drops from P:execs up to count entries, from rank start on, whose record
-- has expired (or was deleted). Returns the rank to start from next time,
-- 0 once the end was reached.
local function prune(keys, args)
    local P, start = args[1], tonumber(args[2]) or 0
    local count = math.max(1, math.min(10000, tonumber(args[3]) or 1000))
    local ids = redis.call('ZRANGE', P .. ':execs', start, start + count - 1)
    local gone = {}
    for _, id in ipairs(ids) do
        if redis.call('EXISTS', P .. ':x:' .. id) == 0 then
            gone[#gone + 1] = id
        end
    end
    if #gone > 0 then
        redis.call('ZREM', P .. ':execs', unpack(gone))
    end
    if #ids < count then
        return 0
    end
    return start + #ids - #gone
end

-- scan(P, exec, k, index1, key1, index2, key2, ...)
-- Where each subtask of node k stands, for a driver rebuilding its view:
-- one byte per subtask, its phase (0-8) when a result is recorded, 254
-- when it is queued or running (it has a body), 255 when it was never
-- pushed (or its push was lost). Atomic, so nothing moves in between.
local function scan(keys, args)
    local P, exec, k = args[1], args[2], args[3]
    local fields, hashes = {}, {}
    for j = 4, #args, 2 do
        fields[#fields + 1] = k .. '/' .. args[j]
        hashes[#hashes + 1] = args[j + 1]
    end
    local bodies = gather('HMGET', P .. ':b:' .. exec, fields)
    local results = gather('HMGET', P .. ':r:' .. exec .. ':' .. k, hashes)
    local out = {}
    for m = 1, #fields do
        local rec = results[m]
        local b = 255
        if rec then
            -- A recorded result is finished, whatever it says: a record
            -- that names no final phase counts as FAILED (its error shows
            -- when the node assembles).
            b = record_phase(rec)
            if type(b) ~= 'number' or b < 3 or b > 8 then
                b = 6
            end
        elseif bodies[m] then
            b = 254
        end
        out[#out + 1] = string.char(b)
    end
    return table.concat(out)
end

-- fits(P, queue, interruptible, cpu_milli, mem_bytes, live_ms)
-- Whether any live agent (a heartbeat within live_ms) that serves queue,
-- and may take the task's class (interruptible '1' or '0'), has the CPUs
-- (thousandths) and memory (bytes) a task declares, as registered in
-- P:agent:<name> (cpus, mem; an agent without them counts as fitting).
-- One HMGET per live agent: it is asked only for a task that does not fit
-- on the agent asking. Returns [serving, fitting, largest cpus, largest
-- mem] of those agents.
local function fits(keys, args)
    local P, queue, intr = args[1], args[2], args[3] == '1'
    local cpu, mem = tonumber(args[4]), tonumber(args[5])
    local live = redis.call('ZRANGEBYSCORE', P .. ':agents',
        now_ms() - tonumber(args[6]), '+inf')
    local serving, fitting, best_cpu, best_mem = 0, 0, 0, 0
    for _, name in ipairs(live) do
        local h = redis.call('HMGET', P .. ':agent:' .. name, 'queues',
            'interruptible', 'cpus', 'mem')
        local serves = false
        for q in string.gmatch(h[1] or '', '[^,]+') do
            serves = serves or q == queue
        end
        if serves and (intr or h[2] ~= '1') then
            local c, m = tonumber(h[3]) or 0, tonumber(h[4]) or 0
            serving = serving + 1
            -- An agent that registered no capacity may have any.
            if not h[3] or (c >= cpu and m >= mem) then
                fitting = fitting + 1
            end
            best_cpu = math.max(best_cpu, c)
            best_mem = math.max(best_mem, m)
        end
    end
    return {serving, fitting, best_cpu, best_mem}
end

-- queues(P, live_ms, queue1, queue2, ...)
-- How much work waits, for metrics: the queues named, and with live_ms > 0
-- also every queue a live agent (a heartbeat within live_ms) serves. Returns
-- [held, delayed, [queue, nc, np, ic, ip], ...]: the refs leased to agents
-- (one HLEN per agent holding any), the user retries waiting out their
-- backoff (P:delayed), and per queue the refs ready on the lists of each
-- class. Reads only: one ZRANGE per queue and class, one LLEN per execution
-- waiting there.
local function queues(keys, args)
    local P, live_ms = args[1], tonumber(args[2]) or 0
    local names, seen = {}, {}
    local function add(q)
        if q ~= '' and not seen[q] then
            seen[q] = true
            names[#names + 1] = q
        end
    end
    for j = 3, #args do
        add(args[j])
    end
    if live_ms > 0 then
        local live = redis.call('ZRANGEBYSCORE', P .. ':agents',
            now_ms() - live_ms, '+inf')
        for _, name in ipairs(live) do
            local qs = redis.call('HGET', P .. ':agent:' .. name, 'queues')
            for q in string.gmatch(qs or '', '[^,]+') do
                add(q)
            end
        end
    end
    local leased = 0
    for _, agent in ipairs(redis.call('ZRANGE', P .. ':leases', 0, -1)) do
        leased = leased + redis.call('HLEN', lease_key(P, agent))
    end
    leased = leased + redis.call('ZCARD', P .. ':inflight') -- legacy
    local out = {leased, redis.call('ZCARD', P .. ':delayed')}
    for _, q in ipairs(names) do
        local row = {q}
        for _, cls in ipairs({'nc', 'np', 'ic', 'ip'}) do
            local n = 0
            for _, m in ipairs(redis.call('ZRANGE', turns_key(P, q, cls),
                    0, -1)) do
                n = n + redis.call('LLEN', ready_key(P, q, cls, turn_of(m)))
            end
            row[#row + 1] = n
        end
        out[#out + 1] = row
    end
    return out
end

-- blob_keep(P, rnd, hex): the blob just written under P:blobtmp:<rnd>
-- becomes P:blob:<hex>, whole and without the temporary key's TTL, unless
-- that blob exists (written meanwhile by another writer): then the
-- temporary key goes. 1: kept, 0: there already. A temporary key that
-- expired while written is an error: nothing was kept.
local function blob_keep(keys, args)
    local P, rnd, hex = args[1], args[2], args[3]
    local tmp, blob = P .. ':blobtmp:' .. rnd, P .. ':blob:' .. hex
    if redis.call('EXISTS', tmp) == 0 then
        return redis.error_reply('ERR blob ' .. hex .. ': its temporary key expired while written')
    end
    if redis.call('RENAMENX', tmp, blob) == 1 then
        redis.call('PERSIST', blob)
        return 1
    end
    redis.call('DEL', tmp)
    return 0
end

-- blob_hold(P, holder, grace_ms, hex1, hex2, ...)
-- Makes holder ('x:<exec>' or 'c:<task>:<hex key>') hold the blobs of
-- those hashes (see Blobs, above), before they are stored or referred to:
-- while its key exists, and with grace_ms > 0 also that long from now
-- whether it exists or not (an execution still to be created). Returns a
-- string of '1' (the blob is there) or '0' per hash.
local function blob_hold(keys, args)
    local P, holder, grace = args[1], args[2], tonumber(args[3])
    if not string.match(holder or '', '^[xc]:') or not grace or grace < 0 then
        return redis.error_reply('ERR mapq1_blob_hold: bad holder or grace')
    end
    local hexes = {}
    for j = 4, #args do
        if not string.match(args[j], '^' .. string.rep('%x', 64) .. '$') then
            return redis.error_reply('ERR mapq1_blob_hold: bad hash ' .. args[j])
        end
        hexes[#hexes + 1] = args[j]
    end
    return hold_blobs(P, holder, grace, hexes)
end

-- blob_sweep(P, all, start, count)
-- Looks at up to count blobs (1 to 1000) of P:bx: those whose time came,
-- or with all = '1' every blob from rank start on. A holder ends once its
-- grace is over and its key is gone; a blob without holders is deleted
-- (with its holder set). A blob still held is looked at again in
-- BLOB_RECHECK_MS, or once its last holder's key expires (PTTL) or grace
-- ends if that is later (all = '1' leaves its time alone). Returns {looked at, deleted,
-- bytes deleted, the rank to start from next (all = '1' and a full
-- batch looked at), else -1}.
local function blob_sweep(keys, args)
    local P, all = args[1], args[2] == '1'
    local start = math.max(0, tonumber(args[3]) or 0)
    local count = math.max(1, math.min(1000, tonumber(args[4]) or 100))
    local now = now_ms()
    local bx = P .. ':bx'
    local hexes
    if all then
        hexes = redis.call('ZRANGE', bx, start, start + count - 1)
    else
        hexes = redis.call('ZRANGEBYSCORE', bx, '-inf', now, 'LIMIT', 0, count)
    end
    local gone, bytes = 0, 0
    for _, h in ipairs(hexes) do
        local hk, blob = P .. ':bh:' .. h, P .. ':blob:' .. h
        local hs = redis.call('ZRANGE', hk, 0, -1, 'WITHSCORES')
        local ended, live, nxt = {}, false, now + BLOB_RECHECK_MS
        for j = 1, #hs, 2 do
            local until_ = tonumber(hs[j + 1]) or 0
            local ttl = redis.call('PTTL', P .. ':' .. hs[j])
            if until_ > now then
                live, nxt = true, math.max(nxt, until_)
            end
            if ttl >= 0 then
                live, nxt = true, math.max(nxt, now + ttl)
            elseif ttl == -1 then
                live = true
            elseif until_ <= now then
                ended[#ended + 1] = hs[j]
            end
        end
        if not live then
            bytes = bytes + redis.call('STRLEN', blob)
            redis.call('DEL', blob, hk)
            redis.call('ZREM', bx, h)
            gone = gone + 1
        else
            if #ended > 0 then
                call_many('ZREM', hk, ended)
            end
            if not all then
                redis.call('ZADD', bx, string.format('%d', nxt), h)
            end
        end
    end
    local next_start = -1
    if all and #hexes == count then
        next_start = start + #hexes - gone
    end
    return {#hexes, gone, bytes, next_start}
end

-- version(): the revision of this library (see Versions, above).
redis.register_function{function_name = 'mapq1_version',
    callback = function() return REVISION end, flags = {'no-writes'}}
redis.register_function('mapq1_push', push)
redis.register_function('mapq1_push_cached', push_cached)
redis.register_function('mapq1_push_recover', push_recover)
redis.register_function('mapq1_reserve', reserve)
redis.register_function('mapq1_claim', claim)
redis.register_function('mapq1_done', done)
redis.register_function('mapq1_step', step)
redis.register_function('mapq1_renew', renew)
redis.register_function('mapq1_reap', reap)
redis.register_function('mapq1_cancel', cancel)
redis.register_function('mapq1_abort', abort)
redis.register_function('mapq1_own', own)
redis.register_function('mapq1_record', record)
redis.register_function('mapq1_adopt', adopt)
redis.register_function('mapq1_finish', finish)
redis.register_function('mapq1_blob_keep', blob_keep)
redis.register_function('mapq1_blob_hold', blob_hold)
redis.register_function('mapq1_blob_sweep', blob_sweep)
redis.register_function('mapq1_scan', scan)
redis.register_function('mapq1_fits', fits)
redis.register_function('mapq1_rm', rm)
redis.register_function('mapq1_prune', prune)
redis.register_function{function_name = 'mapq1_queues', callback = queues,
    flags = {'no-writes'}}
