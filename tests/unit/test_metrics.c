/*
 * test_metrics.c - the metrics registry's text exposition, the series cap,
 * HOST:PORT addresses, and the HTTP server answering a real socket.
 */
#include "mapq_test.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mapq_http.h"
#include "mapq_metrics.h"

static void
render_is(const struct mapq_metrics *m, const char *want)
{
    struct mapq_buf out = MAPQ_BUF_INIT;

    mapq_metrics_render(m, &out);
    assert_non_null(out.data);
    assert_string_equal(out.data, want);
    mapq_buf_release(&out);
}

static void
test_counter_gauge(void **state)
{
    static const char *const labels[] = {"outcome", "node", NULL};
    const char *ok[] = {"succeeded", "sq"}, *bad[] = {"failed", "sq"};
    struct mapq_metrics *m = mapq_metrics_new();
    struct mapq_metric *c, *g;

    (void)state;
    c = mapq_metrics_declare(m, "mapq_x_total", "Things.", MAPQ_METRIC_COUNTER,
                             labels, NULL, 0);
    g = mapq_metrics_declare(m, "mapq_up", "Up.", MAPQ_METRIC_GAUGE, NULL, NULL,
                             0);
    mapq_metrics_add(c, ok, 1);
    mapq_metrics_add(c, ok, 2);
    mapq_metrics_add(c, bad, 1);
    mapq_metrics_set(g, NULL, 0.5);
    render_is(m, "# HELP mapq_x_total Things.\n"
                 "# TYPE mapq_x_total counter\n"
                 "mapq_x_total{outcome=\"succeeded\",node=\"sq\"} 3\n"
                 "mapq_x_total{outcome=\"failed\",node=\"sq\"} 1\n"
                 "# HELP mapq_up Up.\n"
                 "# TYPE mapq_up gauge\n"
                 "mapq_up 0.5\n");
    mapq_metrics_clear(c);
    mapq_metrics_set(g, NULL, 1e15);
    render_is(m, "# HELP mapq_x_total Things.\n"
                 "# TYPE mapq_x_total counter\n"
                 "# HELP mapq_up Up.\n"
                 "# TYPE mapq_up gauge\n"
                 "mapq_up 1000000000000000\n");
    mapq_metrics_free(m);
}

static void
test_histogram(void **state)
{
    static const char *const labels[] = {"node", NULL};
    static const double buckets[] = {0.1, 1};
    const char *sq[] = {"sq"};
    struct mapq_metrics *m = mapq_metrics_new();
    struct mapq_metric *h;

    (void)state;
    h = mapq_metrics_declare(m, "mapq_d_seconds", "Durations.",
                             MAPQ_METRIC_HISTOGRAM, labels, buckets, 2);
    mapq_metrics_observe(h, sq, 0.05);
    mapq_metrics_observe(h, sq, 0.1); /* le is inclusive */
    mapq_metrics_observe(h, sq, 0.5);
    mapq_metrics_observe(h, sq, 7);
    render_is(m, "# HELP mapq_d_seconds Durations.\n"
                 "# TYPE mapq_d_seconds histogram\n"
                 "mapq_d_seconds_bucket{node=\"sq\",le=\"0.1\"} 2\n"
                 "mapq_d_seconds_bucket{node=\"sq\",le=\"1\"} 3\n"
                 "mapq_d_seconds_bucket{node=\"sq\",le=\"+Inf\"} 4\n"
                 "mapq_d_seconds_sum{node=\"sq\"} 7.65\n"
                 "mapq_d_seconds_count{node=\"sq\"} 4\n");
    mapq_metrics_free(m);
}

/* Label values and help text that would break the format are escaped. */
static void
test_escaping(void **state)
{
    static const char *const labels[] = {"node", NULL};
    const char *odd[] = {"a\"b\\c\nd"};
    struct mapq_metrics *m = mapq_metrics_new();
    struct mapq_metric *c;

    (void)state;
    c = mapq_metrics_declare(m, "mapq_c_total", "Line\\one\ntwo \"q\"",
                             MAPQ_METRIC_COUNTER, labels, NULL, 0);
    mapq_metrics_add(c, odd, 1);
    render_is(m, "# HELP mapq_c_total Line\\\\one\\ntwo \"q\"\n"
                 "# TYPE mapq_c_total counter\n"
                 "mapq_c_total{node=\"a\\\"b\\\\c\\nd\"} 1\n");
    mapq_metrics_free(m);
}

/* Past the cap, new label values share one "_other" series. */
static void
test_series_cap(void **state)
{
    static const char *const labels[] = {"node", NULL};
    struct mapq_metrics *m = mapq_metrics_new();
    struct mapq_buf out = MAPQ_BUF_INIT;
    struct mapq_metric *c;
    char name[32];
    const char *v[] = {name};
    int k, lines = 0;
    const char *p;

    (void)state;
    c = mapq_metrics_declare(m, "mapq_c_total", "C.", MAPQ_METRIC_COUNTER,
                             labels, NULL, 0);
    for (k = 0; k < MAPQ_METRICS_SERIES_MAX + 10; k++) {
        snprintf(name, sizeof(name), "n%d", k);
        mapq_metrics_add(c, v, 1);
    }
    mapq_metrics_render(m, &out);
    for (p = out.data; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 2 + MAPQ_METRICS_SERIES_MAX);
    assert_non_null(strstr(out.data, "mapq_c_total{node=\"_other\"} 11\n"));
    assert_non_null(strstr(out.data, "mapq_c_total{node=\"n998\"} 1\n"));
    assert_null(strstr(out.data, "\"n999\""));
    mapq_buf_release(&out);
    mapq_metrics_free(m);
}

static void
test_parse_addr(void **state)
{
    char host[64];
    int port = -1;

    (void)state;
    assert_true(
        mapq_http_parse_addr("127.0.0.1:9100", host, sizeof(host), &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9100);
    assert_true(mapq_http_parse_addr(":0", host, sizeof(host), &port));
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 0);
    assert_true(mapq_http_parse_addr("[::1]:80", host, sizeof(host), &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_true(
        mapq_http_parse_addr("localhost:65535", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("9100", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("host:", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("host:65536", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("host:-1", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("host:80x", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("::1:80", host, sizeof(host), &port));
    assert_false(mapq_http_parse_addr("[::1]80", host, sizeof(host), &port));
}

static int
hello_cb(const char *query, struct mapq_buf *out, const char **ctype, void *arg)
{
    (void)arg;
    mapq_buf_printf(out, "hello %s", query ? query : "-");
    *ctype = "text/plain";
    return 200;
}

struct client {
    int fd;
    char reply[4096];
    size_t len;
    struct event_base *base;
};

static void
client_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *cl = arg;
    ssize_t n;

    (void)what;
    n = read(fd, cl->reply + cl->len, sizeof(cl->reply) - 1 - cl->len);
    if (n <= 0) {
        event_base_loopexit(cl->base, NULL);
        return;
    }
    cl->len += (size_t)n;
    cl->reply[cl->len] = '\0';
}

/* GET path on the server at port, through the loop; returns the reply. */
static void
http_get(struct event_base *base, int port, const char *path, struct client *cl)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    struct timeval limit = {5, 0};
    struct event *ev;
    char req[256];

    memset(cl, 0, sizeof(*cl));
    cl->base = base;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write(cl->fd, req, strlen(req)), (ssize_t)strlen(req));
    ev = event_new(base, cl->fd, EV_READ | EV_PERSIST, client_cb, cl);
    event_add(ev, NULL);
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    event_free(ev);
    close(cl->fd);
}

static void
test_http_server(void **state)
{
    struct event_base *base = event_base_new();
    char err[MAPQ_ERR_LEN];
    struct mapq_http *h, *busy;
    struct client cl;

    (void)state;
    h = mapq_http_new(base, "127.0.0.1:0", err);
    assert_non_null(h);
    assert_true(mapq_http_port(h) > 0);
    mapq_http_route(h, "/hello", hello_cb, NULL);
    http_get(base, mapq_http_port(h), "/hello?x=1", &cl);
    assert_non_null(strstr(cl.reply, "HTTP/1.1 200"));
    assert_non_null(strstr(cl.reply, "Content-Type: text/plain"));
    assert_non_null(strstr(cl.reply, "\r\n\r\nhello x=1"));
    http_get(base, mapq_http_port(h), "/nope", &cl);
    assert_non_null(strstr(cl.reply, "HTTP/1.1 404"));
    /* The port is taken: one clear error. */
    snprintf(cl.reply, sizeof(cl.reply), "127.0.0.1:%d", mapq_http_port(h));
    busy = mapq_http_new(base, cl.reply, err);
    assert_null(busy);
    assert_non_null(strstr(err, "cannot listen on '127.0.0.1:"));
    assert_null(mapq_http_new(base, "nowhere", err));
    assert_non_null(strstr(err, "is not HOST:PORT"));
    mapq_http_free(h);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_http_server),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
