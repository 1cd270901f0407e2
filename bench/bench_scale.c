/*
 * bench_scale.c - `mapq run` of an n-element plugin map as a user runs it:
 * a child process given the list as a JSON inputs file, its output
 * redirected to a file. Its peak RSS is the kernel's count for that
 * process alone (wait4's ru_maxrss): with --redis it starts no children.
 */
#include "bench_scale.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_exec.h"
#include "mapq_fs.h"

static const char scale_yaml[] =
    "name: bench_scale\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  square:\n"
    "    inputs: {x: int}\n"
    "    output: int\n"
    "    plugin: {library: mapq_example_plugin.so, symbol: square}\n"
    "nodes:\n"
    "  all: {map: square, over: {x: $inputs.xs}}\n"
    "output: $all\n";

/* Writes the workflow and the inputs file; 0 or -1. */
static int
write_files(const char *wf, const char *inputs, long n)
{
    FILE *f;
    long i;
    int rc = 0;

    f = fopen(wf, "w");
    if (f == NULL)
        return -1;
    fputs(scale_yaml, f);
    if (fclose(f) != 0)
        return -1;
    f = fopen(inputs, "w");
    if (f == NULL)
        return -1;
    fputs("{\"xs\": [", f);
    for (i = 0; i < n; i++)
        fprintf(f, "%s%ld", i ? ", " : "", i);
    fputs("]}\n", f);
    if (ferror(f))
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* The path of prog next to this binary. */
static int
sibling(const char *prog, char *out, size_t len)
{
    char self[PATH_MAX], *slash;
    ssize_t got = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (got <= 0)
        return -1;
    self[got] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return snprintf(out, len, "%s/%s", self, prog) < (int)len ? 0 : -1;
}

/* Runs argv with stdout into path; its status and rusage. */
static int
run_to_file(char *const argv[], const char *path, int *status,
            struct rusage *ru)
{
    pid_t pid;
    int fd;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        dup2(fd, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    while (wait4(pid, status, 0, ru) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* True when the file at path holds the JSON list of the n squares. */
static bool
output_ok(const char *path, long n, long long *bytes)
{
    FILE *f = fopen(path, "r");
    long i = 0;
    long long v;
    int c;
    bool ok;

    if (f == NULL)
        return false;
    ok = fgetc(f) == '[';
    while (ok && i < n && fscanf(f, "%lld", &v) == 1) {
        ok = v == (long long)i * i;
        i++;
        c = fgetc(f);
        ok = ok && c == (i < n ? ',' : ']');
    }
    ok = ok && i == n;
    *bytes = ftell(f);
    fclose(f);
    return ok;
}

int
bench_scale_run(const char *url, const char *ns, long n)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], mapq[PATH_MAX], wf[PATH_MAX + 16],
        inputs[PATH_MAX + 16], out[PATH_MAX + 16], url_s[512], ns_s[256];
    char run[] = "run", o_in[] = "--inputs", o_redis[] = "--redis",
         o_ns[] = "--namespace", o_quiet[] = "--quiet";
    char *argv[] = {mapq,  run,  wf,   o_in,    inputs, o_redis,
                    url_s, o_ns, ns_s, o_quiet, NULL};
    struct rusage ru;
    long long bytes = 0;
    double t0, secs;
    int status, rc = -1;

    snprintf(url_s, sizeof(url_s), "%s", url);
    snprintf(ns_s, sizeof(ns_s), "%s", ns);
    snprintf(dir, sizeof(dir), "%s/mapq-bench-scale-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (sibling("mapq", mapq, sizeof(mapq)) != 0 || mkdtemp(dir) == NULL) {
        fprintf(stderr, "mapq-bench: cannot prepare the scale run: %s\n",
                strerror(errno));
        return -1;
    }
    snprintf(wf, sizeof(wf), "%s/scale.yaml", dir);
    snprintf(inputs, sizeof(inputs), "%s/xs.json", dir);
    snprintf(out, sizeof(out), "%s/out.json", dir);
    if (write_files(wf, inputs, n) != 0) {
        fprintf(stderr, "mapq-bench: cannot write into %s\n", dir);
        goto out;
    }
    t0 = bench_now_s();
    if (run_to_file(argv, out, &status, &ru) != 0) {
        fprintf(stderr, "mapq-bench: cannot run %s: %s\n", mapq,
                strerror(errno));
        goto out;
    }
    secs = bench_now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "mapq-bench: mapq run of %ld elements failed (%s %d)\n",
                n, WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        goto out;
    }
    if (!output_ok(out, n, &bytes)) {
        fprintf(stderr,
                "mapq-bench: mapq run of %ld elements wrote an output that "
                "is not their squares\n",
                n);
        goto out;
    }
    printf("%-14s %8ld subtasks  %9.0f subtasks/s  `mapq run` with a JSON "
           "inputs file: %.1f MiB peak RSS of its own (SPEC: <= 64), "
           "%.1f MB of output\n",
           "mapq run", n, secs > 0 ? (double)n / secs : 0,
           (double)ru.ru_maxrss / 1024, (double)bytes / 1e6);
    rc = 0;
out:
    mapq_fs_rmtree(dir);
    return rc;
}
