/* fs sink: what the target holds: the source's checksum, same content, same metadata; plan and
 * verify of one item. */
#define _GNU_SOURCE
#include "sink.h"

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
int fs_same_content(copy_job *j, int dfd, const char *base, const struct stat *ts, int code) {
  if ((int64_t)ts->st_size != j->size) {
    fs_set_note(j, ferry_asprintf("target has %lld bytes, source %lld", (long long)ts->st_size, (long long)j->size));
    return 0;
  }
  if (j->compare == CMP_MTIME) {
    if (j->has_mtime && fs_mtime_ns(ts) == j->mtime_ns) return 1;
    fs_set_note(j, ferry_asprintf("same size, different mtime"));
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
  fs_set_note(j, ferry_asprintf("same size, different content (target sha256 %s, source %s)", tsha, j->sha));
  return 0;
}

int fs_meta_differs(const copy_job *j, const struct stat *ts) {
  return (j->has_mtime && fs_mtime_ns(ts) != j->mtime_ns) ||
         (j->mode_bits >= 0 && (int)(ts->st_mode & 07777) != j->mode_bits);
}

void fs_plan_work(copy_job *j) {
  char *shown = fs_display(j->rel);
  int dfd = -1;
  if (!j->root_missing) {
    size_t bad = 0;
    dfd = fs_open_parent(j->rootfd, j->rel, 0, (uid_t)-1, (gid_t)-1, NULL, &bad);
    if (dfd < 0 && dfd != -ENOENT) {
      fs_parent_fail(j, -dfd, bad, FERRY_EBLOCKED);
      goto out;
    }
  }
  if (dfd >= 0) {
    const char *base = fs_base_name(j->rel);
    struct stat ts;
    if (fstatat(dfd, base, &ts, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(ts.st_mode) || !S_ISREG(ts.st_mode)) {
        fs_fail(&j->res, FERRY_EBLOCKED, "the target \"%s\" exists and is %s", shown,
                S_ISLNK(ts.st_mode)   ? "a symbolic link (never replaced)"
                : S_ISDIR(ts.st_mode) ? "a directory"
                                       : "not a regular file");
        goto out;
      }
      int same = fs_same_content(j, dfd, base, &ts, FERRY_EBLOCKED);
      if (same < 0) goto out;
      if (same) {
        j->action = fs_meta_differs(j, &ts) ? ACT_META : ACT_IDENTICAL;
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
    fs_set_note(j, ferry_asprintf("would create the missing directories"));
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

void fs_verify_work(copy_job *j) {
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
    fs_set_note(j, ferry_asprintf("same content, different mtime"));
out:
  free(shown);
}
