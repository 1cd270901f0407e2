/*
 * bench_scale.h - mapq-bench's scale figure: `mapq run` of a big plugin
 * map, run the way a user runs it (its own process, the list in a JSON
 * inputs file, the output written to a file), with its own peak RSS.
 */
#ifndef MAPQ_BENCH_SCALE_H
#define MAPQ_BENCH_SCALE_H

/*
 * Writes a workflow (square over $inputs.xs), {"xs": [0, ..., n-1]} and
 * the bare list into a temporary directory, runs `mapq run` (the binary
 * next to this one) on them against the Redis at url (borrowed) in
 * namespace ns, whose agents must be running, twice (--inputs FILE, then
 * --input xs=@LIST --json), and prints each run's rate, peak RSS and size
 * of output. Returns 0, or -1 with the reason printed (it could not run,
 * it failed, or its output is not the n squares).
 */
int bench_scale_run(const char *url, const char *ns, long n);

#endif
