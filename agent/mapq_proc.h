/*
 * mapq_proc.h - what running a command attempt (mapq_cmd) and running a
 * persistent worker (mapq_worker) share: finding the program on PATH, the
 * inherited environment's filter, spawning the child in its own process
 * group (with a memory limit and CPU pinning), pipes for its standard
 * streams, telling a command's own faults from the host's, clocks and
 * durations as text. Helpers: no state, no logging.
 */
#ifndef MAPQ_PROC_H
#define MAPQ_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* How a child starts: in its own process group, in dir, with fds as its
 * stdin, stdout and stderr and nothing else of the agent's open. All
 * borrowed. */
struct mapq_proc_child {
    const char *path; /* as mapq_proc_find() found it */
    char *const *argv;
    char *const *envp;
    const char *dir; /* its working directory */
    int fds[3];
    int64_t mem_bytes; /* RLIMIT_AS when > 0 */
    const int *cpus;   /* CPU ids to pin it to, ncpus of them (0: none) */
    size_t ncpus;
};

/* Starts c as vfork() does: the agent's thread waits until the child has
 * called execve(), so an error of its setup or exec (its directory, its
 * memory limit, its CPUs, the program) is returned. The child's
 * PR_SET_PDEATHSIG follows the thread that started it, and the child runs
 * on a stack of this module's: call from the loop's thread only. Writes
 * its pid; returns 0 or an errno. */
int mapq_proc_spawn(const struct mapq_proc_child *c, pid_t *pid);

/* Finds name as execvp() would, relative names against dir (where the
 * child runs), and sets *path (caller frees); returns 0 or an errno
 * (ENOENT: not found). Knowing this before spawning keeps "command not
 * found" exact even where the spawn cannot report exec errors (vfork
 * emulated as fork, as under valgrind). With remembered, a program found
 * before is answered from memory, unchecked (*remembered says so: a
 * caller that then cannot execute it calls mapq_proc_forget() and asks
 * again), and one found now is remembered; NULL: always searched, never
 * remembered. The loop's thread only. */
int mapq_proc_find(const char *name, const char *dir, char **path,
                   bool *remembered);

/* Forgets the program found for name (NULL: every program), so that the
 * next mapq_proc_find() looks for it again. */
void mapq_proc_forget(const char *name);

/* True for an inherited variable a child must not see: those mapq sets
 * itself (MAPQ_IN_*, MAPQ_EXECUTION, ..., MAPQ_WORKER) and the agent's
 * connection (the Redis URL holds the password). */
bool mapq_proc_env_is_ours(const char *entry);

/* A close-on-exec pipe with both ends above stderr, whose parent end (0:
 * read, 1: write) is non-blocking. 0, or -1 with errno set and nothing
 * left open. */
int mapq_proc_pipe(int p[2], int parent_end);

/* /dev/null open for writing, close-on-exec and above stderr, for a
 * stream nobody reads: one descriptor for the whole process, opened by the
 * first call (from the loop's thread) and never to be closed. -1 with
 * errno set. */
int mapq_proc_devnull(void);

/* 0 when path is an executable regular file, else an errno. */
int mapq_proc_check_exec(const char *path);

/* True for spawn errors that are the command's fault, not the host's. */
bool mapq_proc_command_errno(int e);

/* Pins every thread of process pid (a persistent worker between two
 * subtasks) to the n CPU ids of cpus. 0, or -1 with errno set. */
int mapq_proc_pin(pid_t pid, const int *cpus, size_t n);

/* Milliseconds since t0 (CLOCK_MONOTONIC). */
int64_t mapq_proc_elapsed_ms(const struct timespec *t0);

/* Writes ms as seconds without trailing zeros into buf: "1.5s", "30s",
 * "0.25s". */
void mapq_proc_secs_text(char *buf, size_t len, int64_t ms);

#endif
