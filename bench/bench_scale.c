/*
 * bench_scale.c - `mapq run` of an n-element plugin map as a user runs it:
 * a child process given the list as a JSON inputs file, its output
 * redirected to a file; then again given the list as --input xs=@FILE.json
 * (a bare JSON list) with --json, the output inside the summary document.
 * Its peak RSS is the kernel's count for that process alone (wait4's
 * ru_maxrss): with --redis it starts no children.
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

/* Writes the list 0..n-1 to path, as {"xs": [...]} with object; 0 or -1. */
static int
write_list(const char *path, long n, bool object)
{
    FILE *f = fopen(path, "w");
    long i;
    int rc = 0;

    if (f == NULL)
        return -1;
    fputs(object ? "{\"xs\": [" : "[", f);
    for (i = 0; i < n; i++)
        fprintf(f, "%s%ld", i ? ", " : "", i);
    fputs(object ? "]}\n" : "]\n", f);
    if (ferror(f))
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Writes the workflow, the inputs file and the bare list; 0 or -1. */
static int
write_files(const char *wf, const char *inputs, const char *list, long n)
{
    FILE *f;

    f = fopen(wf, "w");
    if (f == NULL)
        return -1;
    fputs(scale_yaml, f);
    if (fclose(f) != 0)
        return -1;
    return write_list(inputs, n, true) == 0 && write_list(list, n, false) == 0
               ? 0
               : -1;
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

/* Reads f up to the end of "output": in a --json summary; false if absent. */
static bool
skip_to_output(FILE *f)
{
    static const char key[] = "\"output\":";
    size_t at = 0;
    int c;

    while (key[at] != '\0' && (c = fgetc(f)) != EOF)
        at = c == key[at] ? at + 1 : c == key[0] ? 1 : 0;
    return key[at] == '\0';
}

/* True when the file at path holds the JSON list of the n squares (in a
 * --json summary's "output" with summary). */
static bool
output_ok(const char *path, long n, bool summary, long long *bytes)
{
    FILE *f = fopen(path, "r");
    long i = 0;
    long long v;
    int c;
    bool ok;

    if (f == NULL)
        return false;
    ok = (!summary || skip_to_output(f)) && fgetc(f) == '[';
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

/* One shape: argv run with its output to out, checked and printed. */
static int
scale_once(char *const argv[], const char *out, long n, bool summary,
           const char *label, const char *how)
{
    struct rusage ru;
    long long bytes = 0;
    double t0, secs;
    int status;

    t0 = bench_now_s();
    if (run_to_file(argv, out, &status, &ru) != 0) {
        fprintf(stderr, "mapq-bench: cannot run %s: %s\n", argv[0],
                strerror(errno));
        return -1;
    }
    secs = bench_now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "mapq-bench: %s of %ld elements failed (%s %d)\n",
                label, n, WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    if (!output_ok(out, n, summary, &bytes)) {
        fprintf(stderr,
                "mapq-bench: %s of %ld elements wrote an output that is not "
                "their squares\n",
                label, n);
        return -1;
    }
    printf("%-14s %8ld subtasks  %9.0f subtasks/s  %s: %.1f MiB peak RSS of "
           "its own (SPEC: <= 64), %.1f MB of output\n",
           label, n, secs > 0 ? (double)n / secs : 0, how,
           (double)ru.ru_maxrss / 1024, (double)bytes / 1e6);
    return 0;
}

int
bench_scale_run(const char *url, const char *ns, long n)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], mapq[PATH_MAX], wf[PATH_MAX + 16],
        inputs[PATH_MAX + 16], list[PATH_MAX + 16], assign[PATH_MAX + 32],
        out[PATH_MAX + 16], url_s[512], ns_s[256];
    char run[] = "run", o_in[] = "--inputs", o_input[] = "--input",
         o_redis[] = "--redis", o_ns[] = "--namespace", o_quiet[] = "--quiet",
         o_json[] = "--json";
    char *argv[] = {mapq,  run,  wf,   o_in,    inputs, o_redis,
                    url_s, o_ns, ns_s, o_quiet, NULL};
    char *argv_json[] = {mapq,  run,  wf,   o_input, assign, o_redis,
                         url_s, o_ns, ns_s, o_json,  NULL};
    int rc = -1;

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
    snprintf(list, sizeof(list), "%s/list.json", dir);
    snprintf(assign, sizeof(assign), "xs=@%s", list);
    snprintf(out, sizeof(out), "%s/out.json", dir);
    if (write_files(wf, inputs, list, n) != 0) {
        fprintf(stderr, "mapq-bench: cannot write into %s\n", dir);
        goto out;
    }
    if (scale_once(argv, out, n, false, "mapq run",
                   "`mapq run` with a JSON inputs file") != 0 ||
        scale_once(argv_json, out, n, true, "mapq run json",
                   "`mapq run --input xs=@FILE.json --json`") != 0)
        goto out;
    rc = 0;
out:
    mapq_fs_rmtree(dir);
    return rc;
}
