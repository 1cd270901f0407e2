/*
 * test_shell.c - finding the script a shell runs in a task's argv: each
 * shell and its options, each wrapper (timeout, nice, env, sudo, xargs ...)
 * with its options and nested, and the commands that must not count (a
 * placeholder as an argv entry of its own, unknown options, wrappers that
 * run no command, other interpreters).
 *
 * In the cases below "{x}" marks the entry that must be found as the
 * script; a command without a script either has no "{x}" entry found or
 * gets -1.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <string.h>

#include "mapq_shell.h"

#define ARGV(...) ((const char *const[]){__VA_ARGS__})
#define ARGC(...) (sizeof(ARGV(__VA_ARGS__)) / sizeof(const char *))

/* The argv joined by spaces, for failure messages. */
static const char *
joined(const char *const *argv, size_t argc)
{
    static char text[512];
    size_t i, n = 0;

    text[0] = '\0';
    for (i = 0; i < argc && n < sizeof(text); i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s[%s]",
                              i > 0 ? " " : "", argv[i]);
    return text;
}

/* The script must be the one entry holding "{x}", run by the nearest entry
 * before it that equals runner. */
static void
script(const char *runner, const char *const *argv, size_t argc)
{
    size_t want = argc, got_runner = argc, i;
    long got;

    for (i = 0; i < argc; i++)
        if (strstr(argv[i], "{x}") != NULL)
            want = i;
    assert_true(want < argc);
    got = mapq_shell_script_index(argv, argc, &got_runner);
    if (got != (long)want)
        fail_msg("%s: script at %ld, want %zu", joined(argv, argc), got, want);
    i = want;
    while (i > 0 && strcmp(argv[i - 1], runner) != 0)
        i--;
    assert_true(i > 0);
    if (got_runner != i - 1)
        fail_msg("%s: runner at %zu, want %zu", joined(argv, argc), got_runner,
                 i - 1);
}

/* No script, or one that is not the entry holding "{x}". */
static void
no_script(const char *const *argv, size_t argc)
{
    size_t runner;
    long got = mapq_shell_script_index(argv, argc, &runner);

    if (got >= (long)argc || (got >= 0 && strstr(argv[got], "{x}") != NULL))
        fail_msg("%s: script found at %ld", joined(argv, argc), got);
}

#define SCRIPT(runner, ...) script(runner, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__))
#define NO_SCRIPT(...)      no_script(ARGV(__VA_ARGS__), ARGC(__VA_ARGS__))

static void
test_shell_posix_shells(void **state)
{
    static const char *const shells[] = {
        "sh",   "bash",  "rbash", "dash", "zsh",  "ksh",  "ksh93", "mksh",
        "lksh", "pdksh", "oksh",  "ash",  "hush", "yash", "posh",  "/bin/sh"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
        SCRIPT(shells[i], shells[i], "-c", "echo {x}");
        SCRIPT(shells[i], shells[i], "-ec", "echo {x}", "name", "arg");
        NO_SCRIPT(shells[i], "script.sh", "{x}");
    }
}

static void
test_shell_posix_options(void **state)
{
    (void)state;
    SCRIPT("bash", "bash", "-euxc", "echo {x}");
    SCRIPT("bash", "bash", "-e", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-c", "-e", "echo {x}");
    SCRIPT("bash", "bash", "-lc", "echo {x}");
    SCRIPT("bash", "bash", "-l", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-o", "pipefail", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-euo", "pipefail", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-ceo", "pipefail", "echo {x}");
    SCRIPT("bash", "bash", "-oc", "pipefail", "echo {x}");
    SCRIPT("bash", "bash", "+o", "posix", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-O", "extglob", "-c", "echo {x}");
    SCRIPT("bash", "bash", "+O", "extglob", "-c", "echo {x}");
    SCRIPT("bash", "bash", "-O", "extglob", "-O", "nullglob", "-c", "echo {x}");
    SCRIPT("bash", "bash", "--norc", "--noprofile", "-c", "echo {x}");
    SCRIPT("bash", "bash", "--login", "-c", "echo {x}");
    SCRIPT("bash", "bash", "--posix", "-ec", "echo {x}");
    SCRIPT("bash", "bash", "--rcfile", "/etc/rc", "-c", "echo {x}");
    SCRIPT("bash", "bash", "--init-file", "rc", "-c", "echo {x}");
    SCRIPT("zsh", "zsh", "--emulate", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sh", "-c", "--", "echo {x}");
    SCRIPT("sh", "sh", "-c", "-", "echo {x}");
    SCRIPT("/usr/bin/bash", "/usr/bin/bash", "-c", "echo {x}", "bash");
    /* The script is the first operand; later ones are $0, $1 ... */
    NO_SCRIPT("sh", "-c", "echo \"$1\"", "sh", "{x}");
    NO_SCRIPT("bash", "-o", "pipefail", "script.sh", "{x}");
    NO_SCRIPT("bash", "--rcfile", "{x}", "script.sh");
    NO_SCRIPT("sh", "-e", "{x}");
    NO_SCRIPT("sh", "-c");
    NO_SCRIPT("bash", "-o", "-c");
    NO_SCRIPT("sh");
}

static void
test_shell_csh_fish(void **state)
{
    (void)state;
    SCRIPT("csh", "csh", "-c", "echo {x}");
    SCRIPT("tcsh", "tcsh", "-fc", "echo {x}");
    SCRIPT("tcsh", "tcsh", "-f", "-c", "echo {x}", "arg");
    SCRIPT("/bin/tcsh", "/bin/tcsh", "-Dname=1", "-c", "echo {x}");
    NO_SCRIPT("csh", "script.csh", "{x}");
    NO_SCRIPT("tcsh", "-f", "script.csh", "{x}");
    NO_SCRIPT("tcsh", "-c");

    SCRIPT("fish", "fish", "-c", "echo {x}");
    SCRIPT("fish", "fish", "--command", "echo {x}");
    SCRIPT("fish", "fish", "--command=echo {x}");
    SCRIPT("fish", "fish", "-cecho {x}");
    SCRIPT("fish", "fish", "-C", "set y {x}", "-c", "echo $y");
    SCRIPT("fish", "fish", "--init-command=set y {x}");
    SCRIPT("fish", "fish", "--no-config", "--private", "-c", "echo {x}");
    SCRIPT("fish", "fish", "-Nlc", "echo {x}");
    SCRIPT("fish", "fish", "-d", "3", "-c", "echo {x}");
    SCRIPT("fish", "fish", "--no-conf", "-c", "echo {x}");
    NO_SCRIPT("fish", "script.fish", "{x}");
    NO_SCRIPT("fish", "-c", "echo $argv", "{x}");
    NO_SCRIPT("fish", "--profile", "{x}", "-c", "true");
    NO_SCRIPT("fish", "--unknown", "-c", "{x}");
    NO_SCRIPT("fish", "-c");
}

static void
test_shell_busybox(void **state)
{
    (void)state;
    SCRIPT("sh", "busybox", "sh", "-c", "echo {x}");
    SCRIPT("ash", "busybox", "ash", "-c", "echo {x}");
    SCRIPT("hush", "/bin/busybox", "hush", "-ec", "echo {x}");
    SCRIPT("sh", "busybox", "timeout", "5", "busybox", "sh", "-c", "echo {x}");
    SCRIPT("sh", "busybox", "env", "A=1", "sh", "-c", "echo {x}");
    NO_SCRIPT("busybox", "--list", "sh", "-c", "{x}");
    NO_SCRIPT("busybox", "cat", "{x}");
    NO_SCRIPT("busybox");
}

static void
test_shell_env(void **state)
{
    (void)state;
    SCRIPT("bash", "env", "LC_ALL=C", "bash", "-c", "echo {x}");
    SCRIPT("zsh", "/usr/bin/env", "-i", "zsh", "-c", "echo {x}");
    SCRIPT("sh", "env", "-", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "-C", "/tmp", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "-C/tmp", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--chdir=/tmp", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--chdir", "/tmp", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "-u", "HOME", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--unset=HOME", "-0", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "-iu", "HOME", "A=1", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--ignore-env", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--default-signal=PIPE", "-v", "sh", "-c", "echo {x}");
    SCRIPT("sh", "env", "--", "A=1", "sh", "-c", "echo {x}");
    SCRIPT("env", "env", "-S", "sh -c \"echo {x}\"");
    SCRIPT("env", "env", "-Ssh -c {x}");
    SCRIPT("env", "env", "-iS", "sh -c {x}");
    SCRIPT("env", "env", "--split-string", "prog {x}");
    SCRIPT("env", "env", "--split-string=prog {x}");
    /* -uS unsets S: no split string. */
    SCRIPT("sh", "env", "-uS", "sh", "-c", "echo {x}");
    NO_SCRIPT("env", "--i", "sh", "-c", "{x}"); /* ambiguous */
    NO_SCRIPT("env", "--bogus", "sh", "-c", "{x}");
    NO_SCRIPT("nice", "--=5", "sh", "-c", "{x}");
    NO_SCRIPT("env", "A=1", "-i", "sh", "-c", "{x}"); /* runs "-i" */
    NO_SCRIPT("env", "-u");
    NO_SCRIPT("env", "A=1", "printf", "%s", "{x}");
}

static void
test_shell_timeout_nice_nohup(void **state)
{
    (void)state;
    SCRIPT("bash", "timeout", "5", "bash", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "-s", "KILL", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "-sKILL", "-k5", "10s", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "-k", "5", "10", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "--signal=TERM", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "--signal", "TERM", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "--sig=TERM", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "timeout", "--kill-after=1", "--foreground", "-v", "1m", "sh",
           "-c", "echo {x}");
    SCRIPT("sh", "timeout", "-pv", "--preserve-status", "5", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "timeout", "--", "5", "sh", "-c", "echo {x}");
    NO_SCRIPT("timeout", "5", "convert", "{x}", "out.png");
    NO_SCRIPT("timeout", "--bogus", "5", "sh", "-c", "{x}");
    NO_SCRIPT("timeout", "-t", "5", "sh", "-c", "{x}");
    NO_SCRIPT("timeout", "--foreground=yes", "5", "sh", "-c", "{x}");
    NO_SCRIPT("timeout", "-s");
    NO_SCRIPT("timeout", "5");
    NO_SCRIPT("timeout");

    SCRIPT("sh", "nice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "-n", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "-n5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "-5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "--10", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "-+5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "--adjustment=3", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nice", "--adjustment", "3", "sh", "-c", "echo {x}");
    NO_SCRIPT("nice", "-x", "sh", "-c", "{x}");
    NO_SCRIPT("nice", "-n");
    NO_SCRIPT("nice");

    SCRIPT("sh", "nohup", "sh", "-c", "echo {x}");
    SCRIPT("sh", "nohup", "--", "sh", "-c", "echo {x}");
    NO_SCRIPT("nohup", "-x", "sh", "-c", "{x}");
}

static void
test_shell_process_wrappers(void **state)
{
    (void)state;
    SCRIPT("sh", "setsid", "sh", "-c", "echo {x}");
    SCRIPT("sh", "setsid", "-w", "sh", "-c", "echo {x}");
    SCRIPT("sh", "setsid", "-f", "-c", "sh", "-c", "echo {x}");
    SCRIPT("sh", "setsid", "-wf", "--ctty", "sh", "-c", "echo {x}");
    NO_SCRIPT("setsid", "-x", "sh", "-c", "{x}");

    SCRIPT("sh", "stdbuf", "-o", "L", "sh", "-c", "echo {x}");
    SCRIPT("sh", "stdbuf", "-oL", "-eL", "sh", "-c", "echo {x}");
    SCRIPT("sh", "stdbuf", "-i0", "sh", "-c", "echo {x}");
    SCRIPT("sh", "stdbuf", "--output=L", "--error", "0", "sh", "-c",
           "echo {x}");
    NO_SCRIPT("stdbuf", "--output");

    SCRIPT("sh", "ionice", "-c", "3", "sh", "-c", "echo {x}");
    SCRIPT("sh", "ionice", "-c2", "-n7", "sh", "-c", "echo {x}");
    SCRIPT("sh", "ionice", "-t", "-c", "3", "-n", "0", "sh", "-c", "echo {x}");
    SCRIPT("sh", "ionice", "--class", "idle", "sh", "-c", "echo {x}");
    NO_SCRIPT("ionice", "-p", "123", "sh", "-c", "{x}");

    SCRIPT("sh", "chrt", "10", "sh", "-c", "echo {x}");
    SCRIPT("sh", "chrt", "-f", "10", "sh", "-c", "echo {x}");
    SCRIPT("sh", "chrt", "--rr", "5", "sh", "-c", "echo {x}");
    SCRIPT("sh", "chrt", "-o", "0", "sh", "-c", "echo {x}");
    SCRIPT("sh", "chrt", "--idle", "sh", "-c", "echo {x}");
    SCRIPT("sh", "chrt", "-d", "-T", "100", "-D", "1000", "0", "sh", "-c",
           "echo {x}");
    NO_SCRIPT("chrt", "-p", "10", "123");
    NO_SCRIPT("chrt", "-m", "sh", "-c", "{x}");

    SCRIPT("sh", "taskset", "0x3", "sh", "-c", "echo {x}");
    SCRIPT("sh", "taskset", "-c", "0,1", "sh", "-c", "echo {x}");
    SCRIPT("sh", "taskset", "-ac", "0-3", "sh", "-c", "echo {x}");
    SCRIPT("sh", "taskset", "--cpu-list", "0", "sh", "-c", "echo {x}");
    NO_SCRIPT("taskset", "-p", "3", "123");

    SCRIPT("sh", "time", "sh", "-c", "echo {x}");
    SCRIPT("sh", "/usr/bin/time", "-v", "-f", "%e", "-o", "t.txt", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "time", "--format=%e", "--append", "sh", "-c", "echo {x}");

    SCRIPT("sh", "flock", "/tmp/l", "sh", "-c", "echo {x}");
    SCRIPT("sh", "flock", "-x", "-w", "5", "/tmp/l", "sh", "-c", "echo {x}");
    SCRIPT("flock", "flock", "/tmp/l", "-c", "echo {x}");
    SCRIPT("flock", "flock", "--timeout=5", "-n", "/tmp/l", "--command",
           "echo {x}");
    NO_SCRIPT("flock", "/tmp/l", "echo", "{x}");
    NO_SCRIPT("flock", "/tmp/l", "-c");
}

static void
test_shell_sudo_doas(void **state)
{
    (void)state;
    SCRIPT("sh", "sudo", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-u", "alice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-ualice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-nu", "alice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-E", "-n", "--", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-u", "alice", "-g", "staff", "-H", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "sudo", "--user=alice", "--preserve-env=PATH", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "sudo", "--user", "alice", "--preserve-env", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "sudo", "A=1", "-u", "alice", "B=2", "sh", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-D", "/tmp", "-k", "sh", "-c", "echo {x}");
    /* sudo -u root: the user is not the command. */
    SCRIPT("sh", "sudo", "-u", "sh", "sh", "-c", "echo {x}");
    NO_SCRIPT("sudo", "-s", "echo {x}");
    NO_SCRIPT("sudo", "-i", "sh", "-c", "{x}");
    NO_SCRIPT("sudo", "-e", "{x}");
    NO_SCRIPT("sudo", "-l", "sh", "-c", "{x}");
    NO_SCRIPT("sudo", "--login", "sh", "-c", "{x}");
    NO_SCRIPT("sudo", "--", "A=1", "sh", "-c", "{x}"); /* runs "A=1" */
    NO_SCRIPT("sudo", "-u");

    SCRIPT("sh", "doas", "sh", "-c", "echo {x}");
    SCRIPT("sh", "doas", "-u", "alice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "doas", "-n", "-u", "alice", "sh", "-c", "echo {x}");
    SCRIPT("sh", "doas", "--", "sh", "-c", "echo {x}");
    NO_SCRIPT("doas", "-s", "{x}");
    NO_SCRIPT("doas", "-C", "/etc/doas.conf", "sh", "-c", "{x}");
}

static void
test_shell_xargs(void **state)
{
    (void)state;
    SCRIPT("sh", "xargs", "sh", "-c", "echo {x}");
    SCRIPT("sh", "xargs", "-I", "{}", "sh", "-c", "echo {x} {}");
    SCRIPT("sh", "xargs", "-I{}", "sh", "-c", "echo {x} {}");
    SCRIPT("sh", "xargs", "-i", "sh", "-c", "echo {x} {}");
    SCRIPT("sh", "xargs", "-n", "1", "-P", "4", "sh", "-c", "echo {x}");
    SCRIPT("sh", "xargs", "-n1", "-P4", "-r", "sh", "-c", "echo {x}");
    SCRIPT("sh", "xargs", "-d", "\\n", "-t", "sh", "-c", "echo {x}");
    SCRIPT("sh", "xargs", "-0", "-a", "list", "sh", "-c", "echo {x}");
    SCRIPT("sh", "xargs", "--max-procs=4", "--null", "--max-args", "2", "sh",
           "-c", "echo {x}");
    SCRIPT("sh", "xargs", "-L", "1", "-s", "4096", "-x", "sh", "-c",
           "echo {x}");
    SCRIPT("sh", "xargs", "--replace", "--process-slot-var=S", "sh", "-c",
           "echo {x}");
    NO_SCRIPT("xargs", "echo", "{x}");
    NO_SCRIPT("xargs", "--bogus", "sh", "-c", "{x}");
    NO_SCRIPT("xargs", "-n");
    NO_SCRIPT("xargs");
}

static void
test_shell_nested(void **state)
{
    (void)state;
    SCRIPT("sh", "nice", "-n", "5", "env", "sh", "-ec", "echo {x}");
    SCRIPT("sh", "env", "timeout", "5", "sh", "-c", "echo {x}");
    SCRIPT("/bin/bash", "/usr/bin/env", "timeout", "-s", "KILL", "30",
           "/bin/bash", "-lc", "echo {x}");
    SCRIPT("bash", "timeout", "5", "nice", "-n", "5", "env", "A=1", "sudo",
           "-u", "u", "stdbuf", "-oL", "ionice", "-c3", "chrt", "-b", "0",
           "taskset", "-c", "0", "setsid", "-w", "nohup", "xargs", "-I{}",
           "bash", "-c", "echo {x}");
    SCRIPT("sh", "sudo", "-u", "u", "xargs", "-I{}", "sh", "-c", "echo {x}");
    SCRIPT("bash", "timeout", "-s", "KILL", "30", "nice", "-n", "5", "bash",
           "-ec", "echo {x}");
    SCRIPT("env", "nice", "env", "-Ssh -c {x}");
    SCRIPT("flock", "timeout", "5", "flock", "l", "-c", "echo {x}");
    SCRIPT("fish", "nohup", "fish", "-c", "echo {x}");
    NO_SCRIPT("timeout", "30", "convert", "{x}", "out.png");
    NO_SCRIPT("timeout", "5", "nice", "python3", "-c", "{x}");
    NO_SCRIPT("nice", "timeout", "--bogus", "5", "sh", "-c", "{x}");
}

static void
test_shell_not_shells(void **state)
{
    size_t runner = 99;

    (void)state;
    NO_SCRIPT("convert", "{x}", "out.png");
    NO_SCRIPT("printf", "%s\\n", "{x}");
    NO_SCRIPT("python3", "-c", "print('{x}')");
    NO_SCRIPT("perl", "-e", "print '{x}'");
    NO_SCRIPT("ssh", "host", "echo {x}");
    NO_SCRIPT("shx", "-c", "{x}");
    NO_SCRIPT("/bin/sh/x", "-c", "{x}");
    NO_SCRIPT("");
    assert_int_equal(mapq_shell_script_index(NULL, 0, &runner), -1);
    assert_int_equal(runner, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_posix_shells),
        cmocka_unit_test(test_shell_posix_options),
        cmocka_unit_test(test_shell_csh_fish),
        cmocka_unit_test(test_shell_busybox),
        cmocka_unit_test(test_shell_env),
        cmocka_unit_test(test_shell_timeout_nice_nohup),
        cmocka_unit_test(test_shell_process_wrappers),
        cmocka_unit_test(test_shell_sudo_doas),
        cmocka_unit_test(test_shell_xargs),
        cmocka_unit_test(test_shell_nested),
        cmocka_unit_test(test_shell_not_shells),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
