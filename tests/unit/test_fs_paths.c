/* fs plugin, path confinement (plugins/fs/util.c): the checks every item path goes through before the source
 * reads or the sink writes anything, against real files, directories and symbolic links in a temporary
 * directory. Every case runs twice: with openat2 (when the kernel has it) and with the component walk used
 * on kernels without it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"
#include "mock_core.h"

static char tmp[PATH_MAX], root[PATH_MAX + 8], outside[PATH_MAX + 16];

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f)) {
    perror(path);
    exit(2);
  }
}

static void mk(const char *fmt, const char *a) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, fmt, a);
  if (mkdir(p, 0755)) {
    perror(p);
    exit(2);
  }
}

static void ln(const char *target, const char *rel) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  if (symlink(target, p)) {
    perror(p);
    exit(2);
  }
}

static char *slurp_fd(int fd) {
  static char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static void setup(void) {
  snprintf(tmp, sizeof tmp, "%s/ferry-unit-fs.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(root, sizeof root, "%s/root", tmp);
  snprintf(outside, sizeof outside, "%s/outside", tmp);
  mk("%s", root);
  mk("%s", outside);
  mk("%s/a", root);
  mk("%s/a/b", root);
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/a/b/file.txt", root);
  put(p, "inside");
  snprintf(p, sizeof p, "%s/secret", outside);
  put(p, "outside");
  snprintf(p, sizeof p, "%s/a/\xff\xfe name\n", root); /* not UTF-8, a space and a newline */
  put(p, "odd");
  snprintf(p, sizeof p, "%s/a/caf\xc3\xa9", root); /* NFC "café" */
  put(p, "nfc");
  snprintf(p, sizeof p, "%s/a\\..\\b", root); /* backslashes are not separators */
  put(p, "backslash");
  ln(outside, "out");               /* a directory link leaving the root */
  ln("../..", "a/up");              /* a relative link climbing out */
  ln("b", "a/in");                  /* a link that stays inside: refused all the same */
  ln("../outside/secret", "secretlink"); /* the last component is a link leaving the root */
  ln("a/b/file.txt", "filelink");   /* the last component is a link inside */
  ln("/nonexistent-ferry-target", "dangling");
}

static void teardown(void) {
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
}

static void check_problem(const char *path, int refused, const char *why_part) {
  const char *why = fs_path_problem(path);
  char *shown = fs_display(path ? path : "(null)");
  if (refused) {
    MOCK_CHECK(why != NULL, "path \"%s\" must be refused", shown);
    if (why && why_part) MOCK_CHECK(strstr(why, why_part) != NULL, "path \"%s\": reason \"%s\" lacks \"%s\"", shown,
                                    why, why_part);
  } else {
    MOCK_CHECK(why == NULL, "path \"%s\" must be accepted, refused with \"%s\"", shown, why ? why : "");
  }
  free(shown);
}

static void test_path_problem(void) {
  check_problem(NULL, 1, "empty");
  check_problem("", 1, "empty");
  check_problem("/etc/passwd", 1, "absolute");
  check_problem("//etc/passwd", 1, "absolute");
  check_problem("..", 1, "\"..\"");
  check_problem("../outside/secret", 1, "leave the root");
  check_problem("a/../../outside/secret", 1, "\"..\"");
  check_problem("a/b/..", 1, "\"..\"");
  check_problem(".", 1, "\".\"");
  check_problem("./a/b/file.txt", 1, "\".\"");
  check_problem("a/./b/file.txt", 1, "\".\"");
  /* no normalisation: a path that would need it is refused, never rewritten */
  check_problem("a//b/file.txt", 1, "empty component");
  check_problem("a/b/", 1, "empty component");
  char longname[300];
  memset(longname, 'n', 256);
  longname[256] = '\0';
  check_problem(longname, 1, "255");
  static char longpath[5000];
  for (size_t i = 0; i < 4500; i += 2) memcpy(longpath + i, "d/", 2);
  longpath[4499] = 'f';
  longpath[4500] = '\0';
  check_problem(longpath, 1, "4095");
  /* names that look odd but are names */
  check_problem("a/b/file.txt", 0, NULL);
  check_problem("a/...", 0, NULL);
  check_problem("a/..b", 0, NULL);
  check_problem(".hidden/..x", 0, NULL);
  check_problem("a\\..\\b", 0, NULL);
  check_problem("a/\xff\xfe name\n", 0, NULL);
  check_problem("a/\x01\x7f", 0, NULL);
  /* a NUL ends the C string: what follows it is never seen, so it cannot smuggle a ".." in */
  check_problem("a/b\0/../../etc", 0, NULL);
}

static int rootfd = -1;

static int open_rel(const char *rel, int flags) { return fs_open_beneath(rootfd, rel, flags); }

static void check_refused(const char *rel, int flags, int err, const char *mode) {
  int fd = open_rel(rel, flags);
  char *shown = fs_display(rel);
  MOCK_CHECK(fd == -err, "[%s] opening \"%s\": got %d (%s), expected -%s", mode, shown, fd,
             fd < 0 ? strerror(-fd) : "an open file", strerror(err));
  if (fd >= 0) close(fd);
  free(shown);
}

static void check_reads(const char *rel, const char *want, const char *mode) {
  int fd = open_rel(rel, O_RDONLY);
  char *shown = fs_display(rel);
  MOCK_CHECK(fd >= 0, "[%s] opening \"%s\": %s", mode, shown, fd < 0 ? strerror(-fd) : "");
  if (fd >= 0) {
    MOCK_STREQ(slurp_fd(fd), want);
    close(fd);
  }
  free(shown);
}

static void test_open_beneath(const char *mode) {
  check_reads("a/b/file.txt", "inside", mode);
  check_reads("a/\xff\xfe name\n", "odd", mode);
  check_reads("a\\..\\b", "backslash", mode);
  check_reads("a/caf\xc3\xa9", "nfc", mode);
  /* the NFD spelling of the same name is another name: nothing is normalised */
  check_refused("a/cafe\xcc\x81", O_RDONLY, ENOENT, mode);
  /* symbolic links, wherever they are, are never followed */
  check_refused("out/secret", O_RDONLY, ELOOP, mode);
  check_refused("a/up/outside/secret", O_RDONLY, ELOOP, mode);
  check_refused("a/in/file.txt", O_RDONLY, ELOOP, mode);
  check_refused("secretlink", O_RDONLY, ELOOP, mode);
  check_refused("filelink", O_RDONLY, ELOOP, mode);
  check_refused("dangling", O_RDONLY, ELOOP, mode);
  check_refused("out", O_RDONLY | O_DIRECTORY, ELOOP, mode);
  /* writing through a link must not touch its target */
  check_refused("secretlink", O_WRONLY | O_CREAT | O_TRUNC, ELOOP, mode);
  check_refused("out/new", O_WRONLY | O_CREAT | O_TRUNC, ELOOP, mode);
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/secret", outside);
  int fd = open(p, O_RDONLY);
  MOCK_CHECK(fd >= 0 && !strcmp(slurp_fd(fd), "outside"), "[%s] the file outside the root changed", mode);
  if (fd >= 0) close(fd);
  snprintf(p, sizeof p, "%s/new", outside);
  MOCK_CHECK(access(p, F_OK) != 0, "[%s] a file was created outside the root", mode);
  /* plain errors stay plain */
  check_refused("a/b/missing", O_RDONLY, ENOENT, mode);
  check_refused("a/b/file.txt/x", O_RDONLY, ENOTDIR, mode);
  /* a file created below the root lands below the root */
  fd = open_rel("a/b/created", O_WRONLY | O_CREAT | O_EXCL);
  MOCK_CHECK(fd >= 0, "[%s] creating a/b/created: %s", mode, fd < 0 ? strerror(-fd) : "");
  if (fd >= 0) close(fd);
  snprintf(p, sizeof p, "%s/a/b/created", root);
  MOCK_CHECK(access(p, F_OK) == 0, "[%s] a/b/created is not in the root", mode);
  unlink(p);
}

static void test_open_nolinks(const char *mode, int full) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/a/b/file.txt", root);
  int fd = fs_open_nolinks(p, O_RDONLY);
  MOCK_CHECK(fd >= 0, "[%s] fs_open_nolinks(%s): %s", mode, p, fd < 0 ? strerror(-fd) : "");
  if (fd >= 0) close(fd);
  snprintf(p, sizeof p, "%s/secretlink", root);
  fd = fs_open_nolinks(p, O_RDONLY);
  MOCK_CHECK(fd == -ELOOP, "[%s] fs_open_nolinks(%s): got %d, expected -ELOOP", mode, p, fd);
  if (fd >= 0) close(fd);
  if (full) { /* a link before the last component: refused where openat2 exists */
    snprintf(p, sizeof p, "%s/out/secret", root);
    fd = fs_open_nolinks(p, O_RDONLY);
    MOCK_CHECK(fd == -ELOOP, "[%s] fs_open_nolinks(%s): got %d, expected -ELOOP", mode, p, fd);
    if (fd >= 0) close(fd);
  }
}

static void test_open_parent(const char *mode) {
  int created = 0;
  size_t bad = 0;
  int fd = fs_open_parent(rootfd, "x/y/z.txt", 1, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd >= 0, "[%s] fs_open_parent(x/y/z.txt): %s", mode, fd < 0 ? strerror(-fd) : "");
  MOCK_CHECK(created == 2, "[%s] created %d directories, expected 2", mode, created);
  if (fd >= 0) close(fd);
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/x/y", root);
  struct stat st;
  MOCK_CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "[%s] %s is not a directory", mode, p);
  created = 0;
  fd = fs_open_parent(rootfd, "x/y/z.txt", 1, (uid_t)-1, (gid_t)-1, &created, NULL);
  MOCK_CHECK(fd >= 0 && created == 0, "[%s] the second time: fd %d, created %d", mode, fd, created);
  if (fd >= 0) close(fd);
  /* a directory link on the way: refused, nothing created behind it, the failing prefix named */
  created = 0;
  bad = 0;
  fd = fs_open_parent(rootfd, "out/sub/f", 1, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd == -ELOOP, "[%s] fs_open_parent(out/sub/f): got %d, expected -ELOOP", mode, fd);
  MOCK_CHECK(bad == 3, "[%s] failing prefix length %zu, expected 3 (\"out\")", mode, bad);
  snprintf(p, sizeof p, "%s/sub", outside);
  MOCK_CHECK(access(p, F_OK) != 0, "[%s] a directory was created outside the root", mode);
  fd = fs_open_parent(rootfd, "a/up/outside/f", 1, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd == -ELOOP && bad == 4, "[%s] fs_open_parent(a/up/outside/f): %d, prefix %zu", mode, fd, bad);
  fd = fs_open_parent(rootfd, "a/b/file.txt/f", 1, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd == -ENOTDIR, "[%s] under a file: got %d, expected -ENOTDIR", mode, fd);
  fd = fs_open_parent(rootfd, "nothere/f", 0, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd == -ENOENT, "[%s] without create: got %d, expected -ENOENT", mode, fd);
  /* a name without a directory part: the root itself */
  fd = fs_open_parent(rootfd, "top.txt", 1, (uid_t)-1, (gid_t)-1, &created, &bad);
  MOCK_CHECK(fd >= 0, "[%s] fs_open_parent(top.txt): %d", mode, fd);
  if (fd >= 0) close(fd);
  snprintf(p, sizeof p, "rm -rf '%s/x'", root);
  if (system(p) != 0) fprintf(stderr, "could not remove %s/x\n", root);
}

static void test_bytes(void) {
  MOCK_CHECK(fs_utf8_valid("plain", 5), "ASCII");
  MOCK_CHECK(fs_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14), "two, three and four byte forms");
  MOCK_CHECK(!fs_utf8_valid("\xc0\xaf", 2), "overlong '/' (C0 AF) must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\xe0\x80\xae", 3), "overlong '.' (E0 80 AE) must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\xed\xa0\x80", 3), "a UTF-16 surrogate must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\xf4\x90\x80\x80", 4), "beyond U+10FFFF must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\xe2\x82", 2), "a cut sequence must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\xff", 1), "FF must be invalid");
  MOCK_CHECK(!fs_utf8_valid("\x80", 1), "a lone continuation byte must be invalid");
  char *d = fs_display("a\nb\tc\\d\x7f\xff\xc3\xa9\x01");
  MOCK_STREQ(d, "a\\x0Ab\\x09c\\x5Cd\\x7F\\xFF\xc3\xa9\\x01");
  free(d);
  d = fs_display("\xc0\xaf..");
  MOCK_STREQ(d, "\\xC0\\xAF..");
  free(d);
  d = fs_display(NULL);
  MOCK_STREQ(d, "");
  free(d);
  /* the sink's temporary names, which the source never emits and the cleaner removes */
  MOCK_CHECK(fs_is_tmp_name(".file.txt" FS_TMP_TAG "0123456789abcdef"), "a temporary name");
  MOCK_CHECK(fs_is_tmp_name(FS_TMP_TAG "0123456789abcdef"), "the short temporary name");
  MOCK_CHECK(!fs_is_tmp_name(".file.txt" FS_TMP_TAG "0123456789ABCDEF"), "upper-case hex is not ours");
  MOCK_CHECK(!fs_is_tmp_name(".file.txt" FS_TMP_TAG "0123456789abcde"), "15 digits is not ours");
  MOCK_CHECK(!fs_is_tmp_name("file.txt" FS_TMP_TAG "0123456789abcdef"), "no leading dot is not ours");
  MOCK_CHECK(!fs_is_tmp_name(".file.txt" FS_TMP_TAG "0123456789abcdefx"), "a suffix is not ours");
}

int main(void) {
  setup();
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    perror(root);
    return 2;
  }
  test_path_problem();
  test_bytes();
  int have = 0;
#ifdef SYS_openat2
  have = syscall(SYS_openat2, -1, "", NULL, 0) < 0 && errno != ENOSYS;
#endif
  if (have) {
    test_open_beneath("openat2");
    test_open_nolinks("openat2", 1);
    test_open_parent("openat2");
    /* even an unchecked ".." cannot leave the root where openat2 resolves beneath it */
    int fd = open_rel("../outside/secret", O_RDONLY);
    MOCK_CHECK(fd < 0, "[openat2] an unchecked \"..\" opened a file outside the root");
    if (fd >= 0) close(fd);
  } else {
    printf("openat2 is not available: the component walk only\n");
  }
  fs_test_walk_only();
  test_open_beneath("walk");
  test_open_nolinks("walk", 0);
  test_open_parent("walk");
  close(rootfd);
  teardown();
  return mock_report("unit.fs.paths");
}
