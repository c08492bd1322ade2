/* jsonl: items as JSON Lines files, one item per line in the form of ferry_item_to_json():
 *   {"kind":"instance","key":"123_app_proc","body":{...}[,"payload_base64":"..."]}
 *
 * Source: reads a file (asynchronously, on the libuv thread pool) and emits one item per line. A line that
 * is not a valid item stops the stage with "<file>:<line>: <what is wrong>".
 * Sink: appends one line per item. Lines are buffered and written and fsync'd when the core asks for a sync,
 * so an item is marked done in the journal only once its line is durable. Re-runs are safe: when the file
 * exists at start, a torn last line (from a crash mid-write) is cut off and the keys already present are
 * loaded, so an item whose line is already there is not written twice.
 *
 * Use it to export an inventory on one machine and import it on another, or as the simplest complete
 * plugin to read when writing a connector (docs/plugin-guide.md walks through this file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/ferry.h>

/* ---- context ------------------------------------------------------------------------------------------ */
#define READ_CHUNK (256 * 1024)

typedef struct jsonl_ctx {
  /* options (written by the core) */
  char *path;
  int64_t max_line;
  int fsync_on_sync;
  /* source */
  ferry_instance *ins;
  uv_fs_t req;
  uv_file fd;
  int reading, eof, failed, stopped;
  ferry_buf in;          /* pending bytes not yet split into lines */
  char *chunk;           /* read buffer handed to uv_fs_read */
  int64_t offset, line_no;
  size_t demand;
  /* sink */
  int out_fd;
  ferry_strset present;  /* keys already in the file at start (re-run safety) */
  ferry_buf out;         /* lines not yet written */
  int syncing;
  ferry_done_fn sync_done;
  void *sync_arg;
  uv_work_t work;
  int work_status;
  char work_err[256];
} jsonl_ctx;

static const ferry_option jsonl_options[] = {
    {.key = "path", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY, offsetof(jsonl_ctx, path),
     "JSON Lines file to read (source) or append to (sink)"},
    {.key = "max_line", FERRY_OPT_INT, "67108864", FERRY_OPT_RANGE, offsetof(jsonl_ctx, max_line),
     "source: longest line accepted, in bytes", .roles = FERRY_KIND_SOURCE, .min = 16, .max = INT64_MAX},
    {.key = "fsync", FERRY_OPT_BOOL, "true", 0, offsetof(jsonl_ctx, fsync_on_sync),
     "sink: fsync the file before items are marked done in the journal", .roles = FERRY_KIND_SINK},
    FERRY_OPTIONS_END};

static int jsonl_init(ferry_instance *ins, ferry_error *err) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  c->fd = -1;
  c->out_fd = -1;
  return 0;
}

static void jsonl_fini(ferry_instance *ins) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  if (c->fd >= 0) close(c->fd);
  if (c->out_fd >= 0) close(c->out_fd);
  ferry_buf_free(&c->in);
  free(c->chunk);
  ferry_buf_free(&c->out);
  ferry_strset_free(&c->present);
}

/* ---- source ------------------------------------------------------------------------------------------- */
static void src_read_more(jsonl_ctx *c);

static void src_fail(jsonl_ctx *c, int code, const char *fmt, const char *what) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, fmt, c->path, (long long)c->line_no, what);
  c->failed = 1;
  ferry_source_fail(c->ins, &e);
  ferry_error_clear(&e);
}

/* Emits complete lines from the buffer while there is demand. Returns 0, or -1 after a failure. */
static int src_emit_lines(jsonl_ctx *c) {
  size_t start = 0;
  while (c->demand > 0 && !c->stopped && start < c->in.len) {
    char *nl = memchr(c->in.buf + start, '\n', c->in.len - start);
    if (!nl) break;
    size_t len = (size_t)(nl - (c->in.buf + start));
    c->line_no++;
    if (len == 0 || (len == 1 && c->in.buf[start] == '\r')) { /* blank line */
      start += len + 1;
      continue;
    }
    json_error_t jerr;
    json_t *j = json_loadb(c->in.buf + start, len, JSON_REJECT_DUPLICATES, &jerr);
    start += len + 1;
    if (!j) {
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_set(&e, FERRY_EINVAL, "%s:%lld:%d: invalid JSON: %s", c->path, (long long)c->line_no,
                      jerr.column, jerr.text);
      c->failed = 1;
      ferry_source_fail(c->ins, &e);
      ferry_error_clear(&e);
      return -1;
    }
    ferry_error e = FERRY_ERROR_INIT;
    ferry_item *it = ferry_item_from_json(j, &e);
    json_decref(j);
    if (!it) {
      src_fail(c, FERRY_EINVAL, "%s:%lld: %s", e.message);
      ferry_error_clear(&e);
      return -1;
    }
    c->demand--;
    ferry_emit(c->ins, it);
  }
  ferry_buf_consume(&c->in, start);
  return 0;
}

static void src_pump(jsonl_ctx *c) {
  if (c->failed || c->stopped) return;
  if (src_emit_lines(c) < 0) return;
  if (c->demand == 0 || c->reading) return;
  if (c->eof) {
    if (c->in.len > 0) { /* last line without a newline */
      ferry_buf_addn(&c->in, "\n", 1);
      if (src_emit_lines(c) < 0) return;
      if (c->in.len) return; /* still waiting for demand */
    }
    ferry_source_end(c->ins);
    c->stopped = 1;
    return;
  }
  if ((int64_t)c->in.len > c->max_line) {
    src_fail(c, FERRY_EINVAL, "%s:%lld: %s", "line longer than max_line");
    return;
  }
  src_read_more(c);
}

static void src_on_read(uv_fs_t *req) {
  jsonl_ctx *c = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  c->reading = 0;
  if (c->stopped) return;
  if (n < 0) {
    src_fail(c, FERRY_EIO, "%s:%lld: read failed: %s", uv_strerror((int)n));
    return;
  }
  if (n == 0) {
    c->eof = 1;
  } else {
    ferry_buf_addn(&c->in, c->chunk, (size_t)n);
    c->offset += n;
  }
  src_pump(c);
}

static void src_read_more(jsonl_ctx *c) {
  uv_buf_t b = uv_buf_init(c->chunk, READ_CHUNK);
  c->req.data = c;
  c->reading = 1;
  int r = uv_fs_read(ferry_instance_loop(c->ins), &c->req, c->fd, &b, 1, c->offset, src_on_read);
  if (r < 0) {
    c->reading = 0;
    src_fail(c, FERRY_EIO, "%s:%lld: read failed: %s", uv_strerror(r));
  }
}

static int src_start(ferry_instance *ins, ferry_error *err) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
  if (c->fd < 0)
    return ferry_error_set(err, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO, "jsonl: cannot open %s: %s",
                           c->path, strerror(errno));
  c->chunk = malloc(READ_CHUNK);
  if (!c->chunk) return ferry_error_set(err, FERRY_ENOMEM, "jsonl: out of memory");
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  c->demand += n;
  src_pump(c);
}

static void src_stop(ferry_instance *ins) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  c->stopped = 1; /* a read in flight completes into src_on_read, which sees `stopped` */
}

/* ---- sink --------------------------------------------------------------------------------------------- */
/* Cuts a torn last line and loads the keys already present. Runs at start, before the loop is busy. */
static int sink_scan_existing(jsonl_ctx *c, ferry_error *err) {
  struct stat st;
  if (fstat(c->out_fd, &st) < 0 || st.st_size == 0) return 0;
  FILE *f = fopen(c->path, "r");
  if (!f) return ferry_error_set(err, FERRY_EIO, "jsonl: cannot read %s: %s", c->path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  off_t good = 0;
  long long line_no = 0;
  int rc = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    line_no++;
    if (line[n - 1] != '\n') break; /* torn last line: cut below */
    good += n;
    json_t *j = json_loadb(line, (size_t)n, 0, NULL);
    json_t *k = j ? json_object_get(j, "key") : NULL;
    if (!json_is_string(k)) {
      json_decref(j);
      rc = ferry_error_set(err, FERRY_EINVAL,
                           "jsonl: %s:%lld is not an item line; refusing to append to a file that is not "
                           "a ferry JSON Lines file",
                           c->path, line_no);
      break;
    }
    ferry_strset_add(&c->present, json_string_value(k));
    json_decref(j);
    if (rc) break;
  }
  free(line);
  fclose(f);
  if (!rc && good < st.st_size) {
    ferry_log_warn(c->ins, "%s: cutting a torn last line (%lld bytes) left by an interrupted run", c->path,
                   (long long)(st.st_size - good));
    if (ftruncate(c->out_fd, good) < 0)
      rc = ferry_error_set(err, FERRY_EIO, "jsonl: cannot truncate %s: %s", c->path, strerror(errno));
  }
  return rc;
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  if (ferry_instance_mode(ins) != FERRY_MODE_RUN) { /* plan/verify never write */
    c->out_fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->out_fd >= 0) {
      struct stat st;
      if (fstat(c->out_fd, &st) == 0 && st.st_size > 0) {
        FILE *f = fopen(c->path, "r");
        char *line = NULL;
        size_t cap = 0;
        while (f && getline(&line, &cap, f) > 0) {
          json_t *j = json_loads(line, 0, NULL);
          json_t *k = j ? json_object_get(j, "key") : NULL;
          if (json_is_string(k)) ferry_strset_add(&c->present, json_string_value(k));
          json_decref(j);
        }
        free(line);
        if (f) fclose(f);
      }
    }
    return 0;
  }
  c->out_fd = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (c->out_fd < 0)
    return ferry_error_set(err, FERRY_EIO, "jsonl: cannot open %s for appending: %s", c->path,
                           strerror(errno));
  return sink_scan_existing(c, err);
}

static void sink_write(ferry_instance *ins, ferry_task *task) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  const ferry_item *it = ferry_task_item(task);
  if (ferry_strset_has(&c->present, it->key)) { /* written by an earlier, interrupted run */
    ferry_task_done(task, FERRY_DONE_SKIPPED);
    return;
  }
  json_t *j = ferry_item_to_json(it);
  char *line = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  if (!line) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL, "jsonl: item %s cannot be serialised", it->key);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  ferry_buf_add(&c->out, line);
  ferry_buf_addn(&c->out, "\n", 1);
  free(line);
  ferry_strset_add(&c->present, it->key);
  /* Durable only after sync(): the core marks the item done once sink_sync has completed. */
  ferry_task_done(task, FERRY_DONE_SYNC);
}

/* Runs on the thread pool: write the buffered lines, then fsync. */
static void sink_sync_work(uv_work_t *w) {
  jsonl_ctx *c = w->data;
  size_t off = 0;
  c->work_status = 0;
  while (off < c->out.len) {
    ssize_t n = write(c->out_fd, c->out.buf + off, c->out.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(c->work_err, sizeof c->work_err, "write to %s failed: %s", c->path, strerror(errno));
      c->work_status = FERRY_EIO;
      break;
    }
    off += (size_t)n;
  }
  ferry_buf_consume(&c->out, off);
  if (!c->work_status && c->fsync_on_sync && fsync(c->out_fd) < 0) {
    snprintf(c->work_err, sizeof c->work_err, "fsync of %s failed: %s", c->path, strerror(errno));
    c->work_status = FERRY_EIO;
  }
}

static void sink_sync_after(uv_work_t *w, int status) {
  jsonl_ctx *c = w->data;
  c->syncing = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (status < 0) ferry_error_set(&e, FERRY_ECANCELED, "jsonl: sync canceled");
  else if (c->work_status) ferry_error_set(&e, c->work_status, "jsonl: %s", c->work_err);
  c->sync_done(c->sync_arg, e.code, e.code ? &e : NULL);
  ferry_error_clear(&e);
}

static void sink_sync(ferry_instance *ins, ferry_done_fn done, void *arg) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  if (c->syncing) { /* the core never overlaps syncs; be safe anyway */
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINTERNAL, "jsonl: sync requested while one is running");
    done(arg, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  c->syncing = 1;
  c->sync_done = done;
  c->sync_arg = arg;
  c->work.data = c;
  int r = uv_queue_work(ferry_instance_loop(ins), &c->work, sink_sync_work, sink_sync_after);
  if (r < 0) {
    c->syncing = 0;
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EIO, "jsonl: cannot queue the sync of %s: %s", c->path, uv_strerror(r));
    done(arg, e.code, &e);
    ferry_error_clear(&e);
  }
}

static void sink_plan(ferry_instance *ins, ferry_task *task) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  const ferry_item *it = ferry_task_item(task);
  json_t *rep = ferry_task_report(task);
  if (ferry_strset_has(&c->present, it->key)) {
    json_object_set_new(rep, "would", json_string("skip: already in the file"));
    ferry_task_done(task, FERRY_DONE_SKIPPED);
    return;
  }
  /* The directory must be writable (or the file, when it exists). */
  char *dir = strdup(c->path);
  char *slash = dir ? strrchr(dir, '/') : NULL;
  const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
  int ok = access(c->path, F_OK) == 0 ? access(c->path, W_OK) == 0 : access(d, W_OK) == 0;
  free(dir);
  if (!ok) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EBLOCKED, "jsonl: %s is not writable", c->path);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  json_object_set_new(rep, "would", json_string("append one line"));
  ferry_task_done(task, 0);
}

static void sink_verify(ferry_instance *ins, ferry_task *task) {
  jsonl_ctx *c = ferry_instance_ctx(ins);
  const ferry_item *it = ferry_task_item(task);
  if (ferry_strset_has(&c->present, it->key)) {
    ferry_task_done(task, 0);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, FERRY_EMISMATCH, "jsonl: key %s is not in %s", it->key, c->path);
  ferry_task_fail(task, &e);
  ferry_error_clear(&e);
}

static const ferry_source_ops jsonl_source = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_ALL,
    .start = src_start,
    .demand = src_demand,
    .stop = src_stop,
};

static const ferry_sink_ops jsonl_sink = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_ALL,
    .start = sink_start,
    .write = sink_write,
    .plan = sink_plan,
    .verify = sink_verify,
    .sync = sink_sync,
};

FERRY_PLUGIN_DEFINE(jsonl, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "jsonl",
                    .version = FERRY_VERSION_STRING, .description = "items as JSON Lines files",
                    .license = "Apache-2.0", .options = jsonl_options, .ctx_size = sizeof(jsonl_ctx),
                    .init = jsonl_init, .fini = jsonl_fini, .source = &jsonl_source, .sink = &jsonl_sink);
