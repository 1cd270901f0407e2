/*
 * mapq_health.h - the agent's health file, for container health checks and
 * process supervisors.
 *
 * The agent touches the file after every heartbeat Redis answered (about
 * once a second), so its modification time says when the agent last
 * reached Redis; the file is removed when the agent exits. `mapq-agent
 * --check-health` compares that time with the clock. The final component
 * of the path is never followed as a symbolic link, so a link planted in a
 * shared directory such as /tmp redirects nothing. It also tells a service
 * manager (systemd) that the agent is ready, alive and stopping. Nothing
 * here logs; each call is one or two system calls, cheap enough for the
 * agent's loop.
 */
#ifndef MAPQ_HEALTH_H
#define MAPQ_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "mapq_err.h"

/*
 * Sets path's modification time to now, creating the file (empty, mode
 * 0644 less the umask) if it does not exist. Returns MAPQ_OK, or MAPQ_EIO
 * with the reason in err (MAPQ_ERR_LEN bytes; may be NULL). path borrowed.
 */
enum mapq_err mapq_health_touch(const char *path, char *err);

/*
 * Whether path was touched within max_age_ms of now_ms (milliseconds since
 * the epoch, the clock of file times). Returns MAPQ_OK with "heartbeat N s
 * ago" in msg; MAPQ_ENOENT when there is no file (the agent has not
 * reached Redis yet, or has exited); MAPQ_ETIMEDOUT when the file is older
 * than max_age_ms ("no heartbeat for N s"); MAPQ_EIO when it cannot be
 * read. msg (len bytes) always gets one line without a newline. A file
 * time ahead of now_ms (a clock step) counts as fresh. path borrowed.
 */
enum mapq_err mapq_health_check(const char *path, int64_t max_age_ms,
                                int64_t now_ms, char *msg, size_t len);

/* Removes path if it exists; errors are ignored. path borrowed, NULL-safe. */
void mapq_health_remove(const char *path);

/*
 * The service manager's view (systemd, Type=notify): tells it state, such
 * as "READY=1", "WATCHDOG=1" or "STOPPING=1" (borrowed). A no-op when the
 * process was not started with NOTIFY_SOCKET; errors are ignored, as the
 * manager then acts on its own timeouts.
 */
void mapq_health_notify(const char *state);

/* The interval at which the manager wants WATCHDOG=1, in ms, or 0 when it
 * set no watchdog (WatchdogSec) for this process. */
int64_t mapq_health_watchdog_ms(void);

#endif
