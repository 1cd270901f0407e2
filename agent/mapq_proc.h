/*
 * mapq_proc.h - what running a command attempt (mapq_cmd) and running a
 * persistent worker (mapq_worker) share: pipes for a child's standard
 * streams, telling a command's own faults from the host's, clocks and
 * durations as text. Pure helpers: no state, no logging.
 */
#ifndef MAPQ_PROC_H
#define MAPQ_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* A close-on-exec pipe with both ends above stderr, whose parent end (0:
 * read, 1: write) is non-blocking. 0, or -1 with errno set and nothing
 * left open. */
int mapq_proc_pipe(int p[2], int parent_end);

/* 0 when path is an executable regular file, else an errno. */
int mapq_proc_check_exec(const char *path);

/* True for spawn errors that are the command's fault, not the host's. */
bool mapq_proc_command_errno(int e);

/* Pins the calling process to the n CPU ids of cpus: for a child before
 * exec (async-signal-safe). 0, or -1 with errno set. */
int mapq_proc_pin_self(const int *cpus, size_t n);

/* Pins every thread of process pid (a persistent worker between two
 * subtasks) to the n CPU ids of cpus. 0, or -1 with errno set. */
int mapq_proc_pin(pid_t pid, const int *cpus, size_t n);

/* Milliseconds since t0 (CLOCK_MONOTONIC). */
int64_t mapq_proc_elapsed_ms(const struct timespec *t0);

/* Writes ms as seconds without trailing zeros into buf: "1.5s", "30s",
 * "0.25s". */
void mapq_proc_secs_text(char *buf, size_t len, int64_t ms);

#endif
