/*
 * fixture_redis.h - the fixture of the unit tests of the mapq1 function
 * library: a redis-server of the test group's own, one namespace per test,
 * and helpers that call the functions the way agents and schedulers do.
 *
 * fx_group_setup() starts redis-server on a unix socket in a temporary
 * directory (or uses $MAPQ_TEST_REDIS_URL); fx_setup() connects and names
 * the test's namespace; fx_teardown() deletes its keys. A struct fx keeps
 * the last reply (freed by the next call and by teardown) and its unpacked
 * msgpack.
 */
#ifndef MAPQ_FIXTURE_REDIS_H
#define MAPQ_FIXTURE_REDIS_H

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC "0123456789ab"

struct fx {
    redisContext *c;
    char ns[32];
    redisReply *reply; /* last reply, freed by the next call and teardown */
    msgpack_unpacked u;
};

int fx_group_setup(void **state);
/* The URL of the group's Redis, for tests that open connections of their
 * own. */
const char *fx_url(void);
int fx_group_teardown(void **state);
int fx_setup(void **state);
int fx_teardown(void **state);
void fx_pause_ms(long ms);

/* Runs a command from NULL-terminated strings; keeps the reply in f. */
redisReply *fx_run(struct fx *f, const char *first, ...);
/* Runs a command whose reply must be an integer, and returns it. */
long long fx_integer(struct fx *f, const char *first, ...);
/* "<namespace>:<suffix>", in one of four rotating static buffers. */
const char *fx_key(struct fx *f, const char *suffix);
/* How many attempts agents hold: the fields of every <namespace>:lease:*
 * hash, counted without the library. */
long long fx_leased(struct fx *f);
/* Puts the deadline of agent-1's leases (in <namespace>:leases) in the
 * past, as if it had died: the next reap takes them all back. */
void fx_lease_lapse(struct fx *f);

/* Makes the record of exec (state running) unless it has one: as a driver
 * does before it pushes; what ends of an execution without one (deleted)
 * is not written. fx_push_exec() does it. */
void fx_exec_record(struct fx *f, const char *exec);
/* Pushes subtasks 0..n-1 (n <= FX_PUSH_MAX) of node 0 of exec (EXEC for
 * fx_push()) onto queue q, class cls, bodies "b<i>". */
#define FX_PUSH_MAX 64
void fx_push(struct fx *f, int n, const char *cls);
void fx_push_exec(struct fx *f, const char *exec, int n, const char *cls);
/* Pushes subtasks from..to-1 of node 0 of EXEC onto q, class nc. */
void fx_push_more(struct fx *f, int from, int to);
/* Claims on queue q as agent-1; returns the number of claimed triples,
 * which stay readable in f->u (see fx_claimed()). */
uint32_t fx_claim(struct fx *f, const char *lease, const char *ncmd,
                  const char *nplug, const char *intr);
/* The i-th claimed ref (or body when body is true), copied into out. */
void fx_claimed(struct fx *f, uint32_t i, bool body, char *out, size_t len);
/* Finishes one attempt with mapq1_done; returns how many were refused. */
size_t fx_done1(struct fx *f, const char *ref, const char *kind,
                const char *field, const char *record, const char *target);
/* Calls mapq1_step for agent-1 on queue q (see test_functions.c); returns
 * how many were claimed; the reply stays in f->u. */
uint32_t fx_step(struct fx *f, const char *ncmd, const char *prefetch,
                 const char *flags, const char *const *entries);
/* Checks f->reply as mapq1_step's (one msgpack str of 4 elements) and
 * unpacks it into f->u; returns how many were claimed. */
uint32_t fx_step_reply(struct fx *f);
/* The i-th ref a step claimed, copied into out. */
void fx_stepped(struct fx *f, uint32_t i, char *out, size_t len);

#endif
