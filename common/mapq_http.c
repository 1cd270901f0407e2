/*
 * mapq_http.c - the evhttp server behind --metrics and --http.
 *
 * Owns the evhttp instance and its routes. Requests are small GETs from
 * scrapers and browsers: headers are capped, bodies refused, idle
 * connections closed after HTTP_TIMEOUT_S.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mapq_alloc.h"
#include "mapq_http.h"

#define HTTP_TIMEOUT_S   10
#define HTTP_HEADERS_MAX 8192
#define HTTP_ROUTES_MAX  16
#define HTTP_HOST_MAX    256

struct route {
    char *path;
    mapq_http_fn *fn;
    void *arg;
};

struct mapq_http {
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct route routes[HTTP_ROUTES_MAX];
    int nroutes;
    int port;
};

bool
mapq_http_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon, *h = addr, *p;
    size_t n;
    char *end;
    long v;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');

        if (close == NULL || close[1] != ':')
            return false;
        h = addr + 1;
        n = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)))
            return false;
        n = (size_t)(colon - addr);
    }
    p = colon + 1;
    if (n >= hostlen || *p < '0' || *p > '9')
        return false;
    errno = 0;
    v = strtol(p, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (n == 0)
        snprintf(host, hostlen, "0.0.0.0");
    *port = (int)v;
    return true;
}

static void
reply(struct evhttp_request *req, int code, const char *ctype,
      const struct mapq_buf *body)
{
    struct evbuffer *b = evbuffer_new();

    if (body->len > 0)
        evbuffer_add(b, body->data, body->len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
                      "no-store");
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
    struct mapq_http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *ctype = "text/plain; charset=utf-8";
    struct mapq_buf body = MAPQ_BUF_INIT;
    int code = 404, k;

    if (path == NULL || *path == '\0')
        path = "/";
    for (k = 0; k < h->nroutes; k++)
        if (strcmp(h->routes[k].path, path) == 0)
            break;
    if (k < h->nroutes)
        code = h->routes[k].fn(evhttp_uri_get_query(uri), &body, &ctype,
                               h->routes[k].arg);
    else
        mapq_buf_printf(&body, "not found: %s\n", path);
    reply(req, code, ctype, &body);
    mapq_buf_release(&body);
}

struct mapq_http *
mapq_http_new(struct event_base *base, const char *addr, char *err)
{
    struct mapq_http *h;
    char host[HTTP_HOST_MAX];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int port;

    if (!mapq_http_parse_addr(addr, host, sizeof(host), &port)) {
        mapq_err_set(err, MAPQ_EINVAL,
                     "address '%s' is not HOST:PORT (e.g. 127.0.0.1:9100, "
                     ":9100, [::1]:9100)",
                     addr);
        return NULL;
    }
    h = mapq_xcalloc(1, sizeof(*h));
    h->http = evhttp_new(base);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(h->http, HTTP_HEADERS_MAX);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_gencb(h->http, request_cb, h);
    h->sock = evhttp_bind_socket_with_handle(h->http, host, (uint16_t)port);
    if (h->sock == NULL) {
        mapq_err_set(err, MAPQ_EIO, "cannot listen on '%s': %s", addr,
                     errno ? strerror(errno) : "cannot bind");
        mapq_http_free(h);
        return NULL;
    }
    if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss,
                    &sl) == 0)
        h->port = ss.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return h;
}

void
mapq_http_free(struct mapq_http *h)
{
    int k;

    if (h == NULL)
        return;
    evhttp_free(h->http);
    for (k = 0; k < h->nroutes; k++)
        free(h->routes[k].path);
    free(h);
}

void
mapq_http_route(struct mapq_http *h, const char *path, mapq_http_fn *fn,
                void *arg)
{
    mapq_assert(h->nroutes < HTTP_ROUTES_MAX);
    h->routes[h->nroutes++] = (struct route){mapq_xstrdup(path), fn, arg};
}

int
mapq_http_port(const struct mapq_http *h)
{
    return h->port;
}
