/* fs sink: writes each file item below its root at the item's relative path.
 *
 * One job on the thread pool per item. RUN: open the parent directories one level at a time with
 * O_NOFOLLOW (creating missing ones), look at what the target already has (an identical file is skipped,
 * a different one is handled by on_conflict), copy the source into ".<name>.ferry-tmp-<token>" in the same
 * directory while hashing the bytes, check that the hash equals the item's sha256 and that the source did
 * not change meanwhile, set mode and mtime, rename over the final name. The task completes with
 * FERRY_DONE_SYNC: the core marks it done in the journal only after sync() made the group durable (one
 * syncfs of the target file system by default, or an fsync of each file and directory).
 *
 * No intent is recorded: the write is idempotent and atomic (rename), and an item in doubt after a crash is
 * reconciled by what every write does first anyway: compare with the target. Temporary files of a crashed
 * run are removed at start (a job that walks the target; this run's own token is spared).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs.h"

enum { CONFLICT_OVERWRITE = 0, CONFLICT_SKIP, CONFLICT_FAIL };
enum { CMP_CHECKSUM = 0, CMP_MTIME };
enum { SYNC_SYNCFS = 0, SYNC_FSYNC, SYNC_NONE };
enum { ACT_WRITTEN = 1, ACT_IDENTICAL, ACT_KEPT, ACT_META };

#define COPY_BUF (1024 * 1024)

typedef struct strvec {
  char **v;
  size_t n, cap;
} strvec;

struct fs_snk {
  fs_ctx *c;
  ferry_instance *ins;
  ferry_mode mode;
  fs_pool *pool;
  int rootfd;
  dev_t rootdev;
  int on_conflict, compare, sync_mode;
  uid_t uid;
  gid_t gid;
  char token[9];
  uint32_t seq;
  /* plan / verify: why every item is blocked or mismatched, or "the root would be created" */
  char *root_problem;
  int root_missing;
  int64_t free_bytes, planned_bytes;
  /* files to fsync at the next sync (all in fsync mode; those on another file system in syncfs mode) */
  strvec written;
  int syncing;
  int cleaning;
  /* item jobs: at most max_jobs in the thread pool; items arriving meanwhile wait and go in batches */
  size_t jobs, max_jobs;
  struct copy_job *pend_head, *pend_tail;
  size_t npend;
  int markerfd; /* RUN: FS_MARKER in the root, locked (flock) for the whole run */
};

static void strvec_add(strvec *s, const char *x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    char **nv = realloc(s->v, s->cap * sizeof *nv);
    if (!nv) abort();
    s->v = nv;
  }
  s->v[s->n++] = fs_strdup(x);
}

static void strvec_free(strvec *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- the per-item job ---------------------------------------------------------------------------------- */
typedef struct copy_job {
  fs_job j; /* used on the first item of a batch only */
  struct copy_job *more; /* the next item of the batch */
  fs_pool *pool;
  fs_snk *k; /* used in `after` only: a task keeps its stage, hence the instance, alive */
  ferry_task *task;
  ferry_mode mode;
  int rootfd;
  dev_t rootdev;
  int on_conflict, compare, root_missing;
  uid_t uid;
  gid_t gid;
  char *rel, *local, *item_sha, *state_sha;
  int64_t size, mtime_ns;
  int has_mtime;
  int mode_bits; /* -1: unknown */
  char token[FS_TOKEN_LEN + 1];
  /* results */
  fs_result res;
  int action;
  char sha[FS_SHA_HEX];
  int have_sha;
  int created, foreign_dev;
  char *note;
  int64_t need_bytes;
} copy_job;

static void set_note(copy_job *j, char *note) {
  free(j->note);
  j->note = note;
}

/* Describes a failure to open or create the parent directories of j->rel. */
static void parent_fail(copy_job *j, int e, size_t bad_len, int code_override) {
  char *pre = fs_strndup(j->rel, bad_len);
  char *shown = fs_display(pre);
  free(pre);
  int code = code_override ? code_override : FERRY_ECONFLICT;
  if (e == ELOOP)
    fs_fail(&j->res, code,
            "target directory \"%s\" is a symbolic link: refusing to write through it (symbolic "
            "links are never followed; replace it with a directory)",
            shown);
  else if (e == ENOTDIR)
    fs_fail(&j->res, code, "target \"%s\" exists and is not a directory", shown);
  else
    fs_fail(&j->res, code_override ? code_override : fs_errno_code(e),
            "cannot %s target directory \"%s\": %s", j->mode == FERRY_MODE_RUN ? "create or open" : "open",
            shown, strerror(e));
  free(shown);
}

/* Hashes the source file (when the item carried no checksum). 0, or fails j->res with `code`. */
static int source_sha(copy_job *j, int code) {
  if (j->have_sha) return 0;
  if (j->item_sha) {
    memcpy(j->sha, j->item_sha, FS_SHA_HEX);
    j->have_sha = 1;
    return 0;
  }
  char *shown = fs_display(j->local);
  int fd = fs_open_nolinks(j->local, O_RDONLY);
  int rc = fd < 0 ? fd : fs_sha256_fd(fd, j->pool, j->sha, NULL);
  if (fd >= 0) close(fd);
  if (rc < 0)
    fs_fail(&j->res, code ? code : fs_errno_code(-rc), "cannot read the source file \"%s\": %s", shown,
            rc == -ELOOP ? "a component of the path is a symbolic link" : strerror(-rc));
  else
    j->have_sha = 1;
  free(shown);
  return rc;
}

/* Compares the existing target (regular file `ts`, name `base` in dfd) with the source.
 * 1: same content; 0: differs (note says how); < 0: failure (j->res set with `code` or the errno's). */
static int same_content(copy_job *j, int dfd, const char *base, const struct stat *ts, int code) {
  if ((int64_t)ts->st_size != j->size) {
    set_note(j, fs_strf("target has %lld bytes, source %lld", (long long)ts->st_size, (long long)j->size));
    return 0;
  }
  if (j->compare == CMP_MTIME) {
    if (j->has_mtime && fs_mtime_ns(ts) == j->mtime_ns) return 1;
    set_note(j, fs_strf("same size, different mtime"));
    return 0;
  }
  if (source_sha(j, code) < 0) return -1;
  int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  char tsha[FS_SHA_HEX];
  int rc = fd < 0 ? -errno : fs_sha256_fd(fd, j->pool, tsha, NULL);
  if (fd >= 0) close(fd);
  if (rc < 0) {
    char *shown = fs_display(j->rel);
    fs_fail(&j->res, code ? code : fs_errno_code(-rc), "cannot read the existing target \"%s\": %s", shown,
            strerror(-rc));
    free(shown);
    return -1;
  }
  if (!strcmp(tsha, j->sha)) return 1;
  set_note(j, fs_strf("same size, different content (target sha256 %s, source %s)", tsha, j->sha));
  return 0;
}

static int meta_differs(const copy_job *j, const struct stat *ts) {
  return (j->has_mtime && fs_mtime_ns(ts) != j->mtime_ns) ||
         (j->mode_bits >= 0 && (int)(ts->st_mode & 07777) != j->mode_bits);
}

static const char *base_name(const char *rel) {
  const char *slash = strrchr(rel, '/');
  return slash ? slash + 1 : rel;
}

static struct timespec ns_to_ts(int64_t ns) {
  struct timespec t;
  t.tv_sec = (time_t)(ns / 1000000000);
  t.tv_nsec = (long)(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec--;
  }
  return t;
}

/* The copy itself: source -> temporary file -> rename. */
static void copy_file(copy_job *j, int dfd, const char *base) {
  char *shown = fs_display(j->rel);
  char *lshown = NULL;
  int sfd = fs_open_nolinks(j->local, O_RDONLY), tfd = -1;
  char tmp[300];
  int have_tmp = 0;
  char *buf = NULL;
  fs_sha *sha = NULL;
  if (sfd < 0) {
    lshown = fs_display(j->local);
    fs_fail(&j->res, fs_errno_code(-sfd), "cannot open the source file \"%s\": %s", lshown,
            sfd == -ELOOP ? "a component of the path is a symbolic link (never followed)" : strerror(-sfd));
    goto out;
  }
  struct stat a, b;
  if (fstat(sfd, &a) < 0 || !S_ISREG(a.st_mode)) {
    lshown = fs_display(j->local);
    fs_fail(&j->res, FERRY_EINVAL, "the source \"%s\" is not a regular file", lshown);
    goto out;
  }
  if ((int64_t)a.st_size != j->size || (j->has_mtime && fs_mtime_ns(&a) != j->mtime_ns)) {
    lshown = fs_display(j->local);
    fs_fail(&j->res, FERRY_ECONFLICT,
            "the source file \"%s\" changed after it was listed (now %lld bytes, "
            "listed %lld; or a new mtime): run again to copy its current content",
            lshown, (long long)a.st_size, (long long)j->size);
    goto out;
  }
  size_t blen = strlen(base);
  if (1 + blen + FS_TMP_TAG_LEN + FS_TOKEN_LEN <= 255)
    snprintf(tmp, sizeof tmp, ".%s%s%s", base, FS_TMP_TAG, j->token);
  else
    snprintf(tmp, sizeof tmp, "%s%s", FS_TMP_TAG, j->token);
  tfd =
      openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, j->mode_bits >= 0 ? 0600 : 0666);
  if (tfd < 0) {
    fs_fail(&j->res, fs_errno_code(errno), "cannot create a temporary file beside \"%s\": %s", shown,
            strerror(errno));
    goto out;
  }
  have_tmp = 1;
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(sfd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  size_t cap = j->size + 1 < (int64_t)COPY_BUF ? (size_t)j->size + 1 : COPY_BUF;
  if (cap < 4096) cap = 4096;
  buf = malloc(cap);
  if (!buf) abort();
  sha = fs_sha_new();
  int64_t total = 0;
  for (;;) {
    if (fs_pool_canceled(j->pool)) {
      fs_fail(&j->res, FERRY_ECANCELED, "copy of \"%s\" canceled", shown);
      goto out;
    }
    ssize_t n = read(sfd, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      lshown = fs_display(j->local);
      fs_fail(&j->res, FERRY_EIO, "reading the source file \"%s\" failed: %s", lshown, strerror(errno));
      goto out;
    }
    if (n == 0) break;
    fs_sha_update(sha, buf, (size_t)n);
    int rc = write_all(tfd, buf, (size_t)n);
    if (rc < 0) {
      fs_fail(&j->res, fs_errno_code(-rc), "writing \"%s\" on the target failed: %s%s", shown,
              strerror(-rc),
              rc == -ENOSPC || rc == -EDQUOT ? " (free space on the target, then run again)" : "");
      goto out;
    }
    total += n;
  }
  fs_sha_final(sha, j->sha);
  sha = NULL;
  j->have_sha = 1;
  if (fstat(sfd, &b) < 0 || total != j->size || (int64_t)b.st_size != j->size ||
      fs_mtime_ns(&b) != fs_mtime_ns(&a)) {
    lshown = fs_display(j->local);
    fs_fail(&j->res, FERRY_ECONFLICT,
            "the source file \"%s\" changed while it was copied: run again when it is "
            "quiet",
            lshown);
    goto out;
  }
  if (j->item_sha && strcmp(j->item_sha, j->sha)) {
    lshown = fs_display(j->local);
    fs_fail(&j->res, FERRY_ECONFLICT,
            "checksum mismatch for \"%s\": the bytes written have sha256 %s, the item "
            "says %s (the source changed after it was listed): run again",
            lshown, j->sha, j->item_sha);
    goto out;
  }
  if ((j->uid != (uid_t)-1 || j->gid != (gid_t)-1) && fchown(tfd, j->uid, j->gid) < 0) {
    fs_fail(&j->res, fs_errno_code(errno), "cannot change the owner of \"%s\": %s", shown, strerror(errno));
    goto out;
  }
  if (j->mode_bits >= 0 && fchmod(tfd, (mode_t)j->mode_bits) < 0) {
    fs_fail(&j->res, fs_errno_code(errno), "cannot set the mode of \"%s\": %s", shown, strerror(errno));
    goto out;
  }
  struct timespec times[2] = {a.st_atim, ns_to_ts(j->has_mtime ? j->mtime_ns : fs_mtime_ns(&a))};
  if (futimens(tfd, times) < 0) {
    fs_fail(&j->res, fs_errno_code(errno), "cannot set the mtime of \"%s\": %s", shown, strerror(errno));
    goto out;
  }
  int cr = close(tfd);
  tfd = -1;
  if (cr < 0) {
    fs_fail(&j->res, fs_errno_code(errno), "writing \"%s\" on the target failed: %s", shown,
            strerror(errno));
    goto out;
  }
  int rr;
  if (j->on_conflict == CONFLICT_OVERWRITE)
    rr = renameat(dfd, tmp, dfd, base);
  else
    rr = renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE);
  if (rr < 0) {
    int e = errno;
    if (e == EEXIST && j->on_conflict == CONFLICT_SKIP) {
      j->action = ACT_KEPT;
      set_note(j, fs_strf("a file appeared at the target meanwhile; kept (on_conflict is \"skip\")"));
    } else {
      fs_fail(&j->res, e == EEXIST ? FERRY_ECONFLICT : fs_errno_code(e),
              "cannot rename the temporary file to "
              "\"%s\": %s",
              shown,
              e == EEXIST ? "a file appeared there meanwhile (on_conflict is \"fail\")" : strerror(e));
    }
    goto out;
  }
  have_tmp = 0;
  j->action = ACT_WRITTEN;
out:
  if (sha) fs_sha_free(sha);
  free(buf);
  if (tfd >= 0) close(tfd);
  if (have_tmp) unlinkat(dfd, tmp, 0);
  if (sfd >= 0) close(sfd);
  free(shown);
  free(lshown);
}

static void run_work(copy_job *j) {
  size_t bad = 0;
  int dfd = fs_open_parent(j->rootfd, j->rel, 1, j->uid, j->gid, &j->created, &bad);
  if (dfd < 0) {
    parent_fail(j, -dfd, bad, 0);
    return;
  }
  struct stat ds;
  if (fstat(dfd, &ds) == 0 && ds.st_dev != j->rootdev) j->foreign_dev = 1;
  const char *base = base_name(j->rel);
  char *shown = fs_display(j->rel);
  struct stat ts;
  if (fstatat(dfd, base, &ts, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(ts.st_mode)) {
      fs_fail(&j->res, FERRY_ECONFLICT,
              "the target \"%s\" is a symbolic link: refusing to replace it (remove "
              "it, then run again)",
              shown);
      goto out;
    }
    if (!S_ISREG(ts.st_mode)) {
      fs_fail(&j->res, FERRY_ECONFLICT, "the target \"%s\" exists and is %s", shown,
              S_ISDIR(ts.st_mode) ? "a directory" : "not a regular file");
      goto out;
    }
    int same = same_content(j, dfd, base, &ts, 0);
    if (same < 0) goto out;
    if (same) {
      if (!meta_differs(j, &ts)) {
        j->action = ACT_IDENTICAL;
        goto out;
      }
      struct timespec omit = {0, UTIME_OMIT};
      struct timespec times[2] = {omit, j->has_mtime ? ns_to_ts(j->mtime_ns) : omit};
      if (utimensat(dfd, base, times, AT_SYMLINK_NOFOLLOW) < 0 ||
          (j->mode_bits >= 0 && fchmodat(dfd, base, (mode_t)j->mode_bits, 0) < 0)) {
        fs_fail(&j->res, fs_errno_code(errno), "cannot update mtime and mode of \"%s\": %s", shown,
                strerror(errno));
        goto out;
      }
      j->action = ACT_META;
      goto out;
    }
    if (j->on_conflict == CONFLICT_SKIP) {
      j->action = ACT_KEPT;
      goto out;
    }
    if (j->on_conflict == CONFLICT_FAIL) {
      fs_fail(&j->res, FERRY_ECONFLICT,
              "the target \"%s\" exists and differs (%s); on_conflict is \"fail\": "
              "remove it, or set on_conflict to \"overwrite\" or \"skip\"",
              shown, j->note);
      goto out;
    }
  } else if (errno != ENOENT) {
    fs_fail(&j->res, fs_errno_code(errno), "cannot look at the target \"%s\": %s", shown, strerror(errno));
    goto out;
  }
  copy_file(j, dfd, base);
out:
  free(shown);
  close(dfd);
}

static void plan_work(copy_job *j) {
  char *shown = fs_display(j->rel);
  int dfd = -1;
  if (!j->root_missing) {
    size_t bad = 0;
    dfd = fs_open_parent(j->rootfd, j->rel, 0, (uid_t)-1, (gid_t)-1, NULL, &bad);
    if (dfd < 0 && dfd != -ENOENT) {
      parent_fail(j, -dfd, bad, FERRY_EBLOCKED);
      goto out;
    }
  }
  if (dfd >= 0) {
    const char *base = base_name(j->rel);
    struct stat ts;
    if (fstatat(dfd, base, &ts, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(ts.st_mode) || !S_ISREG(ts.st_mode)) {
        fs_fail(&j->res, FERRY_EBLOCKED, "the target \"%s\" exists and is %s", shown,
                S_ISLNK(ts.st_mode)   ? "a symbolic link (never replaced)"
                : S_ISDIR(ts.st_mode) ? "a directory"
                                       : "not a regular file");
        goto out;
      }
      int same = same_content(j, dfd, base, &ts, FERRY_EBLOCKED);
      if (same < 0) goto out;
      if (same) {
        j->action = meta_differs(j, &ts) ? ACT_META : ACT_IDENTICAL;
        goto out;
      }
      if (j->on_conflict == CONFLICT_SKIP) {
        j->action = ACT_KEPT;
        goto out;
      }
      if (j->on_conflict == CONFLICT_FAIL) {
        fs_fail(&j->res, FERRY_EBLOCKED,
                "the target \"%s\" exists and differs (%s); on_conflict is \"fail\"", shown, j->note);
        goto out;
      }
    }
  } else {
    set_note(j, fs_strf("would create the missing directories"));
  }
  /* would write: the source must be readable as listed */
  int sfd = fs_open_nolinks(j->local, O_RDONLY);
  struct stat a;
  if (sfd < 0 || fstat(sfd, &a) < 0 || !S_ISREG(a.st_mode)) {
    char *ls = fs_display(j->local);
    fs_fail(&j->res, FERRY_EBLOCKED, "cannot read the source file \"%s\": %s", ls,
            sfd == -ELOOP ? "a component of the path is a symbolic link"
            : sfd < 0     ? strerror(-sfd)
                           : "not a regular file");
    free(ls);
    if (sfd >= 0) close(sfd);
    goto out;
  }
  close(sfd);
  j->action = ACT_WRITTEN;
  j->need_bytes = j->size;
out:
  if (dfd >= 0) close(dfd);
  free(shown);
}

static void verify_work(copy_job *j) {
  char *shown = fs_display(j->rel);
  int fd = fs_open_beneath(j->rootfd, j->rel, O_RDONLY);
  if (fd < 0) {
    fs_fail(&j->res, FERRY_EMISMATCH, "the target \"%s\" %s", shown,
            fd == -ENOENT  ? "is missing"
            : fd == -ELOOP ? "is (or lies below) a symbolic link"
                            : strerror(-fd));
    goto out;
  }
  struct stat ts;
  char tsha[FS_SHA_HEX];
  int rc = fstat(fd, &ts) < 0 ? -errno : 0;
  if (!rc && !S_ISREG(ts.st_mode)) {
    fs_fail(&j->res, FERRY_EMISMATCH, "the target \"%s\" is not a regular file", shown);
    close(fd);
    goto out;
  }
  if (!rc && (int64_t)ts.st_size != j->size) {
    fs_fail(&j->res, FERRY_EMISMATCH, "the target \"%s\" has %lld bytes, the source %lld", shown,
            (long long)ts.st_size, (long long)j->size);
    close(fd);
    goto out;
  }
  if (!rc) rc = fs_sha256_fd(fd, j->pool, tsha, NULL);
  close(fd);
  if (rc < 0) {
    fs_fail(&j->res, FERRY_EMISMATCH, "cannot read the target \"%s\": %s", shown, strerror(-rc));
    goto out;
  }
  if (source_sha(j, FERRY_EMISMATCH) < 0) goto out;
  if (strcmp(tsha, j->sha)) {
    int source_changed = j->state_sha && !strcmp(j->state_sha, tsha);
    fs_fail(&j->res, FERRY_EMISMATCH, "the target \"%s\" differs from the source: sha256 %s, source %s%s",
            shown, tsha, j->sha,
            source_changed
                 ? " (the target is what was copied: the source changed since; run again to copy it)"
                 : " (the target was changed or damaged after the copy: run again with on_conflict "
                   "\"overwrite\" to copy it again)");
    goto out;
  }
  if (j->has_mtime && fs_mtime_ns(&ts) != j->mtime_ns)
    set_note(j, fs_strf("same content, different mtime"));
out:
  free(shown);
}

static void copy_one_work(copy_job *j) {
  if (j->mode == FERRY_MODE_PLAN)
    plan_work(j);
  else if (j->mode == FERRY_MODE_VERIFY)
    verify_work(j);
  else
    run_work(j);
}

static void task_fail_msg(ferry_task *task, int code, const char *msg) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, "fs: %s", msg);
  ferry_task_fail(task, &e);
  ferry_error_clear(&e);
}

static const char *action_name(int a) {
  switch (a) {
    case ACT_WRITTEN: return "written";
    case ACT_IDENTICAL: return "identical";
    case ACT_KEPT: return "kept";
    case ACT_META: return "metadata";
    default: return "none";
  }
}

static void copy_one_after(copy_job *j, int status) {
  fs_snk *k = j->k;
  ferry_task *task = j->task;
  j->task = NULL;
  if (status < 0) {
    task_fail_msg(task, FERRY_ECANCELED, "canceled");
    return;
  }
  if (j->res.code) {
    task_fail_msg(task, j->res.code, j->res.msg ? j->res.msg : "failed");
    return;
  }
  json_t *rep = ferry_task_report(task);
  if (j->note) json_object_set_new(rep, "note", json_string(j->note));
  if (j->mode == FERRY_MODE_PLAN) {
    static const char *const would[] = {"", "write", "skip: identical",
                                        "keep: the target differs (on_conflict "
                                        "\"skip\")",
                                        "update mtime and mode: same content"};
    if (j->action == ACT_WRITTEN) {
      k->planned_bytes += j->need_bytes;
      if (k->free_bytes >= 0 && k->planned_bytes > k->free_bytes) {
        char *m = fs_strf(
            "not enough free space on the target file system: the files so far need %lld bytes, "
            "%lld are available",
            (long long)k->planned_bytes, (long long)k->free_bytes);
        task_fail_msg(task, FERRY_EBLOCKED, m);
        free(m);
        return;
      }
      json_object_set_new(rep, "bytes", json_integer(j->need_bytes));
    }
    json_object_set_new(rep, "would", json_string(would[j->action]));
    ferry_task_done(task, j->action == ACT_IDENTICAL || j->action == ACT_KEPT ? FERRY_DONE_SKIPPED : 0);
    return;
  }
  if (j->mode == FERRY_MODE_VERIFY) {
    ferry_task_done(task, 0);
    return;
  }
  json_t *st = ferry_task_state(task); /* small: it is read back for every item of every later run */
  if (j->have_sha) json_object_set_new(st, "sha256", json_string(j->sha));
  json_object_set_new(st, "size", json_integer(j->size));
  json_object_set_new(rep, "action", json_string(action_name(j->action)));
  if (j->created) json_object_set_new(rep, "created_dirs", json_integer(j->created));
  if (j->action == ACT_KEPT) {
    ferry_log_info(k->ins, "kept the different target file \"%s\" (on_conflict \"skip\"): %s", j->rel,
                   j->note ? j->note : "");
    ferry_task_done(task, FERRY_DONE_SKIPPED);
    return;
  }
  /* old -> new path for the cutover's id map (the source's path on this machine -> the target's) */
  if (j->local) {
    char *to = fs_strf("%s/%s", k->c->root, j->rel);
    ferry_error me = FERRY_ERROR_INIT;
    if (ferry_task_map_id(task, "file", j->local, to, &me) < 0)
      ferry_log_warn(k->ins, "file \"%s\": recording its id map: %s", j->rel, me.message ? me.message : "");
    ferry_error_clear(&me);
    json_object_set_new(rep, "target_id", json_string(to));
    free(to);
  }
  unsigned flags = j->action == ACT_IDENTICAL ? FERRY_DONE_SKIPPED : 0;
  if (k->sync_mode != SYNC_NONE) {
    if (k->sync_mode == SYNC_FSYNC || j->foreign_dev) strvec_add(&k->written, j->rel);
    flags |= FERRY_DONE_SYNC;
  }
  ferry_task_done(task, flags);
}

static void copy_one_free(copy_job *j) {
  free(j->rel);
  free(j->local);
  free(j->item_sha);
  free(j->state_sha);
  free(j->note);
  fs_result_clear(&j->res);
  free(j);
}

/* ---- batches ----------------------------------------------------------------------------------------------
 * One job per item while the thread pool has room (k->max_jobs = UV_THREADPOOL_SIZE, default 4); items that
 * arrive while it is full wait, and go in batches when a job completes (at most BATCH_ITEMS items or about
 * BATCH_BYTES bytes per job, spread over the free places): fewer thread hand-overs for small files, and a
 * large file never waits behind many others. */
#define BATCH_ITEMS 16
#define BATCH_BYTES (4 * 1024 * 1024)

static void batch_work(fs_job *jb) {
  for (copy_job *j = (copy_job *)jb; j && !fs_pool_canceled(jb->pool); j = j->more) copy_one_work(j);
}

static void flush_pending(fs_snk *k);

static void batch_after(fs_job *jb, int status) {
  copy_job *j = (copy_job *)jb;
  fs_snk *k = j->k;
  k->jobs--;
  for (; j; j = j->more) copy_one_after(j, status);
  flush_pending(k);
}

static void batch_release(fs_job *jb) {
  copy_job *j = (copy_job *)jb;
  while (j) {
    copy_job *n = j->more;
    copy_one_free(j);
    j = n;
  }
}

static void flush_pending(fs_snk *k) {
  while (k->npend && k->jobs < k->max_jobs) {
    size_t free_places = k->max_jobs - k->jobs;
    size_t n = (k->npend + free_places - 1) / free_places;
    if (n > BATCH_ITEMS) n = BATCH_ITEMS;
    copy_job *head = k->pend_head, *tail = head;
    int64_t bytes = head->size;
    size_t taken = 1;
    while (taken < n && tail->more && bytes + tail->more->size <= BATCH_BYTES) {
      tail = tail->more;
      bytes += tail->size;
      taken++;
    }
    k->pend_head = tail->more;
    if (!k->pend_head) k->pend_tail = NULL;
    k->npend -= taken;
    tail->more = NULL;
    head->j.work = batch_work;
    head->j.after = batch_after;
    head->j.release = batch_release;
    int r = fs_pool_submit(k->pool, &head->j);
    if (r < 0) {
      char *msg = fs_strf("cannot queue the copy: %s", uv_strerror(r));
      for (copy_job *j = head; j; j = j->more) {
        task_fail_msg(j->task, FERRY_EIO, msg);
        j->task = NULL;
      }
      free(msg);
      batch_release(&head->j);
      continue;
    }
    k->jobs++;
  }
}

/* ---- write / plan / verify ----------------------------------------------------------------------------- */
static int valid_sha(const char *s) {
  if (!s || strlen(s) != 64) return 0;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789abcdef", *p)) return 0;
  return 1;
}

static void snk_item(ferry_instance *ins, ferry_task *task) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_snk *k = c->snk;
  const ferry_item *it = ferry_task_item(task);
  ferry_mode mode = ferry_task_mode(task);
  int bad = mode == FERRY_MODE_PLAN ? FERRY_EBLOCKED : mode == FERRY_MODE_VERIFY ? FERRY_EMISMATCH : 0;
  const char *error = ferry_item_str(it, "error", NULL);
  if (error) { /* the source refused this path */
    task_fail_msg(task, bad ? bad : (int)ferry_item_int(it, "error_code", FERRY_EINVAL), error);
    return;
  }
  const char *path = ferry_item_str(it, "path", NULL);
  const char *local = ferry_item_str(it, "local_path", NULL);
  const char *why = fs_path_problem(path);
  if (why) {
    char *shown = fs_display(path ? path : "");
    char *m = fs_strf("refused the path \"%s\": %s (paths stay below the target root)", shown, why);
    task_fail_msg(task, bad ? bad : FERRY_EINVAL, m);
    free(m);
    free(shown);
    return;
  }
  json_t *size = json_object_get(it->body, "size");
  if (!local || !*local || !json_is_integer(size) || json_integer_value(size) < 0) {
    task_fail_msg(task, bad ? bad : FERRY_EINVAL,
                  "the item lacks \"local_path\" or a valid \"size\": it does not describe a readable file");
    return;
  }
  const char *sha = ferry_item_str(it, "sha256", NULL);
  if (sha && !valid_sha(sha)) {
    task_fail_msg(task, bad ? bad : FERRY_EINVAL, "the item's \"sha256\" is not 64 lowercase hex digits");
    return;
  }
  if (k->root_problem) {
    task_fail_msg(task, bad ? bad : FERRY_EIO, k->root_problem);
    return;
  }
  copy_job *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->k = k;
  j->pool = k->pool;
  j->task = task;
  j->mode = mode;
  j->rootfd = k->rootfd;
  j->rootdev = k->rootdev;
  /* ferry run --repair: verify found the target file different: write it again, judged by its bytes */
  j->on_conflict = ferry_task_repair(task) ? CONFLICT_OVERWRITE : k->on_conflict;
  j->compare = ferry_task_repair(task) ? CMP_CHECKSUM : k->compare;
  if (ferry_task_repair(task)) json_object_set_new(ferry_task_report(task), "repaired", json_true());
  j->root_missing = k->root_missing;
  j->uid = k->uid;
  j->gid = k->gid;
  j->rel = fs_strdup(path);
  j->local = fs_strdup(local);
  j->item_sha = sha ? fs_strdup(sha) : NULL;
  j->size = (int64_t)json_integer_value(size);
  json_t *mt = json_object_get(it->body, "mtime_ns");
  j->has_mtime = json_is_integer(mt);
  j->mtime_ns = j->has_mtime ? (int64_t)json_integer_value(mt) : 0;
  json_t *m = json_object_get(it->body, "mode");
  j->mode_bits = json_is_integer(m) ? (int)(json_integer_value(m) & 07777) : -1;
  if (mode == FERRY_MODE_VERIFY) {
    json_t *ss = json_object_get(ferry_task_state(task), "sha256");
    if (json_is_string(ss)) j->state_sha = fs_strdup(json_string_value(ss));
  }
  snprintf(j->token, sizeof j->token, "%s%08x", k->token, k->seq++);
  if (k->pend_tail)
    k->pend_tail->more = j;
  else
    k->pend_head = j;
  k->pend_tail = j;
  k->npend++;
  flush_pending(k);
}

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
  strvec_free(&dirs);
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
  strvec_free(&s->files);
  fs_result_clear(&s->res);
  free(s);
}

static void snk_sync(ferry_instance *ins, ferry_done_fn done, void *arg) {
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
typedef struct clean_job {
  fs_job j;
  fs_snk *k;
  int rootfd;
  char token[9];
  int64_t removed, failed;
  char *first_error;
} clean_job;

static void clean_work(fs_job *jb) {
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
        cj->first_error = fs_strf("%s: %s", shown, strerror(errno));
        free(shown);
      }
    }
  }
  if (d) closedir(d);
  while (n) closedir(stack[--n]);
  free(stack);
}

static void clean_after(fs_job *jb, int status) {
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

static void clean_release(fs_job *jb) {
  clean_job *cj = (clean_job *)jb;
  free(cj->first_error);
  free(cj);
}

/* ---- start / init -------------------------------------------------------------------------------------- */
static int parse_id(const char *s, size_t len, int group, unsigned *out, ferry_error *err) {
  char name[256];
  if (len == 0 || len >= sizeof name)
    return ferry_error_set(err, FERRY_ECONFIG, "fs: option \"owner\": empty or too long %s",
                           group ? "group" : "user");
  memcpy(name, s, len);
  name[len] = '\0';
  char *end;
  errno = 0;
  unsigned long v = strtoul(name, &end, 10);
  if (!*end && !errno && v < 0xffffffffUL) {
    *out = (unsigned)v;
    return 0;
  }
  char buf[16384];
  if (group) {
    struct group g, *res = NULL;
    if (getgrnam_r(name, &g, buf, sizeof buf, &res) == 0 && res) {
      *out = (unsigned)res->gr_gid;
      return 0;
    }
  } else {
    struct passwd p, *res = NULL;
    if (getpwnam_r(name, &p, buf, sizeof buf, &res) == 0 && res) {
      *out = (unsigned)res->pw_uid;
      return 0;
    }
  }
  return ferry_error_set(err, FERRY_ECONFIG, "fs: option \"owner\": no %s named \"%s\" on this machine",
                         group ? "group" : "user", name);
}

int fs_sink_init(fs_ctx *c, ferry_error *err) {
  fs_snk *k = calloc(1, sizeof *k);
  if (!k) return ferry_error_set(err, FERRY_ENOMEM, "fs: out of memory");
  c->snk = k;
  k->c = c;
  k->ins = c->ins;
  k->mode = ferry_instance_mode(c->ins);
  k->rootfd = -1;
  k->markerfd = -1;
  k->uid = (uid_t)-1;
  k->gid = (gid_t)-1;
  k->free_bytes = -1;
  const char *oc = c->on_conflict ? c->on_conflict : "overwrite";
  if (!strcmp(oc, "overwrite"))
    k->on_conflict = CONFLICT_OVERWRITE;
  else if (!strcmp(oc, "skip"))
    k->on_conflict = CONFLICT_SKIP;
  else if (!strcmp(oc, "fail"))
    k->on_conflict = CONFLICT_FAIL;
  else
    return ferry_error_set(err, FERRY_ECONFIG,
                           "fs: option \"on_conflict\" must be \"overwrite\", \"skip\" or "
                           "\"fail\" (is \"%s\")",
                           oc);
  const char *cmp = c->compare ? c->compare : "checksum";
  if (!strcmp(cmp, "checksum"))
    k->compare = CMP_CHECKSUM;
  else if (!strcmp(cmp, "mtime"))
    k->compare = CMP_MTIME;
  else
    return ferry_error_set(err, FERRY_ECONFIG,
                           "fs: option \"compare\" must be \"checksum\" or \"mtime\" (is \"%s\")", cmp);
  const char *sm = c->sync ? c->sync : "syncfs";
  if (!strcmp(sm, "syncfs"))
    k->sync_mode = SYNC_SYNCFS;
  else if (!strcmp(sm, "fsync"))
    k->sync_mode = SYNC_FSYNC;
  else if (!strcmp(sm, "none"))
    k->sync_mode = SYNC_NONE;
  else
    return ferry_error_set(err, FERRY_ECONFIG,
                           "fs: option \"sync\" must be \"syncfs\", \"fsync\" or \"none\" (is "
                           "\"%s\")",
                           sm);
  if (c->owner && *c->owner) {
    const char *colon = strchr(c->owner, ':');
    size_t ulen = colon ? (size_t)(colon - c->owner) : strlen(c->owner);
    unsigned v;
    if (ulen) {
      if (parse_id(c->owner, ulen, 0, &v, err) < 0) return err->code;
      k->uid = (uid_t)v;
    }
    if (colon) {
      if (parse_id(colon + 1, strlen(colon + 1), 1, &v, err) < 0) return err->code;
      k->gid = (gid_t)v;
    }
  }
  const char *tp = getenv("UV_THREADPOOL_SIZE");
  long tps = tp && *tp ? strtol(tp, NULL, 10) : 0;
  k->max_jobs = tps > 0 && tps <= 1024 ? (size_t)tps : 4;
  fs_token8(k->token);
  return 0;
}

void fs_sink_fini(fs_ctx *c) {
  fs_snk *k = c->snk;
  if (!k) return;
  fs_pool_shutdown(k->pool);
  while (k->pend_head) { /* none: every task completes before the stage ends */
    copy_job *n = k->pend_head->more;
    copy_one_free(k->pend_head);
    k->pend_head = n;
  }
  if (k->markerfd >= 0) close(k->markerfd); /* not removed: the run did not reach stop() */
  if (k->rootfd >= 0) close(k->rootfd);
  free(k->root_problem);
  strvec_free(&k->written);
  free(k);
  c->snk = NULL;
}

/* The run marker: FS_MARKER in the target root, created and flock'ed at the start of a run, removed by
 * stop() once every task has completed (no temporary file of the run is left then). Found at the start of
 * the next run, it says that run was killed: temporary files may be left, so the target is walked to remove
 * them. Locked, it says another ferry run is writing into the same root: refused. */
static int marker_acquire(fs_snk *k, const char *root, int *dirty, ferry_error *err) {
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

static void snk_stop(ferry_instance *ins) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_snk *k = c->snk;
  if (!k || k->markerfd < 0) return;
  unlinkat(k->rootfd, FS_MARKER, 0); /* while still locked */
  close(k->markerfd);
  k->markerfd = -1;
}

/* Plan and verify never fail the stage for the root: they say why for every item. */
static int root_problem(fs_snk *k, ferry_error *err, char *msg) {
  if (k->mode == FERRY_MODE_RUN) {
    ferry_error_set(err, FERRY_EIO, "fs: %s", msg);
    free(msg);
    return err->code;
  }
  k->root_problem = msg;
  return 0;
}

static int snk_start(ferry_instance *ins, ferry_error *err) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_snk *k = c->snk;
  k->pool = fs_pool_new(ferry_instance_loop(ins));
  if (!k->pool) return ferry_error_set(err, FERRY_ENOMEM, "fs: out of memory");
  const char *root = c->root;
  k->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (k->rootfd < 0 && errno == ENOENT && c->create_root) {
    if (k->mode == FERRY_MODE_RUN) {
      if (mkdir(root, 0777) < 0 && errno != EEXIST)
        return ferry_error_set(err, fs_errno_code(errno),
                               "fs: cannot create the target root \"%s\": %s "
                               "(create_root makes one level; does its parent exist?)",
                               root, strerror(errno));
      if ((k->uid != (uid_t)-1 || k->gid != (gid_t)-1) && lchown(root, k->uid, k->gid) < 0)
        return ferry_error_set(err, fs_errno_code(errno), "fs: cannot change the owner of \"%s\": %s", root,
                               strerror(errno));
      ferry_log_info(ins, "created the target root %s", root);
      k->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (k->mode == FERRY_MODE_PLAN) {
      char *parent = fs_strdup(root);
      char *slash = strrchr(parent, '/');
      while (slash && slash > parent && slash[1] == '\0') { /* trailing slashes */
        *slash = '\0';
        slash = strrchr(parent, '/');
      }
      const char *pd = slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".";
      int ok = access(pd, W_OK) == 0;
      struct statvfs vs;
      if (ok && statvfs(pd, &vs) == 0) k->free_bytes = (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
      free(parent);
      if (!ok)
        return root_problem(k, err,
                            fs_strf("the target root \"%s\" does not exist and its parent is not a "
                                    "writable directory",
                                    root));
      k->root_missing = 1;
      return 0;
    }
  }
  if (k->rootfd < 0) {
    int e = errno;
    return root_problem(k, err,
                        fs_strf("the target root \"%s\" %s%s", root,
                                e == ENOENT    ? "does not exist"
                                : e == ENOTDIR ? "is not a directory"
                                                : strerror(e),
                                 e == ENOENT ? " (create it, or set \"create_root\": true)" : ""));
  }
  struct stat rs;
  if (fstat(k->rootfd, &rs) == 0) k->rootdev = rs.st_dev;
  if (k->mode != FERRY_MODE_VERIFY && faccessat(AT_FDCWD, root, W_OK, AT_EACCESS) < 0)
    return root_problem(k, err,
                        fs_strf("the target root \"%s\" is not writable: %s", root, strerror(errno)));
  if (k->mode == FERRY_MODE_PLAN) {
    struct statvfs vs;
    if (fstatvfs(k->rootfd, &vs) == 0) k->free_bytes = (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
    return 0;
  }
  if (k->mode == FERRY_MODE_RUN) {
    int dirty = 0;
    if (marker_acquire(k, root, &dirty, err) < 0) return err->code;
    if (!dirty) return 0; /* the last run into this root ended normally: no temporary file left behind */
    clean_job *cj = calloc(1, sizeof *cj);
    if (!cj) abort();
    cj->j.work = clean_work;
    cj->j.after = clean_after;
    cj->j.release = clean_release;
    cj->k = k;
    cj->rootfd = k->rootfd;
    memcpy(cj->token, k->token, sizeof cj->token);
    if (fs_pool_submit(k->pool, &cj->j) < 0)
      clean_release(&cj->j);
    else
      k->cleaning = 1;
  }
  return 0;
}

const ferry_sink_ops fs_sink_ops = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_FILE,
    .start = snk_start,
    .write = snk_item,
    .plan = snk_item,
    .verify = snk_item,
    .sync = snk_sync,
    .stop = snk_stop,
};
