/* fs sink: declarations shared by the sink's files (private to the plugin; see fs.h).
 *
 * Files: sink.c (the outline; batches of items on the thread pool, write/plan/verify, init, start, stop),
 * sink_copy.c (the per-item job: parent directories, the copy into a temporary file, rename), sink_compare.c
 * (what the target holds: the checksum and metadata comparison; plan and verify of one item), sink_sync.c
 * (sync: syncfs or fsync; stale temporary files; the run marker).
 * Functions shared between these files start with fs_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_FS_SINK_H
#define FERRY_FS_SINK_H

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
  char *fs_root_problem;
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

typedef struct clean_job {
  fs_job j;
  fs_snk *k;
  int rootfd;
  char token[9];
  int64_t removed, failed;
  char *first_error;
} clean_job;

/* ---- sink.c -------------------------------------------------------------------------------------------- */
int fs_root_problem(fs_snk *k, ferry_error *err, char *msg);

/* ---- sink_copy.c --------------------------------------------------------------------------------------- */
void fs_strvec_free(strvec *s);
void fs_set_note(copy_job *j, char *note);
void fs_parent_fail(copy_job *j, int e, size_t bad_len, int code_override);
const char *fs_base_name(const char *rel);
void fs_copy_one_work(copy_job *j);
void fs_task_fail_msg(ferry_task *task, int code, const char *msg);
void fs_copy_one_after(copy_job *j, int status);
void fs_copy_one_free(copy_job *j);

/* ---- sink_compare.c ------------------------------------------------------------------------------------ */
int fs_same_content(copy_job *j, int dfd, const char *base, const struct stat *ts, int code);
int fs_meta_differs(const copy_job *j, const struct stat *ts);
void fs_plan_work(copy_job *j);
void fs_verify_work(copy_job *j);

/* ---- sink_sync.c --------------------------------------------------------------------------------------- */
void fs_snk_sync(ferry_instance *ins, ferry_done_fn done, void *arg);
void fs_clean_work(fs_job *jb);
void fs_clean_after(fs_job *jb, int status);
void fs_clean_release(fs_job *jb);
int fs_marker_acquire(fs_snk *k, const char *root, int *dirty, ferry_error *err);

#endif
