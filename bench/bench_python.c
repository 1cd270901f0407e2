/*
 * bench_python.c - the Python part of mapq-bench: a function mapped
 * through persistent workers (SPEC section 9), and the same function run
 * by Celery on the same Redis, when Celery is installed.
 *
 * Owns a temporary directory holding the benchmark's Python modules, made
 * before the local agents start (they find the modules, and the project's
 * Python helper, on PYTHONPATH) and removed at the end. Celery runs as a
 * child process; this file only reads the rate it prints.
 */
#include "bench_python.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapq_fs.h"

/* The mapped function, as a module the workers import. */
static const char fn_py[] = "def square(x):\n"
                            "    return x * x\n";

/*
 * Celery's side: a worker (prefork, one process per CPU, as Celery is
 * usually run) and a client that sends n tasks and waits for every
 * result. Prints the rate, or nothing and exit 3 when Celery or the Redis
 * client its Redis transport imports is missing.
 */
static const char celery_py[] =
    "import os, subprocess, sys, time\n"
    "try:\n"
    "    from celery import Celery\n"
    "    import redis\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "# The worker imports this module too: the URL comes from the\n"
    "# environment, which the client sets before starting it.\n"
    "url = os.environ.get('MAPQ_BENCH_CELERY_URL', '')\n"
    "if url.startswith('unix://'):\n"
    "    url = 'redis+socket://' + url[len('unix://'):].split('?')[0]\n"
    "app = Celery('mapq_bench_celery', broker=url, backend=url)\n"
    "app.conf.update(broker_connection_retry_on_startup=True)\n"
    "@app.task(name='square')\n"
    "def square(x):\n"
    "    return x * x\n"
    "if __name__ == '__main__':\n"
    "    n, conc = int(sys.argv[1]), int(sys.argv[2])\n"
    "    here = os.path.dirname(os.path.abspath(__file__))\n"
    "    w = subprocess.Popen([sys.executable, '-m', 'celery', '-A',\n"
    "                          'mapq_bench_celery', 'worker', '-P', 'prefork',\n"
    "                          '-c', str(conc), '-l', 'WARNING',\n"
    "                          '--without-gossip', '--without-mingle',\n"
    "                          '--without-heartbeat'], cwd=here,\n"
    "                         stdout=subprocess.DEVNULL,\n"
    "                         stderr=subprocess.DEVNULL)\n"
    "    try:\n"
    "        square.delay(0).get(timeout=60)\n"
    "        t0 = time.time()\n"
    "        rs = [square.delay(i) for i in range(n)]\n"
    "        for i, r in enumerate(rs):\n"
    "            assert r.get(timeout=600) == i * i\n"
    "        print('%.1f' % (n / (time.time() - t0)))\n"
    "    finally:\n"
    "        w.terminate()\n"
    "        w.wait()\n";

static int
write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int
bench_python_prepare(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR"), *old = getenv("PYTHONPATH");
    char *path;
    size_t n;

    snprintf(dir, len, "%s/mapq-bench-py-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "mapq-bench: cannot create %s: %s\n", dir,
                strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    if (write_file(dir, "mapq_bench_fn.py", fn_py) != 0 ||
        write_file(dir, "mapq_bench_celery.py", celery_py) != 0) {
        fprintf(stderr, "mapq-bench: cannot write into %s\n", dir);
        return -1;
    }
    n = strlen(MAPQ_SDK_PYTHON_DIR) + strlen(dir) + (old ? strlen(old) : 0) + 3;
    path = malloc(n);
    if (path == NULL)
        return -1;
    snprintf(path, n, "%s:%s%s%s", MAPQ_SDK_PYTHON_DIR, dir, old ? ":" : "",
             old ? old : "");
    setenv("PYTHONPATH", path, 1);
    free(path);
    return 0;
}

/* Runs argv (NULL-terminated) and reads the first line of its stdout into
 * out; returns its exit status, or -1 when it could not run. */
static int
run_read(char *const argv[], char *out, size_t len)
{
    int fds[2], status;
    ssize_t got;
    size_t have = 0;
    pid_t pid;

    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    while (have + 1 < len &&
           (got = read(fds[0], out + have, len - have - 1)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        have += (size_t)got;
    }
    out[have] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
bench_python_celery(const char *dir, const char *url, long n, int conc,
                    double *rate)
{
    /* Debian's Celery (python3-celery) is on the system's python3, which
     * may not be the first python3 on PATH. */
    static const char *const pythons[] = {"/usr/bin/python3", "python3"};
    char py[64], script[1024], ns[32], cs[32], line[128];
    size_t i;
    int st = 3;

    snprintf(script, sizeof(script), "%s/mapq_bench_celery.py", dir);
    setenv("MAPQ_BENCH_CELERY_URL", url, 1);
    snprintf(ns, sizeof(ns), "%ld", n);
    snprintf(cs, sizeof(cs), "%d", conc);
    for (i = 0; i < sizeof(pythons) / sizeof(*pythons); i++) {
        char *argv[] = {py, script, ns, cs, NULL};

        snprintf(py, sizeof(py), "%s", pythons[i]);
        st = run_read(argv, line, sizeof(line));
        if (st != 3 && st != 127)
            break;
    }
    if (st == 3 || st == 127)
        return 1;
    if (st != 0 || sscanf(line, "%lf", rate) != 1)
        return -1;
    return 0;
}

void
bench_python_cleanup(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        mapq_fs_rmtree(dir);
}
