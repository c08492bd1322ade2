/* Test HTTP server (see testhttpd.h). Test-only: links libmicrohttpd. */
#include "testhttpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_ARRIVALS 4096

struct testhttpd {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;
  testhttpd_stats st;
  double arrivals[MAX_ARRIVALS];
  size_t narrivals;
  int rst_fd;               /* raw listener that resets every connection after reading a request head */
  int rst_port;
  pthread_t rst_thread;
};

typedef struct reqctx {
  char *body;
  size_t len, cap;
} reqctx;

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, size_t len,
                             const char *location) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
  if (location) MHD_add_response_header(r, "Location", location);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static void wait_ms(testhttpd *s, long ms) {
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
  pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
  testhttpd *s = cls;
  reqctx *rc = *con_cls;
  if (!rc) {
    rc = calloc(1, sizeof *rc);
    *con_cls = rc;
    pthread_mutex_lock(&s->mu);
    if (s->narrivals < MAX_ARRIVALS) s->arrivals[s->narrivals++] = mono_now();
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (rc->len + *upload_data_size + 1 > rc->cap) {
      rc->cap = (rc->len + *upload_data_size + 1) * 2;
      rc->body = realloc(rc->body, rc->cap);
    }
    memcpy(rc->body + rc->len, upload_data, *upload_data_size);
    rc->len += *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }

  pthread_mutex_lock(&s->mu);
  s->st.requests++;
  s->st.running++;
  if (s->st.running > s->st.max_running) s->st.max_running = s->st.running;
  const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
  if (from && !strcmp(from, "redirect")) s->st.by_path_target++;
  pthread_mutex_unlock(&s->mu);

  enum MHD_Result ret;
  if (!strcmp(url, "/echo")) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *qa = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "a");
    char head[1024];
    int n = snprintf(head, sizeof head, "method=%s\nx-test=%s\ncontent-type=%s\nquery-a=%s\nbody-len=%zu\nbody=",
                     method, h ? h : "", ct ? ct : "", qa ? qa : "", rc->len);
    size_t total = (size_t)n + rc->len;
    char *out = malloc(total + 1);
    memcpy(out, head, (size_t)n);
    if (rc->len) memcpy(out + n, rc->body, rc->len);
    ret = reply(c, 200, out, total, NULL);
    free(out);
  } else if (!strncmp(url, "/status/", 8)) {
    unsigned st = (unsigned)atoi(url + 8);
    char body[64];
    int n = snprintf(body, sizeof body, "status %u", st);
    ret = reply(c, st, body, (size_t)n, NULL);
  } else if (!strncmp(url, "/delay/", 7)) {
    wait_ms(s, atol(url + 7));
    ret = reply(c, 200, "slept", 5, NULL);
  } else if (!strcmp(url, "/close")) {
    ret = MHD_NO;
  } else if (!strcmp(url, "/redirect")) {
    ret = reply(c, 302, "moved", 5, "/echo?from=redirect");
  } else if (!strncmp(url, "/big/", 5)) {
    size_t n = (size_t)atol(url + 5);
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) out[i] = (char)('a' + i % 26);
    ret = reply(c, 200, out, n, NULL);
    free(out);
  } else {
    ret = reply(c, 200, "hello", 5, NULL);
  }

  pthread_mutex_lock(&s->mu);
  s->st.running--;
  pthread_mutex_unlock(&s->mu);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
  reqctx *rc = *con_cls;
  if (rc) {
    free(rc->body);
    free(rc);
  }
  *con_cls = NULL;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code) {
  testhttpd *s = cls;
  if (code != MHD_CONNECTION_NOTIFY_STARTED) return;
  pthread_mutex_lock(&s->mu);
  s->st.connections++;
  pthread_mutex_unlock(&s->mu);
}

/* Accepts, reads the request head, then closes with SO_LINGER 0: the client sees ECONNRESET. */
static void *rst_main(void *arg) {
  testhttpd *s = arg;
  for (;;) {
    int c = accept(s->rst_fd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      return NULL; /* listener shut down */
    }
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(c, buf + got, sizeof buf - 1 - got)) > 0) {
      got += (size_t)n;
      buf[got] = '\0';
      if (strstr(buf, "\r\n\r\n")) break;
    }
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
  }
}

testhttpd *testhttpd_start(void) {
  testhttpd *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                          0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_NOTIFY_CONNECTION, notify_conn,
                          s, MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                          MHD_OPTION_END);
  if (!s->d) {
    fprintf(stderr, "testhttpd: cannot start libmicrohttpd\n");
    exit(1);
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : 0;
  if (!s->port) {
    fprintf(stderr, "testhttpd: no port\n");
    exit(1);
  }
  s->rst_fd = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t sl = sizeof sa;
  if (bind(s->rst_fd, (struct sockaddr *)&sa, sizeof sa) || listen(s->rst_fd, 64) ||
      getsockname(s->rst_fd, (struct sockaddr *)&sa, &sl)) {
    perror("testhttpd: reset listener");
    exit(1);
  }
  s->rst_port = ntohs(sa.sin_port);
  pthread_create(&s->rst_thread, NULL, rst_main, s);
  return s;
}

int testhttpd_port(const testhttpd *s) { return s->port; }
int testhttpd_reset_port(const testhttpd *s) { return s->rst_port; }

void testhttpd_stats_get(testhttpd *s, testhttpd_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  pthread_mutex_unlock(&s->mu);
}

void testhttpd_reset(testhttpd *s) {
  pthread_mutex_lock(&s->mu);
  long running = s->st.running;
  memset(&s->st, 0, sizeof s->st);
  s->st.running = running;
  s->narrivals = 0;
  pthread_mutex_unlock(&s->mu);
}

size_t testhttpd_arrivals(testhttpd *s, double *out, size_t max) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->narrivals;
  memcpy(out, s->arrivals, (n < max ? n : max) * sizeof(double));
  pthread_mutex_unlock(&s->mu);
  return n;
}

void testhttpd_stop(testhttpd *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  MHD_stop_daemon(s->d);
  shutdown(s->rst_fd, SHUT_RDWR);
  pthread_join(s->rst_thread, NULL);
  close(s->rst_fd);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
