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
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define WALK_BATCH 512

typedef struct wframe {
  int fd; /* list mode: the directory (owned); readdir mode: -1 (the DIR owns it) */
  DIR *d; /* readdir mode */
  char *const *list; /* list mode: the names to open (tables or records) */
  size_t idx;
  size_t plen; /* length of this directory's path below the root ("" for the root) */
  int level; /* 0 = the root */
} wframe;

typedef struct fs_entry {
  struct fs_entry *next;
  char *rel; /* path below the root (for refused entries: printable form) */
  char *why; /* refused: the reason; NULL: a regular file */
  int code;
  struct stat st; /* regular files: from the preparing job */
  char sha[FS_SHA_HEX];
  int hashed, prepared;
} fs_entry;

struct fs_src {
  fs_ctx *c;
  ferry_instance *ins;
  fs_pool *pool;
  int rootfd;
  char *realroot;
  char *name;
  char **records; /* records + records_file, NULL-terminated (owned) */
  /* the walker: touched only by the walk job, one at a time */
  wframe *fr;
  size_t nfr, cfr;
  char *path;
  size_t pcap;
  int walk_started;
  /* loop side */
  int walking, walk_eof;
  fs_entry *qhead, *qtail; /* walked, not yet handled */
  size_t qlen;
  fs_entry *rhead, *rtail; /* prepared, ready to emit */
  size_t want; /* asked for, not yet emitted */
  size_t preparing; /* entries in prepare jobs */
  size_t jobs; /* prepare jobs in flight */
  int started, stopped, ended;
  int64_t emitted, refused, skipped_tmp;
};

/* ---- entries ------------------------------------------------------------------------------------------- */
static void entry_free(fs_entry *e) {
  if (!e) return;
  free(e->rel);
  free(e->why);
  free(e);
}

static void entries_free(fs_entry *e) {
  while (e) {
    fs_entry *n = e->next;
    entry_free(e);
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
  char *lp = fs_strf("%s/%s", s->realroot, e->rel);
  json_object_set_new(b, "local_path", json_string(lp));
  free(lp);
  char *key = fs_strf("%s/%s", s->name, e->rel);
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
  char *key = fs_strf("%s/%s", s->name, e->rel);
  ferry_item *it = ferry_item_new(FERRY_ITEM_FILE, key, b);
  free(key);
  return it;
}

/* ---- the walk (thread pool) ---------------------------------------------------------------------------- */
typedef struct walk_job {
  fs_job j;
  fs_src *s;
  size_t max;
  fs_entry *head, *tail;
  size_t n;
  int eof;
  int64_t skipped_tmp;
} walk_job;

static void path_reserve(fs_src *s, size_t need) {
  if (need + 1 <= s->pcap) return;
  size_t cap = s->pcap ? s->pcap : 256;
  while (cap < need + 1) cap *= 2;
  char *np = realloc(s->path, cap);
  if (!np) abort();
  s->path = np;
  s->pcap = cap;
}

/* Writes "<dir path>/<name>" into s->path; returns its length. */
static size_t set_child(fs_src *s, const wframe *f, const char *name) {
  size_t nl = strlen(name);
  size_t len = f->plen + (f->plen ? 1 : 0) + nl;
  path_reserve(s, len);
  if (f->plen) s->path[f->plen] = '/';
  memcpy(s->path + f->plen + (f->plen ? 1 : 0), name, nl);
  s->path[len] = '\0';
  return len;
}

static void add_entry(walk_job *w, fs_entry *e) {
  if (w->tail)
    w->tail->next = e;
  else
    w->head = e;
  w->tail = e;
  w->n++;
}

static void add_refused(walk_job *w, const char *rel, int code, char *why) {
  fs_entry *e = calloc(1, sizeof *e);
  if (!e) abort();
  e->rel = fs_utf8_valid(rel, strlen(rel)) ? fs_strdup(rel) : fs_display(rel);
  e->why = why;
  e->code = code;
  add_entry(w, e);
}

/* Lexically: does the link at `rel` pointing to `target` stay below the root? */
static int link_inside(const fs_src *s, const char *rel, const char *target) {
  if (target[0] == '/') {
    size_t n = strlen(s->realroot);
    return strncmp(target, s->realroot, n) == 0 && target[n] == '/';
  }
  long depth = 0;
  for (const char *p = rel; *p; p++)
    if (*p == '/') depth++; /* the link's directory is `depth` levels below the root */
  const char *p = target;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.')
      depth--;
    else if (len > 0 && !(len == 1 && p[0] == '.'))
      depth++;
    if (depth < 0) return 0;
    if (!slash) break;
    p = slash + 1;
  }
  return 1;
}

static void refuse_link(walk_job *w, int dirfd, const char *name, const char *rel) {
  fs_src *s = w->s;
  char target[PATH_MAX];
  ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
  char *shown = fs_display(rel);
  char *why;
  if (n >= 0) {
    target[n] = '\0';
    char *t = fs_display(target);
    why = fs_strf(
        "\"%s\" is a symbolic link to \"%s\" (%s the root); symbolic links are never followed: "
        "replace it with the file itself, or migrate the directory it points to as a root of its "
        "own",
        shown, t, link_inside(s, rel, target) ? "inside" : "outside");
    free(t);
  } else {
    why = fs_strf("\"%s\" is a symbolic link; symbolic links are never followed", shown);
  }
  free(shown);
  add_refused(w, rel, FERRY_EINVAL, why);
}

static void push_frame(fs_src *s, int fd, DIR *d, char *const *list, size_t plen, int level) {
  if (s->nfr == s->cfr) {
    s->cfr = s->cfr ? s->cfr * 2 : 8;
    wframe *nf = realloc(s->fr, s->cfr * sizeof *nf);
    if (!nf) abort();
    s->fr = nf;
  }
  s->fr[s->nfr++] = (wframe){.fd = fd, .d = d, .list = list, .plen = plen, .level = level};
}

static void pop_frame(fs_src *s) {
  wframe *f = &s->fr[--s->nfr];
  if (f->d)
    closedir(f->d);
  else if (f->fd >= 0)
    close(f->fd);
}

/* The list a directory at `level` iterates instead of reading itself (tables at the root, records in a
 * table), or NULL. */
static char *const *level_list(const fs_src *s, int level) {
  if (level == 0 && s->c->tables && s->c->tables[0]) return s->c->tables;
  if (level == 1 && s->records && s->records[0]) return s->records;
  return NULL;
}

/* Files directly in a directory at this level are outside the selection (root files when tables or
 * records are selected; table-level files when records are). */
static int files_allowed(const fs_src *s, int level) {
  int tables = s->c->tables && s->c->tables[0], records = s->records && s->records[0];
  if ((tables || records) && level < 1) return 0;
  if (records && level < 2) return 0;
  return 1;
}

/* Opens the directory `name` below `dirfd` (path already in s->path, length len) and pushes it.
 * `selected`: named in tables/records (a missing one is not an error). */
static void enter_dir(walk_job *w, int dirfd, const char *name, size_t len, int level, int selected) {
  fs_src *s = w->s;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    struct stat st;
    if ((e == ELOOP || e == ENOTDIR) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode)) {
      refuse_link(w, dirfd, name, s->path);
      return;
    }
    if (selected && (e == ENOENT || e == ENOTDIR)) return;
    if (e == ENOENT) return; /* vanished since it was listed */
    char *shown = fs_display(s->path);
    add_refused(w, s->path, fs_errno_code(e),
                fs_strf("cannot open directory \"%s\": %s", shown, strerror(e)));
    free(shown);
    return;
  }
  char *const *list = level_list(s, level);
  if (list) {
    push_frame(s, fd, NULL, list, len, level);
    return;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    char *shown = fs_display(s->path);
    add_refused(w, s->path, fs_errno_code(e),
                fs_strf("cannot read directory \"%s\": %s", shown, strerror(e)));
    free(shown);
    return;
  }
  push_frame(s, -1, d, NULL, len, level);
}

static void walk_work(fs_job *jb) {
  walk_job *w = (walk_job *)jb;
  fs_src *s = w->s;
  while (w->n < w->max) {
    if (fs_pool_canceled(s->pool)) return;
    if (!s->walk_started) {
      s->walk_started = 1;
      path_reserve(s, 0);
      s->path[0] = '\0';
      int fd = dup(s->rootfd);
      if (fd < 0) {
        add_refused(w, ".", FERRY_EIO, fs_strf("cannot read the root: %s", strerror(errno)));
        continue;
      }
      char *const *list = level_list(s, 0);
      if (list) {
        push_frame(s, fd, NULL, list, 0, 0);
        continue;
      }
      /* a fresh open description: readdir position of its own */
      int fd2 = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      close(fd);
      DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
      if (!d) {
        if (fd2 >= 0) close(fd2);
        add_refused(w, ".", FERRY_EIO, fs_strf("cannot read the root: %s", strerror(errno)));
        continue;
      }
      push_frame(s, -1, d, NULL, 0, 0);
      continue;
    }
    if (s->nfr == 0) {
      w->eof = 1;
      return;
    }
    wframe *f = &s->fr[s->nfr - 1];
    if (f->list) {
      const char *nm = f->list[f->idx];
      if (!nm) {
        pop_frame(s);
        continue;
      }
      f->idx++;
      size_t len = set_child(s, f, nm);
      struct stat st;
      if (f->level == 0 && fstatat(f->fd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
          strncmp(nm, "app_fd_", 7) == 0 && nm[7]) {
        nm += 7; /* "app_fd_leave" names the directory "leave" */
        len = set_child(s, f, nm);
      }
      int level = f->level;
      enter_dir(w, f->fd, nm, len, level + 1, 1);
      continue;
    }
    errno = 0;
    struct dirent *de = readdir(f->d);
    if (!de) {
      if (errno) {
        s->path[f->plen] = '\0';
        char *shown = fs_display(f->plen ? s->path : ".");
        add_refused(w, f->plen ? s->path : ".", fs_errno_code(errno),
                    fs_strf("reading directory \"%s\" failed: %s", shown, strerror(errno)));
        free(shown);
      }
      pop_frame(s);
      continue;
    }
    const char *nm = de->d_name;
    if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))) continue;
    if (fs_is_tmp_name(nm) || (f->level == 0 && !strcmp(nm, FS_MARKER))) { /* a ferry sink's files */
      w->skipped_tmp++;
      continue;
    }
    size_t len = set_child(s, f, nm);
    int dfd = dirfd(f->d);
    int level = f->level;
    if (!fs_utf8_valid(nm, strlen(nm))) {
      char *shown = fs_display(s->path);
      add_refused(
          w, s->path, FERRY_EINVAL,
          fs_strf("the name \"%s\" is not valid UTF-8 (shown with \\x escapes); it cannot be carried "
                  "in an item: rename it on the source",
                  shown));
      free(shown);
      continue;
    }
    unsigned char type = de->d_type;
    struct stat st;
    if (type == DT_UNKNOWN) { /* regular files are stat'ed later, and only when the core wants them */
      if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = errno;
        if (e == ENOENT) continue; /* vanished */
        char *shown = fs_display(s->path);
        add_refused(w, s->path, fs_errno_code(e), fs_strf("cannot stat \"%s\": %s", shown, strerror(e)));
        free(shown);
        continue;
      }
      type = S_ISREG(st.st_mode)   ? DT_REG
             : S_ISDIR(st.st_mode) ? DT_DIR
             : S_ISLNK(st.st_mode) ? DT_LNK
                                   : DT_UNKNOWN;
    }
    if (type == DT_DIR) {
      enter_dir(w, dfd, nm, len, level + 1, 0);
      continue;
    }
    if (type == DT_LNK) {
      refuse_link(w, dfd, nm, s->path);
      continue;
    }
    if (!files_allowed(s, level)) continue;
    if (type == DT_REG) {
      fs_entry *e = calloc(1, sizeof *e);
      if (!e) abort();
      e->rel = fs_strndup(s->path, len);
      add_entry(w, e);
      continue;
    }
    char *shown = fs_display(s->path);
    const char *kind = type == DT_FIFO   ? "a named pipe"
                       : type == DT_SOCK ? "a socket"
                       : type == DT_CHR  ? "a character device"
                       : type == DT_BLK  ? "a block device"
                                         : "not a regular file";
    add_refused(w, s->path, FERRY_EINVAL,
                fs_strf("\"%s\" is %s: only regular files are copied", shown, kind));
    free(shown);
  }
}

static void src_pump(fs_src *s);

static void walk_after(fs_job *jb, int status) {
  walk_job *w = (walk_job *)jb;
  fs_src *s = w->s;
  s->walking = 0;
  if (status < 0) return; /* canceled: only at shutdown */
  s->skipped_tmp += w->skipped_tmp;
  if (w->head) {
    if (s->qtail)
      s->qtail->next = w->head;
    else
      s->qhead = w->head;
    s->qtail = w->tail;
    s->qlen += w->n;
    w->head = w->tail = NULL;
  }
  if (w->eof) s->walk_eof = 1;
  src_pump(s);
}

static void walk_release(fs_job *jb) {
  walk_job *w = (walk_job *)jb;
  entries_free(w->head);
  free(w);
}

/* ---- preparing: stat and checksum (thread pool) -----------------------------------------------------------
 * A few entries per job when hashing (files are hashed in parallel), PREP_BATCH entries per job otherwise. */
typedef struct prep_job {
  fs_job j;
  fs_src *s;
  int rootfd, checksum;
  fs_entry *head, *tail;
  size_t n;
} prep_job;

static void prepare_entry(prep_job *p, fs_entry *e) {
  for (int attempt = 0; attempt < 3; attempt++) {
    int fd = fs_open_beneath(p->rootfd, e->rel, p->checksum ? O_RDONLY : O_PATH);
    char *shown = NULL;
    if (fd < 0) {
      if (fd == -ENOENT) return; /* vanished since the walk: nothing to carry */
      shown = fs_display(e->rel);
      e->code = fs_errno_code(-fd);
      e->why = fd == -ELOOP ? fs_strf(
                                  "\"%s\": a component of the path is a symbolic link (changed since the "
                                  "walk?); symbolic links are never followed",
                                  shown)
                            : fs_strf("cannot open \"%s\": %s", shown, strerror(-fd));
      free(shown);
      return;
    }
    struct stat a, b;
    int64_t n = 0;
    int rc = fstat(fd, &a) < 0 ? -errno : 0;
    if (!rc && !S_ISREG(a.st_mode)) rc = -EINVAL;
    if (!rc && !p->checksum) {
      close(fd);
      e->st = a;
      e->prepared = 1;
      return;
    }
    if (!rc) rc = fs_sha256_fd(fd, p->j.pool, e->sha, &n);
    if (!rc && fstat(fd, &b) < 0) rc = -errno;
    close(fd);
    if (rc == -ECANCELED) return;
    if (rc) {
      shown = fs_display(e->rel);
      e->code = rc == -EINVAL ? FERRY_EINVAL : fs_errno_code(-rc);
      e->why = rc == -EINVAL ? fs_strf("\"%s\" is no longer a regular file", shown)
                             : fs_strf("reading \"%s\" failed: %s", shown, strerror(-rc));
      free(shown);
      return;
    }
    if (a.st_size == b.st_size && n == b.st_size && fs_mtime_ns(&a) == fs_mtime_ns(&b)) {
      e->st = b;
      e->hashed = e->prepared = 1;
      return;
    }
    /* written to while we read it: read it again */
  }
  char *shown = fs_display(e->rel);
  e->code = FERRY_EIO;
  e->why = fs_strf("\"%s\" kept changing while it was read (3 tries); run again when it is quiet", shown);
  free(shown);
}

static void prep_work(fs_job *jb) {
  prep_job *p = (prep_job *)jb;
  for (fs_entry *e = p->head; e && !fs_pool_canceled(p->j.pool); e = e->next) prepare_entry(p, e);
}

static void prep_after(fs_job *jb, int status) {
  prep_job *p = (prep_job *)jb;
  fs_src *s = p->s;
  s->jobs--;
  s->preparing -= p->n;
  if (status < 0 || s->stopped) return;
  fs_entry *e = p->head, *next;
  p->head = p->tail = NULL;
  for (; e; e = next) {
    next = e->next;
    e->next = NULL;
    if (!e->prepared && !e->why) { /* vanished, or canceled */
      entry_free(e);
      continue;
    }
    if (s->rtail)
      s->rtail->next = e;
    else
      s->rhead = e;
    s->rtail = e;
  }
  src_pump(s);
}

static void prep_release(fs_job *jb) {
  prep_job *p = (prep_job *)jb;
  entries_free(p->head);
  free(p);
}

/* ---- the loop side ------------------------------------------------------------------------------------- */
static void emit_entry(fs_src *s, fs_entry *e) {
  ferry_item *it = e->why ? error_item(s, e) : file_item(s, e);
  if (e->why) {
    s->refused++;
    ferry_log_debug(s->ins, "refused: %s", e->why);
  }
  entry_free(e);
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
    prep_release(&p->j);
    src_fail_now(s, FERRY_EIO, "cannot queue a stat/checksum job", r);
    return -1;
  }
  s->jobs++;
  return 0;
}

static void src_pump(fs_src *s) {
  if (s->stopped || s->ended || !s->started) return;
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
      char *key = fs_strf("%s/%s", s->name, e->rel);
      int wanted = ferry_source_wanted(s->ins, key);
      if (!wanted) { /* the core will not carry it: emit it as it is, unprepared */
        s->qhead = e->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        entry_free(e);
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
        batch->j.work = prep_work;
        batch->j.after = prep_after;
        batch->j.release = prep_release;
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
    walk_job *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->j.work = walk_work;
    w->j.after = walk_after;
    w->j.release = walk_release;
    w->s = s;
    w->max = WALK_BATCH;
    int r = fs_pool_submit(s->pool, &w->j);
    if (r < 0) {
      walk_release(&w->j);
      src_fail_now(s, FERRY_EIO, "cannot queue a directory walk", r);
      return;
    }
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
  while (s->nfr) pop_frame(s);
  free(s->fr);
  free(s->path);
  entries_free(s->qhead);
  entries_free(s->rhead);
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
  src_pump(s);
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
