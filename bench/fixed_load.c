/* A fixed number of keep-alive HTTP/1.1 requests over 127.0.0.1, for bench/per_request.py: what
 * wrk does, but stopping after exactly N responses, so that counts taken over a run (the
 * daemon's instructions, system calls, CPU) divide by the same N every time.
 *
 *   fixed_load PORT PATH N CONNECTIONS THREADS [HEADER ...]
 *
 * Each thread holds CONNECTIONS / THREADS connections, each sending one request and reading its
 * whole response (head, then Content-Length bytes of body unless the status is 304 or 1xx/204)
 * before the next, until the thread's share of N responses has come. Prints the responses, those
 * not 2xx or 304, and the seconds taken. Exits non-zero on any error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static char request[8192];
static size_t request_len;

struct conn {
    int fd;
    char buf[1 << 16];
    size_t have;
    long body_left; /* -1 while reading the head */
};

struct job {
    int conns;
    long want;
    long done;
    long bad;
};

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_request(struct conn *c) {
    size_t sent = 0;
    while (sent < request_len) {
        ssize_t n = send(c->fd, request + sent, request_len - sent, MSG_NOSIGNAL);
        if (n < 0) die("send");
        sent += (size_t)n;
    }
    c->have = 0;
    c->body_left = -1;
}

/* Consumes what the buffer holds of the response; returns 1 when it is complete. */
static int progress(struct conn *c, struct job *j) {
    if (c->body_left < 0) {
        char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (!end) {
            if (c->have == sizeof c->buf) {
                fprintf(stderr, "head too long\n");
                exit(2);
            }
            return 0;
        }
        size_t head = (size_t)(end - c->buf) + 4;
        int status = atoi(c->buf + 9);
        long len = 0;
        for (char *p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                len = atol(p + 15);
            }
        }
        if (status == 304 || status == 204 || status < 200) len = 0;
        if (!((status >= 200 && status < 300) || status == 304)) j->bad++;
        c->body_left = len;
        memmove(c->buf, c->buf + head, c->have - head);
        c->have -= head;
    }
    long take = (long)c->have < c->body_left ? (long)c->have : c->body_left;
    c->body_left -= take;
    c->have -= (size_t)take;
    if (c->have > 0 && c->body_left == 0) {
        fprintf(stderr, "bytes after a response\n");
        exit(2);
    }
    return c->body_left == 0;
}

static void *run(void *arg) {
    struct job *j = arg;
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct conn *cs = calloc((size_t)j->conns, sizeof *cs);
    long started = 0;
    for (int i = 0; i < j->conns && started < j->want; i++, started++) {
        cs[i].fd = dial();
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) die("epoll_ctl");
        send_request(&cs[i]);
    }
    struct epoll_event evs[256];
    while (j->done < j->want) {
        int n = epoll_wait(ep, evs, 256, 60000);
        if (n <= 0) die("epoll_wait (nothing for 60 s)");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t got = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
            if (got <= 0) die("recv (closed)");
            c->have += (size_t)got;
            if (progress(c, j)) {
                j->done++;
                if (started < j->want) {
                    started++;
                    send_request(c);
                }
            }
        }
    }
    for (int i = 0; i < j->conns; i++)
        if (cs[i].fd > 0) close(cs[i].fd);
    free(cs);
    close(ep);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT PATH N CONNECTIONS THREADS [HEADER ...]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    long n = atol(argv[3]);
    int conns = atoi(argv[4]), threads = atoi(argv[5]);
    if (n <= 0 || threads <= 0 || conns < threads) return 2;
    int w = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", argv[2], port);
    for (int i = 6; i < argc; i++) w += snprintf(request + w, sizeof request - (size_t)w, "%s\r\n", argv[i]);
    w += snprintf(request + w, sizeof request - (size_t)w, "\r\n");
    if (w >= (int)sizeof request) return 2;
    request_len = (size_t)w;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *ts = calloc((size_t)threads, sizeof *ts);
    struct job *js = calloc((size_t)threads, sizeof *js);
    for (int i = 0; i < threads; i++) {
        js[i].conns = conns / threads;
        js[i].want = n / threads + (i < n % threads);
        pthread_create(&ts[i], NULL, run, &js[i]);
    }
    long done = 0, bad = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ts[i], NULL);
        done += js[i].done;
        bad += js[i].bad;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%ld responses, %ld not 2xx or 304, %.3f s\n", done, bad,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return bad ? 1 : 0;
}
