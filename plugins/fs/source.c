/* fs source: walks a root and emits one file item per regular file.
 *
 * The walk runs on the thread pool in batches of at most WALK_BATCH entries and only when the core asked
 * for items: one open directory per level, so memory stays flat whatever the size of the tree. For each
 * regular file the source asks the core whether it will carry the item (ferry_source_wanted): if not (the
 * journal has it as done), the item is emitted at once with its key only and nothing else is done for it,
 * which keeps a re-run as cheap as a walk. Otherwise the file is opened below the root, stat'ed and hashed
 * (SHA-256) in jobs of a few files, at most PREP_JOBS at a time (with "checksum": false, stat'ed in batches).
 *
 * Confinement: directories are opened one level at a time with O_NOFOLLOW relative to their parent, files
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (or the same walk). A symbolic link, a special file,
 * or a name that is not valid UTF-8 is never followed nor read: it becomes an item with an "error" field
 * naming the path and the reason, which the fs sink fails (so it shows in the report), and the walk goes on.
 *
 * The source's files: see source.h.
 */
#define _GNU_SOURCE
#include "source.h"

/* ---- entries ------------------------------------------------------------------------------------------- */
void fs_entry_free(fs_entry *e) {
  if (!e) return;
  free(e->rel);
  free(e->why);
  free(e);
}

void fs_entries_free(fs_entry *e) {
  while (e) {
    fs_entry *n = e->next;
    fs_entry_free(e);
    e = n;
  }
}

static ferry_item *file_item(fs_src *s, const fs_entry *e) {
  json_t *b = json_object();
  json_object_set_new(b, "root", json_string(s->name));
  json_object_set_new(b, "path", json_string(e->rel));
  json_object_set_new(b, "size", json_integer((json_int_t)e->st.st_size));
  json_object_set_new(b, "mtime_ns", json_integer((json_int_t)fs_mtime_ns(&e->st)));
  json_object_set_new(b, "mode", json_integer((json_int_t)(e->st.st_mode & 07777)));
  if (e->hashed) json_object_set_new(b, "sha256", json_string(e->sha));
  char *lp = ferry_asprintf("%s/%s", s->realroot, e->rel);
  json_object_set_new(b, "local_path", json_string(lp));
  free(lp);
  char *key = ferry_asprintf("%s/%s", s->name, e->rel);
  ferry_item *it = ferry_item_new(FERRY_ITEM_FILE, key, b);
  free(key);
  return it;
}

static ferry_item *error_item(fs_src *s, const fs_entry *e) {
  json_t *b = json_object();
  json_object_set_new(b, "root", json_string(s->name));
  json_object_set_new(b, "path", json_string(e->rel));
  json_object_set_new(b, "error", json_string(e->why));
  json_object_set_new(b, "error_code", json_integer(e->code ? e->code : FERRY_EINVAL));
  char *key = ferry_asprintf("%s/%s", s->name, e->rel);
  ferry_item *it = ferry_item_new(FERRY_ITEM_FILE, key, b);
  free(key);
  return it;
}

/* ---- the loop side ------------------------------------------------------------------------------------- */
static void emit_entry(fs_src *s, fs_entry *e) {
  ferry_item *it = e->why ? error_item(s, e) : file_item(s, e);
  if (e->why) {
    s->refused++;
    ferry_log_debug(s->ins, "refused: %s", e->why);
  }
  fs_entry_free(e);
  s->want--;
  s->emitted++;
  if (it) ferry_emit(s->ins, it);
}

static void src_fail_now(fs_src *s, int code, const char *what, int uvcode) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, "fs: %s: %s", what, uv_strerror(uvcode));
  s->stopped = 1;
  ferry_source_fail(s->ins, &e);
  ferry_error_clear(&e);
}

#define PREP_JOBS 4 /* prepare jobs in flight */
#define PREP_BATCH 64 /* entries per job when not hashing */

static int submit_batch(fs_src *s, prep_job *p) {
  int r = fs_pool_submit(s->pool, &p->j);
  if (r < 0) {
    fs_prep_release(&p->j);
    src_fail_now(s, FERRY_EIO, "cannot queue a stat/checksum job", r);
    return -1;
  }
  s->jobs++;
  return 0;
}

/* Queues a walk job of up to WALK_BATCH entries completing into `after` (fs_walk_after: entries to emit;
 * fs_count_after, for "count": entries only counted). 0, or -1 when the source failed. */
static int submit_walk(fs_src *s, void (*after)(fs_job *, int)) {
  walk_job *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->j.work = fs_walk_work;
  w->j.after = after;
  w->j.release = fs_walk_release;
  w->s = s;
  w->max = WALK_BATCH;
  int r = fs_pool_submit(s->pool, &w->j);
  if (r < 0) {
    fs_walk_release(&w->j);
    src_fail_now(s, FERRY_EIO, after == fs_count_after ? "cannot queue a directory walk (counting)"
                                                       : "cannot queue a directory walk", r);
    return -1;
  }
  return 0;
}

void fs_src_pump(fs_src *s) {
  if (s->stopped || s->ended || !s->started) return;
  if (s->c->count && !s->counted) { /* "count": the counting walk first, then the walk that emits */
    if (!s->counting && submit_walk(s, fs_count_after) == 0) s->counting = 1;
    return;
  }
  while (s->want > 0 && s->rhead) {
    fs_entry *e = s->rhead;
    s->rhead = e->next;
    if (!s->rhead) s->rtail = NULL;
    emit_entry(s, e);
  }
  prep_job *batch = NULL;
  /* hashing: spread what is asked for over PREP_JOBS jobs (fewer thread hand-overs for small files, and
   * large files still hashed side by side); stat only: PREP_BATCH per job */
  size_t per_job = PREP_BATCH;
  if (s->c->checksum) {
    per_job = (s->want - (s->want < s->preparing ? s->want : s->preparing)) / PREP_JOBS;
    per_job = per_job < 1 ? 1 : per_job > 8 ? 8 : per_job;
  }
  while (s->want > s->preparing && s->qhead && !s->stopped) {
    fs_entry *e = s->qhead;
    if (!e->why) {
      char *key = ferry_asprintf("%s/%s", s->name, e->rel);
      int wanted = ferry_source_wanted(s->ins, key);
      if (!wanted) { /* the core will not carry it: emit it as it is, unprepared */
        s->qhead = e->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        fs_entry_free(e);
        s->want--;
        s->emitted++;
        ferry_item *it = ferry_item_new(FERRY_ITEM_FILE, key, NULL);
        free(key);
        if (it) ferry_emit(s->ins, it);
        continue;
      }
      free(key);
      if (!batch && s->jobs >= PREP_JOBS) break;
      if (!batch) {
        batch = calloc(1, sizeof *batch);
        if (!batch) abort();
        batch->j.work = fs_prep_work;
        batch->j.after = fs_prep_after;
        batch->j.release = fs_prep_release;
        batch->s = s;
        batch->rootfd = s->rootfd;
        batch->checksum = s->c->checksum;
      }
      s->qhead = e->next;
      if (!s->qhead) s->qtail = NULL;
      s->qlen--;
      e->next = NULL;
      if (batch->tail)
        batch->tail->next = e;
      else
        batch->head = e;
      batch->tail = e;
      batch->n++;
      s->preparing++;
      if (batch->n >= per_job) {
        prep_job *full = batch;
        batch = NULL;
        if (submit_batch(s, full) < 0) return;
      }
      continue;
    }
    s->qhead = e->next;
    if (!s->qhead) s->qtail = NULL;
    s->qlen--;
    emit_entry(s, e);
  }
  if (batch && submit_batch(s, batch) < 0) return;
  if (s->stopped) return;
  if (!s->walking && !s->walk_eof && s->qlen < WALK_BATCH / 2 && s->want > s->preparing + s->qlen) {
    if (submit_walk(s, fs_walk_after) < 0) return;
    s->walking = 1;
  }
  if (s->walk_eof && !s->walking && !s->qhead && !s->jobs && !s->rhead) {
    s->ended = 1;
    if (s->refused)
      ferry_log_warn(s->ins, "%lld path(s) refused (listed as failed items)", (long long)s->refused);
    if (s->skipped_tmp)
      ferry_log_info(s->ins, "%lld temporary file(s) of an interrupted ferry copy ignored",
                     (long long)s->skipped_tmp);
    ferry_source_end(s->ins);
  }
}

/* ---- records ------------------------------------------------------------------------------------------- */
static const char *id_problem(const char *id) {
  if (!*id) return "is empty";
  if (strchr(id, '/')) return "contains '/'";
  if (!strcmp(id, ".") || !strcmp(id, "..")) return "is \".\" or \"..\"";
  if (strlen(id) > 255) return "is longer than 255 bytes";
  return NULL;
}

static int load_records(fs_src *s, ferry_error *err) {
  fs_ctx *c = s->c;
  size_t n = 0, cap = 16;
  char **v = calloc(cap, sizeof *v);
  if (!v) abort();
  for (size_t i = 0; c->records && c->records[i]; i++) {
    const char *why = id_problem(c->records[i]);
    if (why) {
      char *shown = fs_display(c->records[i]);
      ferry_error_set(err, FERRY_ECONFIG, "fs: option \"records\": record id \"%s\" %s", shown, why);
      free(shown);
      goto fail;
    }
    if (n + 1 >= cap) {
      cap *= 2;
      char **nv = realloc(v, cap * sizeof *v);
      if (!nv) abort();
      v = nv;
    }
    v[n++] = fs_strdup(c->records[i]);
  }
  if (c->records_file && *c->records_file) {
    FILE *f = fopen(c->records_file, "r");
    if (!f) {
      ferry_error_set(err, FERRY_ECONFIG, "fs: option \"records_file\": cannot open %s: %s", c->records_file,
                      strerror(errno));
      goto fail;
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
      lineno++;
      while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
      if (len == 0 || line[0] == '#') continue;
      const char *why = id_problem(line);
      if (!why && !fs_utf8_valid(line, (size_t)len)) why = "is not valid UTF-8";
      if (why) {
        char *shown = fs_display(line);
        ferry_error_set(err, FERRY_ECONFIG, "fs: %s:%ld: record id \"%s\" %s", c->records_file, lineno, shown,
                        why);
        free(shown);
        free(line);
        fclose(f);
        goto fail;
      }
      if (n + 1 >= cap) {
        cap *= 2;
        char **nv = realloc(v, cap * sizeof *v);
        if (!nv) abort();
        v = nv;
      }
      v[n++] = fs_strndup(line, (size_t)len);
    }
    free(line);
    fclose(f);
    if (n == 0) {
      ferry_error_set(err, FERRY_ECONFIG, "fs: %s holds no record id: nothing would be selected",
                      c->records_file);
      goto fail;
    }
  }
  v[n] = NULL;
  s->records = v;
  return 0;
fail:
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
  return err->code;
}

/* ---- ops ----------------------------------------------------------------------------------------------- */
int fs_source_init(fs_ctx *c, ferry_error *err) {
  for (size_t i = 0; c->tables && c->tables[i]; i++) {
    const char *why = id_problem(c->tables[i]);
    if (why) {
      char *shown = fs_display(c->tables[i]);
      ferry_error_set(err, FERRY_ECONFIG, "fs: option \"tables\": table name \"%s\" %s", shown, why);
      free(shown);
      return err->code;
    }
  }
  if (c->name && (!*c->name || strchr(c->name, '/')))
    return ferry_error_set(err, FERRY_ECONFIG, "fs: option \"name\" must be a non-empty name without '/'");
  fs_src *s = calloc(1, sizeof *s);
  if (!s) return ferry_error_set(err, FERRY_ENOMEM, "fs: out of memory");
  s->c = c;
  s->ins = c->ins;
  s->rootfd = -1;
  c->src = s;
  return load_records(s, err);
}

void fs_source_fini(fs_ctx *c) {
  fs_src *s = c->src;
  if (!s) return;
  fs_pool_shutdown(s->pool); /* waits for the jobs running now; their completions only release */
  while (s->nfr) fs_pop_frame(s);
  free(s->fr);
  free(s->path);
  fs_entries_free(s->qhead);
  fs_entries_free(s->rhead);
  if (s->rootfd >= 0) close(s->rootfd);
  free(s->realroot);
  free(s->name);
  for (size_t i = 0; s->records && s->records[i]; i++) free(s->records[i]);
  free(s->records);
  free(s);
  c->src = NULL;
}

static int src_start(ferry_instance *ins, ferry_error *err) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_src *s = c->src;
  char *rp = realpath(c->root, NULL);
  if (!rp)
    return ferry_error_set(err, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO,
                           "fs: source root \"%s\": %s (check the option \"root\")", c->root,
                           strerror(errno));
  s->realroot = rp;
  s->rootfd = open(rp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->rootfd < 0)
    return ferry_error_set(err, fs_errno_code(errno),
                           "fs: source root \"%s\" cannot be opened as a directory: %s", c->root,
                           strerror(errno));
  if (c->name) {
    s->name = fs_strdup(c->name);
  } else {
    const char *slash = strrchr(rp, '/');
    s->name = fs_strdup(slash && slash[1] ? slash + 1 : "root");
  }
  if (!fs_utf8_valid(s->name, strlen(s->name)))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "fs: the source root's name is not valid UTF-8: set the option "
                           "\"name\"");
  s->pool = fs_pool_new(ferry_instance_loop(ins));
  if (!s->pool) return ferry_error_set(err, FERRY_ENOMEM, "fs: out of memory");
  s->started = 1;
  ferry_log_debug(ins, "walking %s (keys \"%s/...\")", rp, s->name);
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_src *s = c->src;
  s->want += n;
  fs_src_pump(s);
}

static void src_stop(ferry_instance *ins) {
  fs_ctx *c = ferry_instance_ctx(ins);
  if (c->src) c->src->stopped = 1; /* jobs in flight complete into callbacks that see it */
}

const ferry_source_ops fs_source_ops = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_FILE,
    .start = src_start,
    .demand = src_demand,
    .stop = src_stop,
};
