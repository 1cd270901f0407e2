/*
 * mapq_yaml_guard.c - depth and size limits checked on libyaml's event
 * stream, so a costly document is refused before it is built.
 */
#include "mapq_yaml_guard.h"

#include <stdbool.h>
#include <stdio.h>
#include <yaml.h>

/* Applies one event to the counts; false with msg set past a limit. */
static bool
count_event(const yaml_event_t *ev, int *depth, size_t *nodes, char *msg,
            size_t mlen)
{
    switch (ev->type) {
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (++*depth > MAPQ_YAML_MAX_DEPTH) {
            snprintf(msg, mlen, "YAML nested more than %d levels deep",
                     MAPQ_YAML_MAX_DEPTH);
            return false;
        }
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        --*depth;
        return true;
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
        break;
    default:
        return true;
    }
    if (++*nodes > MAPQ_YAML_MAX_NODES) {
        snprintf(msg, mlen, "YAML document has more than %d values",
                 MAPQ_YAML_MAX_NODES);
        return false;
    }
    return true;
}

enum mapq_err
mapq_yaml_guard_check(const char *text, size_t len, char *msg, size_t mlen,
                      int *line, int *col)
{
    enum mapq_err rc = MAPQ_OK;
    yaml_parser_t parser;
    yaml_event_t ev;
    size_t nodes = 0;
    int depth = 0;
    bool done = false;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        /* Invalid YAML is the loader's to report. */
        if (yaml_parser_parse(&parser, &ev) == 0)
            break;
        done = ev.type == YAML_STREAM_END_EVENT;
        if (!count_event(&ev, &depth, &nodes, msg, mlen)) {
            *line = (int)ev.start_mark.line + 1;
            *col = (int)ev.start_mark.column + 1;
            rc = MAPQ_ETOOBIG;
            done = true;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}
