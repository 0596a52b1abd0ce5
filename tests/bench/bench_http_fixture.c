/* bench_http_fixture.c: many loopback HTTP endpoints in one thread (epoll),
 * one listening port each, for the polling benchmarks: each answers a
 * recorded body at once, after a random 1-5 s, or never. Writes its ports
 * to a file, serves until SIGTERM, then prints what it served.
 * Usage: bench_http_fixture -n N -b BODY_FILE -o PORTS_FILE
 *          [-m fast|slow|hang|mixed] [-d MIN_MS] [-D MAX_MS] [-t CONTENT_TYPE]
 *   mixed: even endpoints slow, odd ones never answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { M_FAST, M_SLOW, M_HANG };

typedef struct conn {
    int used;
    int mode;
    char buf[8192];
    size_t len;
    int64_t due_ms;              /* > 0: an answer is owed at this time */
} conn;

static volatile sig_atomic_t stop;
static char *body;
static size_t body_len;
static char head[256];
static size_t head_len;
static int min_ms = 1000, max_ms = 5000;
static conn *conns;              /* by fd */
static int *listen_mode;         /* by listening fd, -1 = not a listener */
static int maxfd = 65536;
static int hifd;                /* highest fd in use: bounds the scans */
static unsigned long served, hung, accepted;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer(int fd)
{
    /* Small: one write each for head and body is enough on loopback. */
    if (write(fd, head, head_len) < 0 || write(fd, body, body_len) < 0)
        return;
    served++;
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    conns[fd].used = 0;
}

/* Complete requests in c's buffer: answered now, later, or never. */
static void requests(int fd, conn *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end || c->due_ms)
            return;
        size_t hl = (size_t)(end - c->buf) + 4, bl = 0;
        char *cl = memmem(c->buf, hl, "Content-Length:", 15);
        if (cl)
            bl = strtoul(cl + 15, NULL, 10);
        if (c->len < hl + bl)
            return;
        memmove(c->buf, c->buf + hl + bl, c->len - hl - bl);
        c->len -= hl + bl;
        if (c->mode == M_FAST) {
            answer(fd);
        } else if (c->mode == M_SLOW) {
            c->due_ms = now_ms() + min_ms + (max_ms > min_ms ? rand() % (max_ms - min_ms + 1) : 0);
        } else {
            hung++;
            c->len = 0;
            return;
        }
    }
}

int main(int argc, char **argv)
{
    int n = 100, opt;
    const char *body_file = NULL, *ports_file = NULL, *mode = "fast", *ctype = "text/json;charset=utf-8";
    while ((opt = getopt(argc, argv, "n:b:o:m:d:D:t:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'b': body_file = optarg; break;
        case 'o': ports_file = optarg; break;
        case 'm': mode = optarg; break;
        case 'd': min_ms = atoi(optarg); break;
        case 'D': max_ms = atoi(optarg); break;
        case 't': ctype = optarg; break;
        default:
            fprintf(stderr, "usage: %s -n N -b BODY -o PORTS [-m fast|slow|hang|mixed] [-d MIN_MS] [-D MAX_MS]\n", argv[0]);
            return 2;
        }
    }
    if (!body_file || !ports_file || n < 1) {
        fprintf(stderr, "need -b BODY_FILE and -o PORTS_FILE\n");
        return 2;
    }
    FILE *bf = fopen(body_file, "rb");
    if (!bf) {
        perror(body_file);
        return 1;
    }
    fseek(bf, 0, SEEK_END);
    body_len = (size_t)ftell(bf);
    fseek(bf, 0, SEEK_SET);
    body = malloc(body_len + 1);
    if (fread(body, 1, body_len, bf) != body_len) {
        perror("read body");
        return 1;
    }
    fclose(bf);
    head_len = (size_t)snprintf(head, sizeof head,
                                "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                                ctype, body_len);
    conns = calloc((size_t)maxfd, sizeof *conns);
    listen_mode = malloc((size_t)maxfd * sizeof *listen_mode);
    for (int i = 0; i < maxfd; i++)
        listen_mode[i] = -1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int ep = epoll_create1(0);
    FILE *pf = fopen(ports_file, "w");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        socklen_t al = sizeof a;
        if (fd < 0 || fd >= maxfd || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            listen(fd, 256) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
            perror("listen");
            return 1;
        }
        int m = strcmp(mode, "slow") == 0 ? M_SLOW : strcmp(mode, "hang") == 0 ? M_HANG
              : strcmp(mode, "mixed") == 0 ? (i % 2 ? M_HANG : M_SLOW) : M_FAST;
        listen_mode[fd] = m;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fprintf(pf, "%d %s\n", ntohs(a.sin_port), m == M_FAST ? "fast" : m == M_SLOW ? "slow" : "hang");
    }
    fclose(pf);

    struct epoll_event evs[256];
    while (!stop) {
        /* The soonest owed answer bounds the wait (a scan: few hundred at most). */
        int64_t now = now_ms(), soonest = now + 1000;
        for (int fd = 0; fd <= hifd; fd++)
            if (conns[fd].used && conns[fd].due_ms && conns[fd].due_ms < soonest)
                soonest = conns[fd].due_ms;
        int k = epoll_wait(ep, evs, 256, (int)(soonest > now ? soonest - now : 0));
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (listen_mode[fd] >= 0) {
                for (;;) {
                    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0)
                        break;
                    if (c >= maxfd) {
                        close(c);
                        continue;
                    }
                    accepted++;
                    if (c > hifd)
                        hifd = c;
                    conns[c] = (conn){ .used = 1, .mode = listen_mode[fd] };
                    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            conn *c = &conns[fd];
            ssize_t r = read(fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                drop(ep, fd);
                continue;
            }
            c->len += (size_t)r;
            if (c->len == sizeof c->buf)
                c->len = 0;   /* garbage: forget it */
            requests(fd, c);
        }
        now = now_ms();
        for (int fd = 0; fd <= hifd; fd++) {
            conn *c = &conns[fd];
            if (c->used && c->due_ms && c->due_ms <= now) {
                c->due_ms = 0;
                answer(fd);
                requests(fd, c);
            }
        }
    }
    printf("bench_http_fixture: %d endpoints, %lu connections, %lu answers, %lu requests never answered\n",
           n, accepted, served, hung);
    return 0;
}
