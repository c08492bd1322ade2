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
 *
 * The sink's files: see sink.h.
 */
#define _GNU_SOURCE
#include "sink.h"

/* ---- batches ----------------------------------------------------------------------------------------------
 * One job per item while the thread pool has room (k->max_jobs = UV_THREADPOOL_SIZE, default 4); items that
 * arrive while it is full wait, and go in batches when a job completes (at most BATCH_ITEMS items or about
 * BATCH_BYTES bytes per job, spread over the free places): fewer thread hand-overs for small files, and a
 * large file never waits behind many others. */
#define BATCH_ITEMS 16
#define BATCH_BYTES (4 * 1024 * 1024)

static void batch_work(fs_job *jb) {
  for (copy_job *j = (copy_job *)jb; j && !fs_pool_canceled(jb->pool); j = j->more) fs_copy_one_work(j);
}

static void flush_pending(fs_snk *k);

static void batch_after(fs_job *jb, int status) {
  copy_job *j = (copy_job *)jb;
  fs_snk *k = j->k;
  k->jobs--;
  for (; j; j = j->more) fs_copy_one_after(j, status);
  flush_pending(k);
}

static void batch_release(fs_job *jb) {
  copy_job *j = (copy_job *)jb;
  while (j) {
    copy_job *n = j->more;
    fs_copy_one_free(j);
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
      char *msg = ferry_asprintf("cannot queue the copy: %s", uv_strerror(r));
      for (copy_job *j = head; j; j = j->more) {
        fs_task_fail_msg(j->task, FERRY_EIO, msg);
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
    fs_task_fail_msg(task, bad ? bad : (int)ferry_item_int(it, "error_code", FERRY_EINVAL), error);
    return;
  }
  const char *path = ferry_item_str(it, "path", NULL);
  const char *local = ferry_item_str(it, "local_path", NULL);
  const char *why = fs_path_problem(path);
  if (why) {
    char *shown = fs_display(path ? path : "");
    char *m = ferry_asprintf("refused the path \"%s\": %s (paths stay below the target root)", shown, why);
    fs_task_fail_msg(task, bad ? bad : FERRY_EINVAL, m);
    free(m);
    free(shown);
    return;
  }
  json_t *size = json_object_get(it->body, "size");
  if (!local || !*local || !json_is_integer(size) || json_integer_value(size) < 0) {
    fs_task_fail_msg(task, bad ? bad : FERRY_EINVAL,
                     "the item lacks \"local_path\" or a valid \"size\": it does not describe a readable file");
    return;
  }
  const char *sha = ferry_item_str(it, "sha256", NULL);
  if (sha && !valid_sha(sha)) {
    fs_task_fail_msg(task, bad ? bad : FERRY_EINVAL, "the item's \"sha256\" is not 64 lowercase hex digits");
    return;
  }
  if (k->fs_root_problem) {
    fs_task_fail_msg(task, bad ? bad : FERRY_EIO, k->fs_root_problem);
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
  k->on_conflict = c->on_conflict;
  k->compare = c->compare;
  k->sync_mode = c->sync;
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
    fs_copy_one_free(k->pend_head);
    k->pend_head = n;
  }
  if (k->markerfd >= 0) close(k->markerfd); /* not removed: the run did not reach stop() */
  if (k->rootfd >= 0) close(k->rootfd);
  free(k->fs_root_problem);
  fs_strvec_free(&k->written);
  free(k);
  c->snk = NULL;
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
int fs_root_problem(fs_snk *k, ferry_error *err, char *msg) {
  if (k->mode == FERRY_MODE_RUN) {
    ferry_error_set(err, FERRY_EIO, "fs: %s", msg);
    free(msg);
    return err->code;
  }
  k->fs_root_problem = msg;
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
        return fs_root_problem(k, err,
                               ferry_asprintf("the target root \"%s\" does not exist and its parent is not a "
                                    "writable directory",
                                    root));
      k->root_missing = 1;
      return 0;
    }
  }
  if (k->rootfd < 0) {
    int e = errno;
    return fs_root_problem(k, err,
                           ferry_asprintf("the target root \"%s\" %s%s", root,
                                e == ENOENT    ? "does not exist"
                                : e == ENOTDIR ? "is not a directory"
                                                : strerror(e),
                                 e == ENOENT ? " (create it, or set \"create_root\": true)" : ""));
  }
  struct stat rs;
  if (fstat(k->rootfd, &rs) == 0) k->rootdev = rs.st_dev;
  if (k->mode != FERRY_MODE_VERIFY && faccessat(AT_FDCWD, root, W_OK, AT_EACCESS) < 0)
    return fs_root_problem(k, err,
                           ferry_asprintf("the target root \"%s\" is not writable: %s", root, strerror(errno)));
  if (k->mode == FERRY_MODE_PLAN) {
    struct statvfs vs;
    if (fstatvfs(k->rootfd, &vs) == 0) k->free_bytes = (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
    return 0;
  }
  if (k->mode == FERRY_MODE_RUN) {
    int dirty = 0;
    if (fs_marker_acquire(k, root, &dirty, err) < 0) return err->code;
    if (!dirty) return 0; /* the last run into this root ended normally: no temporary file left behind */
    clean_job *cj = calloc(1, sizeof *cj);
    if (!cj) abort();
    cj->j.work = fs_clean_work;
    cj->j.after = fs_clean_after;
    cj->j.release = fs_clean_release;
    cj->k = k;
    cj->rootfd = k->rootfd;
    memcpy(cj->token, k->token, sizeof cj->token);
    if (fs_pool_submit(k->pool, &cj->j) < 0)
      fs_clean_release(&cj->j);
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
    .sync = fs_snk_sync,
    .stop = snk_stop,
};
