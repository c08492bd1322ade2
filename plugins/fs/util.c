/* fs plugin: thread pool jobs, confined opening, names, checksums. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include <openssl/evp.h>

#include "fs.h"

/* ---- pool ---------------------------------------------------------------------------------------------- */
struct fs_pool {
  uv_loop_t *loop;
  uv_mutex_t mu;
  uv_cond_t cv;
  int running; /* work functions inside the thread pool (guarded by mu) */
  size_t pending; /* submitted jobs whose completion has not run yet (loop thread) */
  atomic_int cancel;
  int dead; /* the instance is gone: completions only release */
  fs_job *head; /* pending jobs, for uv_cancel */
};

fs_pool *fs_pool_new(uv_loop_t *loop) {
  fs_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->loop = loop;
  if (uv_mutex_init(&p->mu) < 0) {
    free(p);
    return NULL;
  }
  if (uv_cond_init(&p->cv) < 0) {
    uv_mutex_destroy(&p->mu);
    free(p);
    return NULL;
  }
  atomic_init(&p->cancel, 0);
  return p;
}

static void pool_free(fs_pool *p) {
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
  free(p);
}

static void pool_work(uv_work_t *w) {
  fs_job *j = (fs_job *)w;
  fs_pool *p = j->pool;
  uv_mutex_lock(&p->mu);
  p->running++;
  uv_mutex_unlock(&p->mu);
  if (!atomic_load(&p->cancel)) j->work(j);
  uv_mutex_lock(&p->mu);
  if (--p->running == 0) uv_cond_broadcast(&p->cv);
  uv_mutex_unlock(&p->mu);
}

static void pool_after(uv_work_t *w, int status) {
  fs_job *j = (fs_job *)w;
  fs_pool *p = j->pool;
  if (j->prev)
    j->prev->next = j->next;
  else
    p->head = j->next;
  if (j->next) j->next->prev = j->prev;
  p->pending--;
  if (!p->dead) j->after(j, status);
  j->release(j);
  if (p->dead && p->pending == 0) pool_free(p);
}

int fs_pool_submit(fs_pool *p, fs_job *j) {
  j->pool = p;
  j->prev = NULL;
  j->next = p->head;
  int r = uv_queue_work(p->loop, &j->w, pool_work, pool_after);
  if (r < 0) return r;
  if (p->head) p->head->prev = j;
  p->head = j;
  p->pending++;
  return 0;
}

int fs_pool_canceled(const fs_pool *p) { return atomic_load(&((fs_pool *)p)->cancel); }

void fs_pool_shutdown(fs_pool *p) {
  if (!p) return;
  atomic_store(&p->cancel, 1);
  p->dead = 1;
  for (fs_job *j = p->head; j; j = j->next) uv_cancel((uv_req_t *)&j->w); /* EBUSY when running: fine */
  uv_mutex_lock(&p->mu);
  while (p->running > 0) uv_cond_wait(&p->cv, &p->mu);
  uv_mutex_unlock(&p->mu);
  if (p->pending == 0) pool_free(p);
  /* else: the completions still queued on the loop release their jobs, the last one frees the pool */
}

/* ---- results ------------------------------------------------------------------------------------------- */
int fs_fail(fs_result *r, int code, const char *fmt, ...) {
  if (r->code) return r->code; /* keep the first failure */
  va_list ap;
  va_start(ap, fmt);
  char *m = ferry_vasprintf(fmt, ap);
  va_end(ap);
  free(r->msg);
  r->msg = m;
  r->code = code;
  return code;
}

void fs_result_clear(fs_result *r) {
  free(r->msg);
  r->msg = NULL;
  r->code = 0;
}

int fs_errno_code(int e) {
  switch (e) {
    case ENOENT:
    case ENOTDIR: return FERRY_ENOENT;
    case EACCES:
    case EPERM:
    case EROFS: return FERRY_EPERM;
    case ENOMEM: return FERRY_ENOMEM;
    case ELOOP:
    case ENAMETOOLONG:
    case EINVAL: return FERRY_EINVAL;
    case ECANCELED: return FERRY_ECANCELED;
    default: return FERRY_EIO;
  }
}

/* ---- strings ------------------------------------------------------------------------------------------- */
static void *xcheck(void *p) {
  if (!p) {
    fputs("ferry fs plugin: out of memory\n", stderr);
    abort();
  }
  return p;
}

char *fs_strdup(const char *s) { return xcheck(strdup(s ? s : "")); }
char *fs_strndup(const char *s, size_t n) { return xcheck(strndup(s, n)); }

/* Length of the valid UTF-8 sequence starting at s (n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return len;
}

int fs_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq(u + i, n - i);
    if (!l) return 0;
    i += l;
  }
  return 1;
}

char *fs_display(const char *s) {
  if (!s) return fs_strdup("");
  size_t n = strlen(s);
  char *out = xcheck(malloc(n * 4 + 1));
  size_t o = 0;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq(u + i, n - i);
    if (l == 1 && (u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\')) l = 0;
    if (!l) {
      o += (size_t)sprintf(out + o, "\\x%02X", u[i]);
      i++;
      continue;
    }
    memcpy(out + o, s + i, l);
    o += l;
    i += l;
  }
  out[o] = '\0';
  return out;
}

const char *fs_path_problem(const char *path) {
  if (!path || !*path) return "the path is empty";
  if (path[0] == '/') return "the path is absolute";
  if (strlen(path) >= 4096) return "the path is longer than 4095 bytes";
  const char *p = path;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 0) return "the path has an empty component (\"//\" or a trailing \"/\")";
    if (len == 1 && p[0] == '.') return "the path has a \".\" component";
    if (len == 2 && p[0] == '.' && p[1] == '.')
      return "the path has a \"..\" component: it would leave the root";
    if (len > 255) return "a name in the path is longer than 255 bytes";
    if (!slash) break;
    p = slash + 1;
  }
  return NULL;
}

int fs_is_tmp_name(const char *name) {
  size_t n = strlen(name);
  size_t tail = FS_TMP_TAG_LEN + FS_TOKEN_LEN;
  if (n < tail || name[0] != '.') return 0;
  const char *t = name + n - tail;
  if (memcmp(t, FS_TMP_TAG, FS_TMP_TAG_LEN)) return 0;
  for (size_t i = FS_TMP_TAG_LEN; i < tail; i++)
    if (!strchr("0123456789abcdef", t[i]) || !t[i]) return 0;
  return 1;
}

/* ---- confined opening ---------------------------------------------------------------------------------- */
static atomic_int have_openat2 = 1;

void fs_test_walk_only(void) { atomic_store(&have_openat2, 0); }

#if defined(__linux__) && defined(SYS_openat2)
static int try_openat2(int dirfd, const char *path, int flags, unsigned long long resolve) {
  if (!atomic_load(&have_openat2)) return -ENOSYS;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.resolve = resolve;
  for (int i = 0; i < 8; i++) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (errno == EAGAIN || errno == EINTR) continue; /* a concurrent rename: try again */
    if (errno == ENOSYS || errno == EPERM) { /* old kernel, or filtered by seccomp */
      if (errno == ENOSYS) atomic_store(&have_openat2, 0);
      return -ENOSYS;
    }
    return -errno;
  }
  return -ENOSYS; /* fall back to the component walk */
}
#else
static int try_openat2(int dirfd, const char *path, int flags, unsigned long long resolve) {
  (void)dirfd, (void)path, (void)flags, (void)resolve;
  return -ENOSYS;
}
#endif

/* Opens one component below dirfd without following a link; errno-style result. */
static int open_component(int dirfd, const char *name, int flags) {
  int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  int e = errno;
  if (e == ENOTDIR || e == ELOOP) { /* tell a symbolic link from a file */
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) return -ELOOP;
  }
  return -e;
}

static int walk_open(int rootfd, const char *rel, int flags) {
  int fd = dup(rootfd);
  if (fd < 0) return -errno;
  const char *p = rel;
  char name[256];
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len >= sizeof name) {
      close(fd);
      return -ENAMETOOLONG;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    int nfd = open_component(fd, name, slash ? (O_RDONLY | O_DIRECTORY) : flags);
    close(fd);
    if (nfd < 0) return nfd;
    fd = nfd;
    if (!slash) return fd;
    p = slash + 1;
  }
}

static int open_beneath(int rootfd, const char *rel, int flags);
static int open_nolinks(const char *abs, int flags);

/* Reading a file: ask not to update its atime (O_NOATIME; refused with EPERM unless we own the file or have
 * CAP_FOWNER, then opened without it), so that even the source's atimes stay as they were. */
static int noatime_ok(int flags) {
  return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_PATH | O_DIRECTORY));
}

int fs_open_beneath(int rootfd, const char *rel, int flags) {
  if (noatime_ok(flags)) {
    int fd = open_beneath(rootfd, rel, flags | O_NOATIME);
    if (fd != -EPERM) return fd;
  }
  return open_beneath(rootfd, rel, flags);
}

int fs_open_nolinks(const char *abs, int flags) {
  if (noatime_ok(flags)) {
    int fd = open_nolinks(abs, flags | O_NOATIME);
    if (fd != -EPERM) return fd;
  }
  return open_nolinks(abs, flags);
}

static int open_beneath(int rootfd, const char *rel, int flags) {
#ifdef RESOLVE_BENEATH
  int fd = try_openat2(rootfd, rel, flags | O_NOFOLLOW,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd != -ENOSYS) {
    if (fd == -ENOTDIR || fd == -ELOOP) return walk_open(rootfd, rel, flags); /* for the precise error */
    return fd;
  }
#endif
  return walk_open(rootfd, rel, flags);
}

static int open_nolinks(const char *abs, int flags) {
#ifdef RESOLVE_NO_SYMLINKS
  int fd = try_openat2(AT_FDCWD, abs, flags | O_NOFOLLOW, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd != -ENOSYS) return fd;
#endif
  fd = open(abs, flags | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

int fs_open_parent(int rootfd, const char *rel, int create, uid_t uid, gid_t gid, int *created,
                   size_t *bad_len) {
  int fd = dup(rootfd);
  if (fd < 0) return -errno;
  const char *p = rel;
  char name[256];
  for (;;) {
    const char *slash = strchr(p, '/');
    if (!slash) return fd;
    size_t len = (size_t)(slash - p);
    if (bad_len) *bad_len = (size_t)(slash - rel);
    if (len >= sizeof name) {
      close(fd);
      return -ENAMETOOLONG;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    int nfd = open_component(fd, name, O_RDONLY | O_DIRECTORY);
    if (nfd == -ENOENT && create) {
      if (mkdirat(fd, name, 0777) == 0) {
        if (created) (*created)++;
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
          int e = errno;
          close(fd);
          return -e;
        }
      } else if (errno != EEXIST) {
        int e = errno;
        close(fd);
        return -e;
      }
      nfd = open_component(fd, name, O_RDONLY | O_DIRECTORY);
    }
    close(fd);
    if (nfd < 0) return nfd;
    fd = nfd;
    p = slash + 1;
  }
}

/* ---- checksums ----------------------------------------------------------------------------------------- */
struct fs_sha {
  EVP_MD_CTX *md;
};

fs_sha *fs_sha_new(void) {
  fs_sha *s = xcheck(malloc(sizeof *s));
  s->md = xcheck(EVP_MD_CTX_new());
  if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) xcheck(NULL);
  return s;
}

void fs_sha_update(fs_sha *s, const void *buf, size_t n) {
  if (n) EVP_DigestUpdate(s->md, buf, n);
}

void fs_sha_final(fs_sha *s, char hex[FS_SHA_HEX]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  EVP_DigestFinal_ex(s->md, d, &dl);
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < dl && i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
  fs_sha_free(s);
}

void fs_sha_free(fs_sha *s) {
  if (!s) return;
  EVP_MD_CTX_free(s->md);
  free(s);
}

#define HASH_BUF (256 * 1024)

int fs_sha256_fd(int fd, const fs_pool *pool, char hex[FS_SHA_HEX], int64_t *bytes) {
  struct stat st;
  size_t cap = HASH_BUF;
  if (fstat(fd, &st) == 0 && st.st_size >= 0 && (size_t)st.st_size + 1 < cap)
    cap = (size_t)st.st_size + 1 < 4096 ? 4096 : (size_t)st.st_size + 1;
  char *buf = xcheck(malloc(cap));
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  fs_sha *s = fs_sha_new();
  int64_t total = 0;
  off_t off = 0;
  int rc = 0;
  for (;;) {
    if (pool && fs_pool_canceled(pool)) {
      rc = -ECANCELED;
      break;
    }
    ssize_t n = pread(fd, buf, cap, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    if (n == 0) break;
    fs_sha_update(s, buf, (size_t)n);
    off += n;
    total += n;
  }
  free(buf);
  if (rc) {
    fs_sha_free(s);
    return rc;
  }
  fs_sha_final(s, hex);
  if (bytes) *bytes = total;
  return 0;
}

int64_t fs_mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + (int64_t)st->st_mtim.tv_nsec;
}

void fs_token8(char out[9]) {
  unsigned char b[4];
  if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
    uint64_t x = uv_hrtime() ^ ((uint64_t)getpid() << 20);
    memcpy(b, &x, sizeof b);
  }
  snprintf(out, 9, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
}
