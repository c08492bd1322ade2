/* csv: rows of CSV files as record items. An example of a connector built out of tree against the installed
 * ferry SDK (see README.md); copy this folder to start your own.
 *
 * Source: reads the file on the libuv thread pool (uv_fs_read) and emits one FERRY_ITEM_RECORD per row:
 *   key  = the row's first field (so the first column must identify a row: an id, a primary key)
 *   body = {"table": <option table>, "columns": [...], "key_columns": [<first column>],
 *           "rows": [[<fields as strings>]], "row_count": 1}
 * Quoted fields (RFC 4180: "a, b", "say ""hi""", line breaks inside quotes) and CRLF line ends are read.
 * A malformed row stops the stage with "<file>:<line>: <what is wrong>".
 *
 * Sink: appends the rows of each record item to a file (creating it, with a header row when `header` is on).
 * Rows are buffered; `sync()` writes them and fsyncs the file on the thread pool, and the core marks the
 * items done in the journal only after that. Re-runs are safe: at start the first fields already in the
 * file are loaded, so a row that is there is not written twice, and a torn last row left by a crash is cut
 * off. Items whose columns differ from the file's header are refused, naming both.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/log.h>
#include <ferry/plugin.h>
#include <ferry/util.h>

#define READ_CHUNK (64 * 1024)

/* ---- small helpers ------------------------------------------------------------------------------------ */
static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort(); /* out of memory: nothing sensible left to do */
  return q;
}

static char *xstrndup(const char *s, size_t n) {
  char *d = xrealloc(NULL, n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* The growable buffer (ferry_buf) and the set of strings (ferry_strset) are the SDK's: ferry/util.h. */

/* ---- CSV reading: one record at a time out of a buffer ---------------------------------------------- */
typedef struct csv_row {
  char **f;
  size_t n, cap;
} csv_row;

static void row_clear(csv_row *r) {
  for (size_t i = 0; i < r->n; i++) free(r->f[i]);
  r->n = 0;
}

static void row_free(csv_row *r) {
  row_clear(r);
  free(r->f);
  memset(r, 0, sizeof *r);
}

static void row_push(csv_row *r, const char *s, size_t n) {
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 8;
    r->f = xrealloc(r->f, r->cap * sizeof *r->f);
  }
  r->f[r->n++] = xstrndup(s, n);
}

/* Parses the record at the start of buf[0..len). Returns the bytes it used (> 0) and fills `row`; 0 when the
 * buffer does not hold a whole record yet (at the end of the file pass final = 1: the last record may lack
 * its line break); -1 for malformed input with *why set. *lines gets the line breaks consumed. */
static long parse_record(const char *buf, size_t len, int final, char delim, csv_row *row, const char **why,
                         int64_t *lines) {
  ferry_buf field = {0};
  size_t i = 0;
  int64_t nl = 0;
  row_clear(row);
  for (;;) {
    ferry_buf_reset(&field);
    if (i < len && buf[i] == '"') { /* quoted field */
      i++;
      for (;;) {
        if (i >= len) {
          if (final) {
            *why = "a quoted field is not closed before the end of the file";
            ferry_buf_free(&field);
            return -1;
          }
          ferry_buf_free(&field);
          return 0;
        }
        if (buf[i] == '"') {
          if (i + 1 >= len && !final) {
            ferry_buf_free(&field);
            return 0; /* is it "" or the end of the field? need the next byte */
          }
          if (i + 1 < len && buf[i + 1] == '"') {
            ferry_buf_addn(&field, "\"", 1);
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (buf[i] == '\n') nl++;
        ferry_buf_addn(&field, buf + i, 1);
        i++;
      }
      if (i < len && buf[i] == '\r') { /* CRLF line end */
        if (i + 1 >= len && !final) {
          ferry_buf_free(&field);
          return 0;
        }
        if (i + 1 >= len || buf[i + 1] == '\n') i++;
      }
      if (i < len && buf[i] != delim && buf[i] != '\n') {
        *why = "unexpected character after a closing quote (a quote inside a field must be doubled)";
        ferry_buf_free(&field);
        return -1;
      }
      if (i >= len && !final) {
        ferry_buf_free(&field);
        return 0;
      }
    } else { /* plain field: up to the delimiter or the line break */
      size_t start = i;
      while (i < len && buf[i] != delim && buf[i] != '\n') i++;
      if (i >= len && !final) {
        ferry_buf_free(&field);
        return 0;
      }
      size_t end = i;
      if (end > start && buf[end - 1] == '\r' && (i >= len || buf[i] == '\n')) end--;
      ferry_buf_addn(&field, buf + start, end - start);
    }
    row_push(row, field.buf ? field.buf : "", field.len);
    if (i < len && buf[i] == delim) {
      i++;
      continue;
    }
    if (i < len) { /* '\n' */
      nl++;
      i++;
    }
    ferry_buf_free(&field);
    *lines += nl;
    return (long)i;
  }
}

/* ---- context ------------------------------------------------------------------------------------------ */
typedef struct csv_reader csv_reader;

typedef struct csv_ctx {
  /* options, written by the core before init() and owned by it */
  char *path;
  char *table;
  char *delimiter;
  int header;
  int fsync;
  /* state */
  ferry_instance *ins;
  char delim;
  char *table_name; /* `table`, or the file name without its extension */
  csv_reader *reader;
  /* sink */
  int out_fd;
  char **columns; /* the file's columns once known (header row or first item), NULL-terminated */
  size_t ncolumns;
  int need_header; /* the file is empty: write a header row before the first row */
  ferry_strset present;  /* first fields already in the file */
  ferry_buf wbuf;     /* rows not yet written */
  uv_work_t work;
  int syncing, work_status;
  char work_err[256];
  ferry_done_fn sync_done;
  void *sync_arg;
} csv_ctx;

static const ferry_option csv_options[] = {
  {.key = "path", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY, offsetof(csv_ctx, path),
   "CSV file to read (source) or append to (sink)"},
  {.key = "table", FERRY_OPT_STRING, NULL, 0, offsetof(csv_ctx, table),
   "source: the \"table\" of the records (default: the file name without its extension)",
   .roles = FERRY_KIND_SOURCE},
  {.key = "header", FERRY_OPT_BOOL, "true", 0, offsetof(csv_ctx, header),
   "the first row names the columns (source: read it; sink: write it to a new file)"},
  {.key = "delimiter", FERRY_OPT_STRING, "\",\"", 0, offsetof(csv_ctx, delimiter), "field separator, one character"},
  {.key = "fsync", FERRY_OPT_BOOL, "true", 0, offsetof(csv_ctx, fsync),
   "sink: fsync the file before the items count as done", .roles = FERRY_KIND_SINK},
  FERRY_OPTIONS_END,
};

static void free_strv(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

static int csv_init(ferry_instance *ins, ferry_error *err) {
  csv_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  c->out_fd = -1;
  const char *d = c->delimiter;
  if (strlen(d) != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r')
    return ferry_error_set(err, FERRY_ECONFIG, "csv: option \"delimiter\" must be one character other than a "
                           "quote or a line break (is \"%s\")", d);
  c->delim = d[0];
  if (c->table && *c->table) {
    c->table_name = xstrndup(c->table, strlen(c->table));
  } else {
    const char *base = strrchr(c->path, '/');
    base = base ? base + 1 : c->path;
    const char *dot = strrchr(base, '.');
    c->table_name = xstrndup(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
  }
  return 0;
}

static void reader_detach(csv_ctx *c);

static void csv_fini(ferry_instance *ins) {
  csv_ctx *c = ferry_instance_ctx(ins);
  reader_detach(c);
  if (c->out_fd >= 0) close(c->out_fd);
  free(c->table_name);
  free_strv(c->columns);
  ferry_strset_free(&c->present);
  ferry_buf_free(&c->wbuf);
}

/* ---- source ------------------------------------------------------------------------------------------- */
/* The reader lives apart from the context: a read may still be on the thread pool when the stage stops and
 * the core frees the context; the read's callback then frees the reader. */
struct csv_reader {
  csv_ctx *c; /* NULL once detached */
  uv_fs_t req;
  uv_file fd;
  int reading, eof, done, pumping;
  size_t demand;
  char chunk[READ_CHUNK];
  ferry_buf buf;           /* bytes read and not parsed yet */
  size_t buf_off;       /* parsed up to here */
  int64_t offset;       /* file offset of the next read */
  int64_t line;         /* line number of the next record */
  csv_row row;
  char **columns;
  size_t ncolumns;
};

static void reader_free(csv_reader *r) {
  if (r->fd >= 0) {
    uv_fs_t req;
    uv_fs_close(NULL, &req, r->fd, NULL); /* a local file: closing does not wait for anything */
    uv_fs_req_cleanup(&req);
  }
  ferry_buf_free(&r->buf);
  row_free(&r->row);
  free_strv(r->columns);
  free(r);
}

static void reader_detach(csv_ctx *c) {
  csv_reader *r = c->reader;
  if (!r) return;
  c->reader = NULL;
  r->c = NULL;
  if (!r->reading) reader_free(r); /* else src_on_read frees it */
}

static void src_fail(csv_reader *r, int64_t line, int code, const char *fmt, ...) FERRY_PRINTF(4, 5);
static void src_fail(csv_reader *r, int64_t line, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, "csv: %s:%lld: %s", r->c->path, (long long)line, msg);
  r->done = 1;
  ferry_source_fail(r->c->ins, &e);
  ferry_error_clear(&e);
}

static void src_read_more(csv_reader *r);

/* One record parsed into r->row: the header, or an item to emit. Returns -1 when the stage failed. */
static int src_record(csv_reader *r, int64_t line) {
  csv_ctx *c = r->c;
  csv_row *row = &r->row;
  if (row->n == 1 && row->f[0][0] == '\0') return 0; /* blank line */
  if (!r->columns) {
    r->columns = xrealloc(NULL, (row->n + 1) * sizeof *r->columns);
    for (size_t i = 0; i < row->n; i++) {
      if (c->header) {
        r->columns[i] = xstrndup(row->f[i], strlen(row->f[i]));
      } else {
        char name[32];
        snprintf(name, sizeof name, "c%zu", i + 1);
        r->columns[i] = xstrndup(name, strlen(name));
      }
    }
    r->columns[row->n] = NULL;
    r->ncolumns = row->n;
    if (c->header) return 0;
  }
  if (row->n != r->ncolumns) {
    src_fail(r, line, FERRY_EINVAL, "%zu fields, expected %zu (the number of columns)", row->n, r->ncolumns);
    return -1;
  }
  if (!*row->f[0]) {
    src_fail(r, line, FERRY_EINVAL, "the first field (column \"%s\") is empty; it is the key of the row",
             r->columns[0]);
    return -1;
  }
  json_t *cols = json_array(), *vals = json_array();
  for (size_t i = 0; i < row->n; i++) {
    json_t *name = json_string(r->columns[i]), *val = json_string(row->f[i]);
    if (!name || !val) { /* jansson takes UTF-8 only */
      json_decref(name);
      json_decref(val);
      json_decref(cols);
      json_decref(vals);
      src_fail(r, line, FERRY_EINVAL, "field %zu (column \"%s\") is not valid UTF-8", i + 1, r->columns[i]);
      return -1;
    }
    json_array_append_new(cols, name);
    json_array_append_new(vals, val);
  }
  json_t *body = json_pack("{s:s, s:o, s:[s], s:[o], s:i}", "table", c->table_name, "columns", cols,
                           "key_columns", r->columns[0], "rows", vals, "row_count", 1);
  if (!body) abort(); /* only out of memory (the strings were checked above) */
  ferry_item *item = ferry_item_new(FERRY_ITEM_RECORD, row->f[0], body);
  if (!item) abort();
  r->demand--;
  ferry_emit(c->ins, item); /* the core owns the item now; it may call demand() again from in here */
  return 0;
}

static void src_pump(csv_reader *r) {
  if (r->pumping) return; /* re-entered from ferry_emit -> demand: the loop below carries on */
  r->pumping = 1;
  while (r->c && !r->done && r->demand > 0) {
    const char *why = NULL;
    int64_t line = r->line, lines = 0;
    long used = parse_record(r->buf.buf + r->buf_off, r->buf.len - r->buf_off, r->eof, r->c->delim, &r->row,
                             &why, &lines);
    if (used < 0) {
      src_fail(r, line, FERRY_EINVAL, "%s", why);
      break;
    }
    if (used == 0) {
      if (r->eof) { /* everything parsed */
        r->done = 1;
        ferry_source_end(r->c->ins);
      } else if (!r->reading) {
        src_read_more(r);
      }
      break;
    }
    r->buf_off += (size_t)used;
    r->line += lines;
    if (src_record(r, line) < 0) break;
  }
  r->pumping = 0;
}

static void src_on_read(uv_fs_t *req) {
  csv_reader *r = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  r->reading = 0;
  if (!r->c) { /* the stage stopped while we were reading */
    reader_free(r);
    return;
  }
  if (n < 0) {
    src_fail(r, r->line, FERRY_EIO, "read failed: %s", uv_strerror((int)n));
    return;
  }
  if (n == 0) {
    r->eof = 1;
  } else {
    /* drop what was parsed, keep the unparsed tail */
    ferry_buf_consume(&r->buf, r->buf_off);
    r->buf_off = 0;
    ferry_buf_addn(&r->buf, r->chunk, (size_t)n);
    r->offset += n;
  }
  src_pump(r);
}

static void src_read_more(csv_reader *r) {
  uv_buf_t b = uv_buf_init(r->chunk, sizeof r->chunk);
  r->req.data = r;
  r->reading = 1;
  int rc = uv_fs_read(ferry_instance_loop(r->c->ins), &r->req, r->fd, &b, 1, r->offset, src_on_read);
  if (rc < 0) {
    r->reading = 0;
    src_fail(r, r->line, FERRY_EIO, "read failed: %s", uv_strerror(rc));
  }
}

static int src_start(ferry_instance *ins, ferry_error *err) {
  csv_ctx *c = ferry_instance_ctx(ins);
  int fd = open(c->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ferry_error_set(err, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO, "csv: cannot open %s: %s",
                           c->path, strerror(errno));
  csv_reader *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->c = c;
  r->fd = fd;
  r->line = 1;
  c->reader = r;
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  csv_ctx *c = ferry_instance_ctx(ins);
  if (!c->reader) return;
  c->reader->demand += n;
  src_pump(c->reader);
}

static void src_stop(ferry_instance *ins) { reader_detach(ferry_instance_ctx(ins)); }

/* ---- sink --------------------------------------------------------------------------------------------- */
/* Appends one field, quoted when it has to be. */
static void put_field(ferry_buf *b, const char *s, size_t n, char delim) {
  int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
  for (size_t i = 0; i < n && !quote; i++)
    quote = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
  if (!quote) {
    ferry_buf_addn(b, s, n);
    return;
  }
  ferry_buf_addn(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') ferry_buf_addn(b, "\"", 1); /* a quote inside a quoted field is doubled */
    ferry_buf_addn(b, s + i, 1);
  }
  ferry_buf_addn(b, "\"", 1);
}

/* The text of a JSON value as a field: strings as they are, numbers and booleans as JSON writes them, null as
 * an empty field, arrays and objects as compact JSON. Returns a malloc'd string. */
static char *value_text(json_t *v, size_t *n) {
  char *s;
  if (json_is_string(v)) {
    *n = json_string_length(v);
    return xstrndup(json_string_value(v), *n);
  }
  if (json_is_null(v) || !v) s = xstrndup("", 0);
  else s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!s) abort();
  *n = strlen(s);
  return s;
}

/* Reads what the file already holds: its header (columns) and the first field of each row; cuts a torn last
 * row. At start, before the loop is busy. */
static int sink_scan_existing(csv_ctx *c, int writable, ferry_error *err) {
  int fd = open(c->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      c->need_header = c->header;
      return 0;
    }
    return ferry_error_set(err, FERRY_EIO, "csv: cannot read %s: %s", c->path, strerror(errno));
  }
  ferry_buf all = {0};
  char chunk[READ_CHUNK];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) ferry_buf_addn(&all, chunk, (size_t)n);
  int read_errno = errno;
  close(fd);
  if (n < 0) {
    ferry_buf_free(&all);
    return ferry_error_set(err, FERRY_EIO, "csv: cannot read %s: %s", c->path, strerror(read_errno));
  }
  csv_row row = {0};
  size_t off = 0;
  int64_t line = 1;
  int rc = 0, first = 1;
  while (off < all.len) {
    const char *why = NULL;
    int64_t row_line = line;
    /* not final: a row counts only with its line break (the sink always writes one); a torn tail stops */
    long used = parse_record(all.buf + off, all.len - off, 0, c->delim, &row, &why, &line);
    if (used == 0) break;
    if (used < 0) {
      rc = ferry_error_set(err, FERRY_EINVAL, "csv: %s:%lld: %s; refusing to append to a file that is not "
                           "CSV with delimiter '%c'", c->path, (long long)row_line, why, c->delim);
      break;
    }
    off += (size_t)used;
    if (row.n == 1 && !*row.f[0]) continue; /* blank line */
    if (first && c->header) { /* the header row: the file's columns */
      c->columns = xrealloc(NULL, (row.n + 1) * sizeof *c->columns);
      for (size_t i = 0; i < row.n; i++) c->columns[i] = xstrndup(row.f[i], strlen(row.f[i]));
      c->columns[row.n] = NULL;
      c->ncolumns = row.n;
    } else {
      ferry_strset_add(&c->present, row.f[0]);
    }
    first = 0;
  }
  row_free(&row);
  if (!rc && off == 0) c->need_header = c->header;
  if (!rc && off < all.len && writable) {
    ferry_log_warn(c->ins, "%s: cutting a torn last row (%zu bytes) left by an interrupted run", c->path,
                   all.len - off);
    if (truncate(c->path, (off_t)off) < 0)
      rc = ferry_error_set(err, FERRY_EIO, "csv: cannot truncate %s: %s", c->path, strerror(errno));
  }
  ferry_buf_free(&all);
  return rc;
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  csv_ctx *c = ferry_instance_ctx(ins);
  int writable = ferry_instance_mode(ins) == FERRY_MODE_RUN; /* plan and verify never write */
  int rc = sink_scan_existing(c, writable, err);
  if (rc || !writable) return rc;
  c->out_fd = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (c->out_fd < 0)
    return ferry_error_set(err, FERRY_EIO, "csv: cannot open %s for appending: %s", c->path, strerror(errno));
  return 0;
}

static void fail_task(ferry_task *task, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void fail_task(ferry_task *task, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, "csv: %s", msg);
  ferry_task_fail(task, &e);
  ferry_error_clear(&e);
}

static char *join_names(char **v, size_t n) {
  ferry_buf b = FERRY_BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    if (i) ferry_buf_add(&b, ", ");
    ferry_buf_add(&b, v[i]);
  }
  return ferry_buf_steal(&b);
}

/* Checks the item against the file's columns (adopting the item's when the file has none yet). Returns 0, or
 * -1 after failing the task with `code`. */
static int check_columns(csv_ctx *c, ferry_task *task, int adopt, int code) {
  const ferry_item *it = ferry_task_item(task);
  json_t *cols = json_object_get(it->body, "columns"), *rows = json_object_get(it->body, "rows");
  if (!json_is_array(cols) || !json_array_size(cols) || !json_is_array(rows)) {
    fail_task(task, FERRY_EINVAL, "item %s has no \"columns\" and \"rows\" arrays (the csv sink writes the "
              "rows of record items)", it->key);
    return -1;
  }
  size_t n = json_array_size(cols);
  for (size_t i = 0; i < n; i++)
    if (!json_is_string(json_array_get(cols, i))) {
      fail_task(task, FERRY_EINVAL, "item %s: column %zu is not a string", it->key, i);
      return -1;
    }
  if (!c->columns) {
    if (!adopt) return 0;
    c->columns = xrealloc(NULL, (n + 1) * sizeof *c->columns);
    for (size_t i = 0; i < n; i++) {
      const char *s = json_string_value(json_array_get(cols, i));
      c->columns[i] = xstrndup(s, strlen(s));
    }
    c->columns[n] = NULL;
    c->ncolumns = n;
    return 0;
  }
  int same = n == c->ncolumns;
  for (size_t i = 0; same && i < n; i++)
    same = !strcmp(json_string_value(json_array_get(cols, i)), c->columns[i]);
  if (!same) {
    char *want = join_names(c->columns, c->ncolumns);
    ferry_buf got = {0};
    for (size_t i = 0; i < n; i++) {
      if (i) ferry_buf_addn(&got, ", ", 2);
      const char *s = json_string_value(json_array_get(cols, i));
      ferry_buf_addn(&got, s, strlen(s));
    }
    fail_task(task, code, "item %s has the columns [%s] but %s has [%s]", it->key, got.buf, c->path, want);
    free(want);
    ferry_buf_free(&got);
    return -1;
  }
  return 0;
}

static void put_row(ferry_buf *b, json_t *row, char delim) {
  for (size_t i = 0; i < json_array_size(row); i++) {
    if (i) ferry_buf_addn(b, &delim, 1);
    size_t n;
    char *s = value_text(json_array_get(row, i), &n);
    put_field(b, s, n, delim);
    free(s);
  }
  ferry_buf_addn(b, "\n", 1);
}

static void sink_write(ferry_instance *ins, ferry_task *task) {
  csv_ctx *c = ferry_instance_ctx(ins);
  if (check_columns(c, task, 1, FERRY_ECONFLICT) < 0) return;
  const ferry_item *it = ferry_task_item(task);
  json_t *rows = json_object_get(it->body, "rows");
  for (size_t i = 0; i < json_array_size(rows); i++)
    if (json_array_size(json_array_get(rows, i)) != c->ncolumns) {
      fail_task(task, FERRY_EINVAL, "item %s: row %zu has %zu values for %zu columns", it->key, i,
                json_array_size(json_array_get(rows, i)), c->ncolumns);
      return;
    }
  if (c->need_header) {
    for (size_t i = 0; i < c->ncolumns; i++) {
      if (i) ferry_buf_addn(&c->wbuf, &c->delim, 1);
      put_field(&c->wbuf, c->columns[i], strlen(c->columns[i]), c->delim);
    }
    ferry_buf_addn(&c->wbuf, "\n", 1);
    c->need_header = 0;
  }
  size_t written = 0;
  for (size_t i = 0; i < json_array_size(rows); i++) {
    json_t *row = json_array_get(rows, i);
    size_t n;
    char *first = value_text(json_array_get(row, 0), &n);
    if (!ferry_strset_has(&c->present, first)) { /* rows already in the file (an earlier run) are not repeated */
      put_row(&c->wbuf, row, c->delim);
      ferry_strset_add(&c->present, first);
      written++;
    }
    free(first);
  }
  /* Durable only after sync(): the core marks the item done once csv_sync has completed. */
  ferry_task_done(task, written ? FERRY_DONE_SYNC : FERRY_DONE_SKIPPED);
}

/* On the thread pool: write the buffered rows, then fsync. */
static void sync_work(uv_work_t *w) {
  csv_ctx *c = w->data;
  size_t off = 0;
  c->work_status = 0;
  while (off < c->wbuf.len) {
    ssize_t n = write(c->out_fd, c->wbuf.buf + off, c->wbuf.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(c->work_err, sizeof c->work_err, "writing %s failed: %s", c->path, strerror(errno));
      c->work_status = FERRY_EIO;
      break;
    }
    off += (size_t)n;
  }
  ferry_buf_consume(&c->wbuf, off);
  if (!c->work_status && c->fsync && fsync(c->out_fd) < 0) {
    snprintf(c->work_err, sizeof c->work_err, "fsync of %s failed: %s", c->path, strerror(errno));
    c->work_status = FERRY_EIO;
  }
}

static void sync_after(uv_work_t *w, int status) {
  csv_ctx *c = w->data;
  c->syncing = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (status < 0) ferry_error_set(&e, FERRY_ECANCELED, "csv: sync of %s canceled", c->path);
  else if (c->work_status) ferry_error_set(&e, c->work_status, "csv: %s", c->work_err);
  c->sync_done(c->sync_arg, e.code, e.code ? &e : NULL);
  ferry_error_clear(&e);
}

static void csv_sync(ferry_instance *ins, ferry_done_fn done, void *arg) {
  csv_ctx *c = ferry_instance_ctx(ins);
  ferry_error e = FERRY_ERROR_INIT;
  if (c->syncing) {
    ferry_error_set(&e, FERRY_EINTERNAL, "csv: sync requested while one is running");
  } else if (c->out_fd < 0) { /* nothing was ever written */
    done(arg, 0, NULL);
    return;
  } else {
    c->syncing = 1;
    c->sync_done = done;
    c->sync_arg = arg;
    c->work.data = c;
    int rc = uv_queue_work(ferry_instance_loop(ins), &c->work, sync_work, sync_after);
    if (rc == 0) return;
    c->syncing = 0;
    ferry_error_set(&e, FERRY_EIO, "csv: cannot queue the sync of %s: %s", c->path, uv_strerror(rc));
  }
  done(arg, e.code, &e);
  ferry_error_clear(&e);
}

/* The first field of the item's first row (what identifies the row in the file), malloc'd. */
static char *first_key(const ferry_item *it) {
  json_t *row = json_array_get(json_object_get(it->body, "rows"), 0);
  size_t n;
  return value_text(json_array_get(row, 0), &n);
}

static void csv_plan(ferry_instance *ins, ferry_task *task) {
  csv_ctx *c = ferry_instance_ctx(ins);
  if (check_columns(c, task, 0, FERRY_EBLOCKED) < 0) return;
  char *k = first_key(ferry_task_item(task));
  int present = ferry_strset_has(&c->present, k);
  free(k);
  json_object_set_new(ferry_task_report(task), "would",
                      json_string(present ? "skip: the row is already in the file" : "append the row"));
  ferry_task_done(task, present ? FERRY_DONE_SKIPPED : 0);
}

static void csv_verify(ferry_instance *ins, ferry_task *task) {
  csv_ctx *c = ferry_instance_ctx(ins);
  char *k = first_key(ferry_task_item(task));
  if (ferry_strset_has(&c->present, k)) ferry_task_done(task, 0);
  else fail_task(task, FERRY_EMISMATCH, "no row with first field \"%s\" in %s", k, c->path);
  free(k);
}

static void sink_stop(ferry_instance *ins) {
  csv_ctx *c = ferry_instance_ctx(ins);
  if (c->out_fd >= 0) close(c->out_fd);
  c->out_fd = -1;
}

/* ---- the descriptor: the only symbol this module exports ---------------------------------------------- */
static const ferry_source_ops csv_source = {
  .struct_size = sizeof(ferry_source_ops),
  .emits = FERRY_ITEM_RECORD,
  .start = src_start,
  .demand = src_demand,
  .stop = src_stop,
};

static const ferry_sink_ops csv_sink = {
  .struct_size = sizeof(ferry_sink_ops),
  .accepts = FERRY_ITEM_RECORD,
  .start = sink_start,
  .write = sink_write,
  .plan = csv_plan,
  .verify = csv_verify,
  .sync = csv_sync,
  .stop = sink_stop,
};

FERRY_PLUGIN_DEFINE(csv, .name = "csv", .version = "1.0.0", .license = "Apache-2.0",
                    .description = "rows of CSV files as record items (example connector)",
                    .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .options = csv_options,
                    .ctx_size = sizeof(csv_ctx), .init = csv_init, .fini = csv_fini, .source = &csv_source,
                    .sink = &csv_sink);
