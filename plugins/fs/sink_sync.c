/* fs sink: sync (one syncfs of the target file system, or an fsync of each file and directory),
 * the walk that removes stale temporary files, the run marker. */
#define _GNU_SOURCE
#include "sink.h"

/* ---- sync ---------------------------------------------------------------------------------------------- */
typedef struct sync_job {
  fs_job j;
  fs_snk *k;
  int rootfd, mode;
  strvec files;
  ferry_done_fn done;
  void *arg;
  fs_result res;
} sync_job;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void sync_work(fs_job *jb) {
  sync_job *s = (sync_job *)jb;
  if (s->mode == SYNC_SYNCFS && syncfs(s->rootfd) < 0) {
    fs_fail(&s->res, FERRY_EIO, "syncfs of the target file system failed: %s", strerror(errno));
    return;
  }
  /* files, then every directory on their way up (new names and new directories live there) */
  strvec dirs = {0};
  for (size_t i = 0; i < s->files.n && !s->res.code; i++) {
    const char *rel = s->files.v[i];
    int fd = fs_open_beneath(s->rootfd, rel, O_RDONLY);
    if (fd < 0 || fsync(fd) < 0) {
      int e = fd < 0 ? -fd : errno;
      char *shown = fs_display(rel);
      fs_fail(&s->res, FERRY_EIO, "fsync of \"%s\" failed: %s", shown, strerror(e));
      free(shown);
    }
    if (fd >= 0) close(fd);
    for (const char *p = strrchr(rel, '/'); p; p = p > rel ? memrchr(rel, '/', (size_t)(p - rel)) : NULL) {
      char *d = fs_strndup(rel, (size_t)(p - rel));
      if (dirs.n == dirs.cap) {
        dirs.cap = dirs.cap ? dirs.cap * 2 : 64;
        char **nv = realloc(dirs.v, dirs.cap * sizeof *nv);
        if (!nv) abort();
        dirs.v = nv;
      }
      dirs.v[dirs.n++] = d;
    }
  }
  if (dirs.n) qsort(dirs.v, dirs.n, sizeof *dirs.v, cmp_str);
  for (size_t i = 0; i < dirs.n && !s->res.code; i++) {
    if (i && !strcmp(dirs.v[i], dirs.v[i - 1])) continue;
    int fd = fs_open_beneath(s->rootfd, dirs.v[i], O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) < 0) {
      int e = fd < 0 ? -fd : errno;
      char *shown = fs_display(dirs.v[i]);
      fs_fail(&s->res, FERRY_EIO, "fsync of directory \"%s\" failed: %s", shown, strerror(e));
      free(shown);
    }
    if (fd >= 0) close(fd);
  }
  fs_strvec_free(&dirs);
  if (!s->res.code && s->files.n && fsync(s->rootfd) < 0)
    fs_fail(&s->res, FERRY_EIO, "fsync of the target root failed: %s", strerror(errno));
}

static void sync_after(fs_job *jb, int status) {
  sync_job *s = (sync_job *)jb;
  s->k->syncing = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (status < 0)
    ferry_error_set(&e, FERRY_ECANCELED, "fs: sync canceled");
  else if (s->res.code)
    ferry_error_set(&e, s->res.code, "fs: %s", s->res.msg);
  s->done(s->arg, e.code, e.code ? &e : NULL);
  ferry_error_clear(&e);
}

static void sync_release(fs_job *jb) {
  sync_job *s = (sync_job *)jb;
  fs_strvec_free(&s->files);
  fs_result_clear(&s->res);
  free(s);
}

void fs_snk_sync(ferry_instance *ins, ferry_done_fn done, void *arg) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_snk *k = c->snk;
  if (k->sync_mode == SYNC_NONE || k->syncing) {
    ferry_error e = FERRY_ERROR_INIT;
    if (k->syncing) ferry_error_set(&e, FERRY_EINTERNAL, "fs: sync requested while one is running");
    done(arg, e.code, e.code ? &e : NULL);
    ferry_error_clear(&e);
    return;
  }
  sync_job *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->j.work = sync_work;
  s->j.after = sync_after;
  s->j.release = sync_release;
  s->k = k;
  s->rootfd = k->rootfd;
  s->mode = k->sync_mode;
  s->files = k->written;
  memset(&k->written, 0, sizeof k->written);
  s->done = done;
  s->arg = arg;
  int r = fs_pool_submit(k->pool, &s->j);
  if (r < 0) {
    sync_release(&s->j);
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EIO, "fs: cannot queue the sync: %s", uv_strerror(r));
    done(arg, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  k->syncing = 1;
}

/* ---- stale temporary files ----------------------------------------------------------------------------- */

void fs_clean_work(fs_job *jb) {
  clean_job *cj = (clean_job *)jb;
  DIR **stack = NULL;
  size_t n = 0, cap = 0;
  int fd = openat(cj->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return;
  }
  for (;;) {
    if (fs_pool_canceled(cj->j.pool)) break;
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      closedir(d);
      if (!n) {
        d = NULL;
        break;
      }
      d = stack[--n];
      continue;
    }
    const char *nm = de->d_name;
    if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))) continue;
    unsigned char type = de->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_DIR) {
      int cfd = openat(dirfd(d), nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR *cd = cfd >= 0 ? fdopendir(cfd) : NULL;
      if (!cd) {
        if (cfd >= 0) close(cfd);
        continue;
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        DIR **ns = realloc(stack, cap * sizeof *ns);
        if (!ns) abort();
        stack = ns;
      }
      stack[n++] = d;
      d = cd;
      continue;
    }
    if (type != DT_REG || !fs_is_tmp_name(nm)) continue;
    if (!strncmp(nm + strlen(nm) - FS_TOKEN_LEN, cj->token, 8)) continue; /* this run's */
    if (unlinkat(dirfd(d), nm, 0) == 0) {
      cj->removed++;
    } else if (errno != ENOENT) {
      cj->failed++;
      if (!cj->first_error) {
        char *shown = fs_display(nm);
        cj->first_error = ferry_asprintf("%s: %s", shown, strerror(errno));
        free(shown);
      }
    }
  }
  if (d) closedir(d);
  while (n) closedir(stack[--n]);
  free(stack);
}

void fs_clean_after(fs_job *jb, int status) {
  clean_job *cj = (clean_job *)jb;
  cj->k->cleaning = 0;
  if (status < 0) return;
  if (cj->removed)
    ferry_log_info(cj->k->ins, "removed %lld temporary file(s) left by an interrupted run",
                   (long long)cj->removed);
  if (cj->failed)
    ferry_log_warn(cj->k->ins, "could not remove %lld temporary file(s) of an interrupted run (first: %s)",
                   (long long)cj->failed, cj->first_error);
}

void fs_clean_release(fs_job *jb) {
  clean_job *cj = (clean_job *)jb;
  free(cj->first_error);
  free(cj);
}

/* The run marker: FS_MARKER in the target root, created and flock'ed at the start of a run, removed by
 * stop() once every task has completed (no temporary file of the run is left then). Found at the start of
 * the next run, it says that run was killed: temporary files may be left, so the target is walked to remove
 * them. Locked, it says another ferry run is writing into the same root: refused. */
int fs_marker_acquire(fs_snk *k, const char *root, int *dirty, ferry_error *err) {
  for (int attempt = 0; attempt < 5; attempt++) {
    int fd = openat(k->rootfd, FS_MARKER, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = openat(k->rootfd, FS_MARKER, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue; /* removed meanwhile by a run that ended */
      return ferry_error_set(err, fs_errno_code(errno), "fs: cannot create %s/%s: %s", root, FS_MARKER,
                             strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      char pid[32] = "";
      ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
      pid[n > 0 ? n : 0] = '\0';
      pid[strcspn(pid, "\n")] = '\0';
      close(fd);
      return ferry_error_set(
          err, FERRY_ECONFLICT,
          "fs: another ferry run%s%s%s is writing into the target "
          "root %s (it holds %s): wait for it to end; two runs must not write into one root",
          *pid ? " (process " : "", pid, *pid ? ")" : "", root, FS_MARKER);
    }
    struct stat a, b;
    if (fstat(fd, &a) < 0 || fstatat(k->rootfd, FS_MARKER, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
        a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
      close(fd); /* locked a file that an ending run had just removed: again */
      continue;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
      int e = errno;
      close(fd);
      return ferry_error_set(err, fs_errno_code(e), "fs: cannot write %s/%s: %s", root, FS_MARKER,
                             strerror(e));
    }
    if (created) fsync(k->rootfd); /* so that even after a power cut the next run knows to clean up */
    k->markerfd = fd;
    *dirty = !created;
    return 0;
  }
  return ferry_error_set(err, FERRY_EIO, "fs: cannot take %s/%s: it keeps being removed and created", root,
                         FS_MARKER);
}
