/* fs plugin: internal declarations shared by its files (fs.c, source*.c, sink*.c, util.c). Nothing here is
 * exported: the module's only public symbol is the descriptor ferry_plugin_fs (see fs.c). */
#ifndef FERRY_PLUGIN_FS_H
#define FERRY_PLUGIN_FS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <ferry/ferry.h>

/* Temporary files of the sink: ".<name>.ferry-tmp-<16 hex>" (or ".ferry-tmp-<16 hex>" when the name is too
 * long for that), in the directory of the final file. */
#define FS_TMP_TAG ".ferry-tmp-"
#define FS_TMP_TAG_LEN 11
#define FS_TOKEN_LEN 16
#define FS_SHA_HEX 65 /* 64 hex digits and the NUL */
/* The sink's run marker in its root (see sink_sync.c); the source never emits it. */
#define FS_MARKER ".ferry-sink.lock"

/* ---- jobs on the libuv thread pool ------------------------------------------------------------------------
 * Every blocking file system call runs in a job. A job may still be queued or running when the instance is
 * finalised (a source stopped by --limit while it hashes a large file): fini() calls fs_pool_shutdown(),
 * which cancels what has not started, asks running jobs to stop (fs_pool_canceled), waits for them to leave
 * the thread pool, and leaves the pool to be freed by the last job's completion on the loop. A job's `after`
 * callback is therefore only called while the instance exists; `release` is always called. */
typedef struct fs_pool fs_pool;
typedef struct fs_job fs_job;
struct fs_job {
  uv_work_t w;
  fs_pool *pool;
  void (*work)(fs_job *j); /* thread pool */
  void (*after)(fs_job *j, int status); /* loop thread; status is a libuv code (UV_ECANCELED) */
  void (*release)(fs_job *j); /* frees the job; loop thread */
  fs_job *prev, *next;
};

fs_pool *fs_pool_new(uv_loop_t *loop);
int fs_pool_submit(fs_pool *p, fs_job *j); /* 0 or a negative libuv code (the job is not queued then) */
int fs_pool_canceled(const fs_pool *p); /* for work functions: 1 = stop early */
void fs_pool_shutdown(fs_pool *p); /* fini: see above; p must not be used afterwards */

/* ---- results of a job ---------------------------------------------------------------------------------- */
typedef struct fs_result {
  int code; /* 0 or FERRY_E* */
  char *msg; /* user message (malloc), when code != 0 */
} fs_result;

int fs_fail(fs_result *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fs_result_clear(fs_result *r);
int fs_errno_code(int e); /* errno -> FERRY_E* */

/* ---- strings ------------------------------------------------------------------------------------------- */
char *fs_strdup(const char *s);
char *fs_strndup(const char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8 (no overlong forms, no surrogates). */
int fs_utf8_valid(const char *s, size_t n);
/* A copy of `s` safe to print: control characters, DEL, backslash and bytes that are not valid UTF-8 as
 * \xNN (so that a name is shown exactly, never mangled). */
char *fs_display(const char *s);
/* Checks a relative path as items carry it: not empty, not absolute, '/'-separated components that are
 * neither empty, "." nor ".."; returns NULL when fine, else a static reason. */
const char *fs_path_problem(const char *path);
/* 1 when `name` is a temporary file name of the sink (any run). */
int fs_is_tmp_name(const char *name);

/* ---- confined opening -------------------------------------------------------------------------------------
 * Open `rel` (checked with fs_path_problem) below the directory `rootfd`, never following a symbolic link
 * and never leaving it (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it, else one
 * component at a time with O_NOFOLLOW). Returns an fd or -errno (-ELOOP: a component is a symbolic link). */
int fs_open_beneath(int rootfd, const char *rel, int flags);
/* Unit tests only: from now on, open as on a kernel without openat2 (the component walk). */
void fs_test_walk_only(void);
/* Opens an absolute path with no symbolic link anywhere in it. Returns an fd or -errno. */
int fs_open_nolinks(const char *abs, int flags);
/* Opens the directory that holds `rel` below rootfd (the components before the last one), creating the
 * missing ones when `create` (mode 0777 & ~umask; chown to uid/gid when not -1); `created` counts them.
 * Returns an fd or -errno; *bad_len (when not NULL) is set to the length of the prefix of `rel` that
 * failed. */
int fs_open_parent(int rootfd, const char *rel, int create, uid_t uid, gid_t gid, int *created,
                   size_t *bad_len);

/* ---- checksums (libcrypto EVP, SHA-256) ---------------------------------------------------------------- */
/* Reads fd to its end from offset 0, hashing; *bytes gets the length read. Returns 0, -errno, or -ECANCELED
 * when the pool was shut down meanwhile. */
int fs_sha256_fd(int fd, const fs_pool *pool, char hex[FS_SHA_HEX], int64_t *bytes);
/* The same for bytes already in memory, in pieces: */
typedef struct fs_sha fs_sha;
fs_sha *fs_sha_new(void);
void fs_sha_update(fs_sha *s, const void *buf, size_t n);
void fs_sha_final(fs_sha *s, char hex[FS_SHA_HEX]); /* and frees s */
void fs_sha_free(fs_sha *s);

int64_t fs_mtime_ns(const struct stat *st);
/* Random hex token of FS_TOKEN_LEN / 2 bytes' worth of digits (8 hex), for temporary names. */
void fs_token8(char out[9]);

/* ---- the plugin's instance context (options first: the core writes them) ------------------------------- */
typedef struct fs_src fs_src;
typedef struct fs_snk fs_snk;

/* values of the sink's enum options (written by the core; fs.c has the names) */
enum { CONFLICT_OVERWRITE = 0, CONFLICT_SKIP, CONFLICT_FAIL };
enum { CMP_CHECKSUM = 0, CMP_MTIME };
enum { SYNC_SYNCFS = 0, SYNC_FSYNC, SYNC_NONE };

typedef struct fs_ctx {
  /* options */
  char *root;
  char *name;
  char **tables;
  char **records;
  char *records_file;
  int checksum;
  int count;
  int on_conflict; /* CONFLICT_* */
  int compare;     /* CMP_* */
  int sync;        /* SYNC_* */
  int create_root;
  char *owner;
  /* runtime */
  ferry_instance *ins;
  fs_src *src;
  fs_snk *snk;
} fs_ctx;

extern const ferry_source_ops fs_source_ops;
extern const ferry_sink_ops fs_sink_ops;
int fs_source_init(fs_ctx *c, ferry_error *err);
void fs_source_fini(fs_ctx *c);
int fs_sink_init(fs_ctx *c, ferry_error *err);
void fs_sink_fini(fs_ctx *c);

#endif
