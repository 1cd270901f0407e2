/*
 * cmd_io.c - the parent ends of a command's pipes: stdin fed from the
 * inputs' JSON, stdout kept up to the output cap, stderr trimmed to its
 * tail.
 *
 * Works on the descriptors and buffers in struct mapq_cmd, which
 * mapq_cmd.c owns; never blocks (the parent ends are non-blocking), never
 * registers events and never completes a command: a read tells mapq_cmd.c
 * when its pipe closed.
 */
#include <event2/event.h>

#include "cmd_int.h"

void
cmd_io_close(struct mapq_cmd *cmd, int i)
{
    if (cmd->ev[i] != NULL)
        event_free(cmd->ev[i]);
    cmd->ev[i] = NULL;
    cmd_close_fd(&cmd->fd[i]);
    if (i == PIPE_IN)
        mapq_buf_release(&cmd->in);
}

/* Keeps n bytes read from pipe i. */
static void
keep(struct mapq_cmd *cmd, int i, const char *data, size_t n)
{
    if (i == PIPE_OUT) {
        /* Past the cap keep draining, so the child is not stuck. */
        if (cmd->otype != NULL && !cmd->out_over &&
            mapq_buf_append(&cmd->out, data, n) != MAPQ_OK)
            cmd->out_over = true;
    } else {
        cmd->err_total += n;
        mapq_buf_append(&cmd->err, data, n);
        if (cmd->err.len > 2 * MAPQ_CMD_STDERR_TAIL) {
            memmove(cmd->err.data,
                    cmd->err.data + cmd->err.len - MAPQ_CMD_STDERR_TAIL,
                    MAPQ_CMD_STDERR_TAIL);
            cmd->err.len = MAPQ_CMD_STDERR_TAIL;
        }
    }
}

static int
pipe_index(const struct mapq_cmd *cmd, evutil_socket_t fd)
{
    return fd == cmd->fd[PIPE_OUT] ? PIPE_OUT : PIPE_ERR;
}

bool
cmd_io_read(struct mapq_cmd *cmd, evutil_socket_t fd)
{
    char chunk[READ_CHUNK];
    ssize_t n;
    int i, reads;

    i = pipe_index(cmd, fd);
    /* Bounded, so one chatty child cannot starve the loop. */
    for (reads = 0; reads < 16; reads++) {
        n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            keep(cmd, i, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        cmd_io_close(cmd, i); /* EOF, or an error that ends the stream */
        return true;
    }
    return false;
}

void
cmd_io_write(struct mapq_cmd *cmd, evutil_socket_t fd)
{
    ssize_t n;

    while (cmd->in_off < cmd->in.len) {
        n = write(fd, cmd->in.data + cmd->in_off, cmd->in.len - cmd->in_off);
        if (n > 0) {
            cmd->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EPIPE: the child does not read its input, which is fine */
    }
    cmd_io_close(cmd, PIPE_IN);
}
