/* fs sink: the per-item job (thread pool): open the parents (creating them), compare with the
 * target, copy into a temporary file while hashing, check, set mode and mtime, rename; its
 * completion on the loop. */
#define _GNU_SOURCE
#include "sink.h"

static void strvec_add(strvec *s, const char *x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    char **nv = realloc(s->v, s->cap * sizeof *nv);
    if (!nv) abort();
    s->v = nv;
  }
  s->v[s->n++] = fs_strdup(x);
}

void fs_strvec_free(strvec *s) {
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
void fs_set_note(copy_job *j, char *note) {
  free(j->note);
  j->note = note;
}

/* Describes a failure to open or create the parent directories of j->rel. */
void fs_parent_fail(copy_job *j, int e, size_t bad_len, int code_override) {
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
const char *fs_base_name(const char *rel) {
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
      fs_set_note(j, ferry_asprintf("a file appeared at the target meanwhile; kept (on_conflict is \"skip\")"));
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
    fs_parent_fail(j, -dfd, bad, 0);
    return;
  }
  struct stat ds;
  if (fstat(dfd, &ds) == 0 && ds.st_dev != j->rootdev) j->foreign_dev = 1;
  const char *base = fs_base_name(j->rel);
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
    int same = fs_same_content(j, dfd, base, &ts, 0);
    if (same < 0) goto out;
    if (same) {
      if (!fs_meta_differs(j, &ts)) {
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

void fs_copy_one_work(copy_job *j) {
  if (j->mode == FERRY_MODE_PLAN)
    fs_plan_work(j);
  else if (j->mode == FERRY_MODE_VERIFY)
    fs_verify_work(j);
  else
    run_work(j);
}

void fs_task_fail_msg(ferry_task *task, int code, const char *msg) {
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

void fs_copy_one_after(copy_job *j, int status) {
  fs_snk *k = j->k;
  ferry_task *task = j->task;
  j->task = NULL;
  if (status < 0) {
    fs_task_fail_msg(task, FERRY_ECANCELED, "canceled");
    return;
  }
  if (j->res.code) {
    fs_task_fail_msg(task, j->res.code, j->res.msg ? j->res.msg : "failed");
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
        char *m = ferry_asprintf(
            "not enough free space on the target file system: the files so far need %lld bytes, "
            "%lld are available",
            (long long)k->planned_bytes, (long long)k->free_bytes);
        fs_task_fail_msg(task, FERRY_EBLOCKED, m);
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
    char *to = ferry_asprintf("%s/%s", k->c->root, j->rel);
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

void fs_copy_one_free(copy_job *j) {
  free(j->rel);
  free(j->local);
  free(j->item_sha);
  free(j->state_sha);
  free(j->note);
  fs_result_clear(&j->res);
  free(j);
}
