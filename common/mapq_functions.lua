#!lua name=mapq1
--[[
mapq_functions.lua - every state change of a subtask on Redis, as one
atomic, batched function (Redis 7 Functions: persisted and replicated, so a
restart or failover never loses them).

Keys (P is the namespace prefix, passed as the first argument):
  P:q:<queue>:<cls>    LIST  refs ready to run; cls is nc, np, ic or ip
                             (normal/interruptible x command/plugin)
  P:bell:<queue>:<cls> LIST  doorbell of that list: one entry while it has work
  P:inflight           ZSET  ref -> lease deadline (ms, server time)
  P:b:<exec>           HASH  "<k>/<index>" -> subtask body (msgpack)
  P:r:<exec>:<k>       HASH  subtask key (16 bytes) -> result record
  P:ev:<exec>          LIST  events for the scheduler: msgpack [k, index, phase]
  P:x:<exec>           HASH  the execution record
  P:agents             ZSET  agent name -> last heartbeat (ms)

A ref names one attempt of one subtask:
  <exec>/<k>/<index>/<u>/<s>/<i>/<queue>/<cls>
u = user failures so far, s = system failures (lost or interrupted),
i = interruptions. Every retry makes a new ref, so a ref is also the fencing
token: an attempt may finish only while its ref is in P:inflight.

Replies are flat arrays or one msgpack string (hiredis 0.14 limits nesting).
docs/PROTOCOL.md describes all of this for other clients.
]]

local PHASE_SUCCEEDED = 3

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
-- Lua's unpack limit; step must keep pairs together.
local function call_many(cmd, key, args, step, opt)
    step = step or 1000
    for j = 1, #args, step do
        local last = math.min(j + step - 1, #args)
        if opt then
            redis.call(cmd, key, opt, unpack(args, j, last))
        else
            redis.call(cmd, key, unpack(args, j, last))
        end
    end
end

local function ring(P, queue, cls)
    local bell = P .. ':bell:' .. queue .. ':' .. cls
    if redis.call('LLEN', bell) == 0 then
        redis.call('RPUSH', bell, '1')
    end
end

-- push(P, exec, k, queue, cls, index1, body1, index2, body2, ...)
-- Stores the bodies and queues one ref per subtask (first attempt).
local function push(keys, args)
    local P, exec, k, queue, cls = args[1], args[2], args[3], args[4], args[5]
    local fields, refs = {}, {}
    for j = 6, #args, 2 do
        local index = args[j]
        fields[#fields + 1] = k .. '/' .. index
        fields[#fields + 1] = args[j + 1]
        refs[#refs + 1] = exec .. '/' .. k .. '/' .. index .. '/0/0/0/' ..
            queue .. '/' .. cls
    end
    if #refs == 0 then
        return 0
    end
    call_many('HSET', P .. ':b:' .. exec, fields, 2000)
    call_many('RPUSH', P .. ':q:' .. queue .. ':' .. cls, refs)
    ring(P, queue, cls)
    return #refs
end

-- claim(P, agent, lease_ms, ncmd, nplugin, interruptible, queue...)
-- Pops up to ncmd command and nplugin plugin subtasks, leases them and
-- returns one msgpack string: [ref1, body1, ref2, body2, ...].
local function claim(keys, args)
    local P, agent = args[1], args[2]
    local lease, want = tonumber(args[3]), {c = tonumber(args[4]), p = tonumber(args[5])}
    local only_interruptible = args[6] == '1'
    local now = now_ms()
    local out, leases = {}, {}
    for qi = 7, #args do
        local queue = args[qi]
        for _, kind in ipairs({'c', 'p'}) do
            for _, class in ipairs(only_interruptible and {'i'} or {'n', 'i'}) do
                local cls = class .. kind
                local list = P .. ':q:' .. queue .. ':' .. cls
                if want[kind] > 0 then
                    local refs = redis.call('LPOP', list, want[kind])
                    if refs then
                        for _, ref in ipairs(refs) do
                            local r = parse_ref(ref)
                            local body = r and redis.call('HGET', P .. ':b:' .. r.exec,
                                r.k .. '/' .. r.index)
                            -- A ref without a body belongs to a deleted or
                            -- cancelled execution, or is foreign: drop it.
                            if body then
                                out[#out + 1] = ref
                                out[#out + 1] = body
                                leases[#leases + 1] = now + lease
                                leases[#leases + 1] = ref
                                want[kind] = want[kind] - 1
                            end
                        end
                    end
                    if redis.call('LLEN', list) > 0 then
                        ring(P, queue, cls)
                    end
                end
            end
        end
    end
    if #leases > 0 then
        call_many('ZADD', P .. ':inflight', leases, 2000)
    end
    redis.call('ZADD', P .. ':agents', now, agent)
    return cmsgpack.pack(out)
end

-- done(P, agent, ref, kind, phase, field, record, target, ...)
-- Finishes attempts. kind T: terminal, the record is stored under field in
-- P:r:<exec>:<k> (first write wins) and an event is queued. kind U / S / I:
-- the attempt failed and the subtask runs again (user retry, system
-- retry, interruption), queued on target ("<queue>/<cls>"). A ref that is no
-- longer leased is refused and changes nothing. Returns the refused refs.
local function done(keys, args)
    local P = args[1]
    local refused, events, bodies_done = {}, {}, {}
    for j = 3, #args, 6 do
        local ref, kind, phase = args[j], args[j + 1], args[j + 2]
        local field, record, target = args[j + 3], args[j + 4], args[j + 5]
        local r = parse_ref(ref)
        if not r or not redis.call('ZSCORE', P .. ':inflight', ref) then
            refused[#refused + 1] = ref
        else
            redis.call('ZREM', P .. ':inflight', ref)
            if kind == 'T' then
                redis.call('HSETNX', P .. ':r:' .. r.exec .. ':' .. r.k, field, record)
                local ev = events[r.exec] or {}
                ev[#ev + 1] = cmsgpack.pack({tonumber(r.k), tonumber(r.index), tonumber(phase)})
                events[r.exec] = ev
                local bd = bodies_done[r.exec] or {}
                bd[#bd + 1] = r.k .. '/' .. r.index
                bodies_done[r.exec] = bd
            else
                if kind == 'U' then
                    r.u = r.u + 1
                else
                    r.s = r.s + 1
                    if kind == 'I' then
                        r.i = r.i + 1
                    end
                end
                local q, c = string.match(target, '^([^/]+)/(%a%a)$')
                r.queue, r.cls = q or r.queue, c or r.cls
                redis.call('RPUSH', P .. ':q:' .. r.queue .. ':' .. r.cls, make_ref(r))
                ring(P, r.queue, r.cls)
            end
        end
    end
    for exec, ev in pairs(events) do
        call_many('RPUSH', P .. ':ev:' .. exec, ev)
        call_many('HDEL', P .. ':b:' .. exec, bodies_done[exec])
    end
    return refused
end

-- renew(P, agent, lease_ms, ref...)
-- Extends the leases of refs still held and returns the ones that are not
-- (lost: reaped or finished elsewhere) followed by "|" and the refs whose
-- execution is no longer running (to be killed).
local function renew(keys, args)
    local P, agent, lease = args[1], args[2], tonumber(args[3])
    local now = now_ms()
    local lost, stop, leases, state = {}, {}, {}, {}
    for j = 4, #args do
        local ref = args[j]
        local r = parse_ref(ref)
        if not r or not redis.call('ZSCORE', P .. ':inflight', ref) then
            lost[#lost + 1] = ref
        else
            leases[#leases + 1] = now + lease
            leases[#leases + 1] = ref
            if state[r.exec] == nil then
                state[r.exec] = redis.call('HGET', P .. ':x:' .. r.exec, 'state') or ''
            end
            local st = state[r.exec]
            if st ~= 'running' and st ~= 'submitted' then
                stop[#stop + 1] = ref
            end
        end
    end
    if #leases > 0 then
        call_many('ZADD', P .. ':inflight', leases, 2000, 'XX')
    end
    redis.call('ZADD', P .. ':agents', now, agent)
    lost[#lost + 1] = '|'
    for _, ref in ipairs(stop) do
        lost[#lost + 1] = ref
    end
    return lost
end

-- reap(P, limit)
-- Takes back up to limit attempts whose lease expired and queues each
-- again as a system failure. Returns how many were taken back.
local function reap(keys, args)
    local P, limit = args[1], tonumber(args[2])
    local expired = redis.call('ZRANGEBYSCORE', P .. ':inflight', '-inf', now_ms(),
        'LIMIT', 0, limit)
    for _, ref in ipairs(expired) do
        redis.call('ZREM', P .. ':inflight', ref)
        local r = parse_ref(ref)
        if r then
            r.s = r.s + 1
            redis.call('RPUSH', P .. ':q:' .. r.queue .. ':' .. r.cls, make_ref(r))
            ring(P, r.queue, r.cls)
        end
    end
    return #expired
end

redis.register_function('mapq1_push', push)
redis.register_function('mapq1_claim', claim)
redis.register_function('mapq1_done', done)
redis.register_function('mapq1_renew', renew)
redis.register_function('mapq1_reap', reap)
