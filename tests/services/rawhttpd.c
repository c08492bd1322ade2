#define _GNU_SOURCE
/* Scripted raw-socket HTTP/1.1 test server (see rawhttpd.h). Test-only. */
#include "rawhttpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOG 4096
#define MAX_CONNS 4096

typedef struct conn {
  rawhttpd *s;
  int fd;
  long id;
  pthread_t th;
} conn;

struct rawhttpd {
  int lfd, port;
  pthread_t accept_th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;
  long nconns;
  conn *conns[MAX_CONNS];
  rawhttpd_entry log[MAX_LOG];
  size_t nlog;
};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* A complete answer; no body bytes for HEAD (Content-Length still says what a GET would get). */
static void answer(int fd, const char *method, int status, const char *reason, const char *body) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                   status, reason, strlen(body), strcmp(method, "HEAD") ? body : "");
  write_all(fd, buf, (size_t)n);
}

/* Sleeps `ms` unless the server stops first; returns 1 when stopping. */
static int nap(rawhttpd *s, long ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
  }
  int stop = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return stop;
}

/* Requests already logged for `path` (any method); called with the mutex held. */
static long count_path_locked(rawhttpd *s, const char *path) {
  long n = 0;
  for (size_t i = 0; i < s->nlog; i++)
    if (!strcmp(s->log[i].path, path)) n++;
  return n;
}

/* Serves one connection: returns when the client or the script closes it. */
static void *conn_main(void *arg) {
  conn *c = arg;
  rawhttpd *s = c->s;
  char buf[65536];
  size_t have = 0;
  long nth = 0;
  for (;;) {
    /* head */
    char *end;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
      if (have == sizeof buf) goto out;
      ssize_t n = read(c->fd, buf + have, sizeof buf - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) goto out;
      have += (size_t)n;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char method[16] = "", target[256] = "";
    if (sscanf(buf, "%15s %255s", method, target) != 2) goto out;
    size_t body_len = 0;
    for (char *p = buf; p < end; p++) {
      if ((p == buf || p[-1] == '\n') && !strncasecmp(p, "Content-Length:", 15)) body_len = strtoul(p + 15, NULL, 10);
    }
    if (head_len + body_len > sizeof buf) goto out;
    while (have < head_len + body_len) {
      ssize_t n = read(c->fd, buf + have, sizeof buf - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) goto out; /* the body never came completely: not a request */
      have += (size_t)n;
    }
    /* complete: log it */
    nth++;
    target[strcspn(target, "?#")] = '\0';
    pthread_mutex_lock(&s->mu);
    long before = count_path_locked(s, target);
    if (s->nlog < MAX_LOG) {
      rawhttpd_entry *e = &s->log[s->nlog++];
      snprintf(e->method, sizeof e->method, "%s", method);
      snprintf(e->path, sizeof e->path, "%s", target);
      e->conn = c->id;
      e->nth = nth;
      e->at = mono_now();
    }
    pthread_mutex_unlock(&s->mu);
    memmove(buf, buf + head_len + body_len, have - head_len - body_len);
    have -= head_len + body_len;

    /* behave */
    if (!strncmp(target, "/drop-reused", 12)) {
      if (nth > 1) goto out;
      answer(c->fd, method, 200, "OK", "ok");
      continue;
    }
    if (!strncmp(target, "/fail/", 6)) {
      char *kind = NULL;
      long n_fail = strtol(target + 6, &kind, 10);
      if (before < n_fail && kind && *kind == '/') {
        kind++;
        if (!strncmp(kind, "drop", 4)) goto out;
        if (!strncmp(kind, "half", 4)) {
          static const char half[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
                                     "01234567890123456789012345678901234567890123456789";
          write_all(c->fd, half, sizeof half - 1);
          goto out;
        }
        if (!strncmp(kind, "503", 3)) {
          answer(c->fd, method, 503, "Service Unavailable", "busy");
          continue;
        }
        if (!strncmp(kind, "429", 3)) {
          answer(c->fd, method, 429, "Too Many Requests", "slow down");
          continue;
        }
        if (!strncmp(kind, "drip", 4)) {
          static const char drip[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          for (size_t i = 0; i < sizeof drip - 1; i++)
            if (write_all(c->fd, drip + i, 1) < 0 || nap(s, 200)) goto out;
          continue;
        }
      }
    }
    answer(c->fd, method, 200, "OK", "ok");
  }
out:
  shutdown(c->fd, SHUT_WR);
  return NULL;
}

static void *accept_main(void *arg) {
  rawhttpd *s = arg;
  for (;;) {
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return NULL; /* listener shut down */
    }
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->nconns >= MAX_CONNS) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      continue;
    }
    conn *c = calloc(1, sizeof *c);
    c->s = s;
    c->fd = fd;
    c->id = s->nconns + 1;
    s->conns[s->nconns++] = c;
    pthread_create(&c->th, NULL, conn_main, c);
    pthread_mutex_unlock(&s->mu);
  }
}

rawhttpd *rawhttpd_start(void) {
  rawhttpd *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t sl = sizeof sa;
  if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(s->lfd, 128) ||
      getsockname(s->lfd, (struct sockaddr *)&sa, &sl)) {
    perror("rawhttpd: listener");
    exit(1);
  }
  s->port = ntohs(sa.sin_port);
  pthread_create(&s->accept_th, NULL, accept_main, s);
  return s;
}

int rawhttpd_port(const rawhttpd *s) { return s->port; }

long rawhttpd_count(rawhttpd *s, const char *method, const char *path) {
  long n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nlog; i++)
    if ((!method || !strcmp(s->log[i].method, method)) && (!path || !strcmp(s->log[i].path, path))) n++;
  pthread_mutex_unlock(&s->mu);
  return n;
}

long rawhttpd_connections(rawhttpd *s) {
  pthread_mutex_lock(&s->mu);
  long n = s->nconns;
  pthread_mutex_unlock(&s->mu);
  return n;
}

int rawhttpd_last(rawhttpd *s, const char *method, const char *path, rawhttpd_entry *out) {
  int found = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = s->nlog; i-- > 0;)
    if ((!method || !strcmp(s->log[i].method, method)) && (!path || !strcmp(s->log[i].path, path))) {
      *out = s->log[i];
      found = 1;
      break;
    }
  pthread_mutex_unlock(&s->mu);
  return found;
}

size_t rawhttpd_arrivals(rawhttpd *s, const char *path, double *out, size_t max) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nlog; i++)
    if (!strcmp(s->log[i].path, path)) {
      if (n < max) out[n] = s->log[i].at;
      n++;
    }
  pthread_mutex_unlock(&s->mu);
  return n;
}

void rawhttpd_stop(rawhttpd *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  shutdown(s->lfd, SHUT_RDWR); /* wakes accept() */
  pthread_join(s->accept_th, NULL);
  close(s->lfd);
  /* no new connection can come now: wake every reader, then join */
  for (long i = 0; i < s->nconns; i++) shutdown(s->conns[i]->fd, SHUT_RDWR);
  for (long i = 0; i < s->nconns; i++) {
    pthread_join(s->conns[i]->th, NULL);
    close(s->conns[i]->fd);
    free(s->conns[i]);
  }
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
