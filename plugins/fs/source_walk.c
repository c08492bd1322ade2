/* fs source: the jobs on the thread pool: the walk (one directory level at a time, never following a
 * symbolic link), and preparing entries (stat and checksum). */
#define _GNU_SOURCE
#include "source.h"

/* ---- the walk (thread pool) ---------------------------------------------------------------------------- */

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
    why = ferry_asprintf(
        "\"%s\" is a symbolic link to \"%s\" (%s the root); symbolic links are never followed: "
        "replace it with the file itself, or migrate the directory it points to as a root of its "
        "own",
        shown, t, link_inside(s, rel, target) ? "inside" : "outside");
    free(t);
  } else {
    why = ferry_asprintf("\"%s\" is a symbolic link; symbolic links are never followed", shown);
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

void fs_pop_frame(fs_src *s) {
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
                ferry_asprintf("cannot open directory \"%s\": %s", shown, strerror(e)));
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
                ferry_asprintf("cannot read directory \"%s\": %s", shown, strerror(e)));
    free(shown);
    return;
  }
  push_frame(s, -1, d, NULL, len, level);
}

void fs_walk_work(fs_job *jb) {
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
        add_refused(w, ".", FERRY_EIO, ferry_asprintf("cannot read the root: %s", strerror(errno)));
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
        add_refused(w, ".", FERRY_EIO, ferry_asprintf("cannot read the root: %s", strerror(errno)));
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
        fs_pop_frame(s);
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
                    ferry_asprintf("reading directory \"%s\" failed: %s", shown, strerror(errno)));
        free(shown);
      }
      fs_pop_frame(s);
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
          ferry_asprintf("the name \"%s\" is not valid UTF-8 (shown with \\x escapes); it cannot be carried "
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
        add_refused(w, s->path, fs_errno_code(e), ferry_asprintf("cannot stat \"%s\": %s", shown, strerror(e)));
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
                ferry_asprintf("\"%s\" is %s: only regular files are copied", shown, kind));
    free(shown);
  }
}

void fs_walk_after(fs_job *jb, int status) {
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
  fs_src_pump(s);
}

/* A counting walk's batch: counted and dropped; at the end of the tree the total is announced and the walker
 * starts again from the root for the walk that emits. */
void fs_count_after(fs_job *jb, int status) {
  walk_job *w = (walk_job *)jb;
  fs_src *s = w->s;
  s->counting = 0;
  if (status < 0) return; /* canceled: only at shutdown */
  s->counted_n += (int64_t)w->n;
  fs_entries_free(w->head);
  w->head = w->tail = NULL;
  if (w->eof) {
    while (s->nfr) fs_pop_frame(s);
    s->walk_started = 0;
    s->counted = 1;
    ferry_source_total(s->ins, s->counted_n);
    ferry_log_debug(s->ins, "counted %lld file(s) to carry", (long long)s->counted_n);
  }
  fs_src_pump(s);
}

void fs_walk_release(fs_job *jb) {
  walk_job *w = (walk_job *)jb;
  fs_entries_free(w->head);
  free(w);
}

/* ---- preparing: stat and checksum (thread pool) -----------------------------------------------------------
 * A few entries per job when hashing (files are hashed in parallel), PREP_BATCH entries per job otherwise. */

static void prepare_entry(prep_job *p, fs_entry *e) {
  for (int attempt = 0; attempt < 3; attempt++) {
    int fd = fs_open_beneath(p->rootfd, e->rel, p->checksum ? O_RDONLY : O_PATH);
    char *shown = NULL;
    if (fd < 0) {
      if (fd == -ENOENT) return; /* vanished since the walk: nothing to carry */
      shown = fs_display(e->rel);
      e->code = fs_errno_code(-fd);
      e->why = fd == -ELOOP ? ferry_asprintf(
                                  "\"%s\": a component of the path is a symbolic link (changed since the "
                                  "walk?); symbolic links are never followed",
                                  shown)
                            : ferry_asprintf("cannot open \"%s\": %s", shown, strerror(-fd));
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
      e->why = rc == -EINVAL ? ferry_asprintf("\"%s\" is no longer a regular file", shown)
                             : ferry_asprintf("reading \"%s\" failed: %s", shown, strerror(-rc));
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
  e->why = ferry_asprintf("\"%s\" kept changing while it was read (3 tries); run again when it is quiet", shown);
  free(shown);
}

void fs_prep_work(fs_job *jb) {
  prep_job *p = (prep_job *)jb;
  for (fs_entry *e = p->head; e && !fs_pool_canceled(p->j.pool); e = e->next) prepare_entry(p, e);
}

void fs_prep_after(fs_job *jb, int status) {
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
      fs_entry_free(e);
      continue;
    }
    if (s->rtail)
      s->rtail->next = e;
    else
      s->rhead = e;
    s->rtail = e;
  }
  fs_src_pump(s);
}

void fs_prep_release(fs_job *jb) {
  prep_job *p = (prep_job *)jb;
  fs_entries_free(p->head);
  free(p);
}
