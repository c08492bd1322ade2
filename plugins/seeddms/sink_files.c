/* seeddms sink: a version's file read (plan) or copied (run) on the libuv thread pool, its MD5 checked
 * against tblDocumentContent.checksum (docs/seeddms-facts.md 4). A copy goes to "<dst>.part", is fsynced and
 * renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <uv.h>
#include <ferry/util.h>

#include "seeddms.h"

typedef struct fjob {
  uv_work_t w;
  char *src, *dst, *md5;
  int status;
  char *message;
  seeddms_file_fn cb;
  void *arg;
} fjob;

static int mkdirs(char *path) { /* the directories of path */
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int rc = mkdir(path, 0775);
    *p = '/';
    if (rc < 0 && errno != EEXIST) return -1;
  }
  return 0;
}

static void work(uv_work_t *w) {
  fjob *f = w->data;
  int in = open(f->src, O_RDONLY), out = -1;
  char *part = NULL;
  if (in < 0) {
    f->status = FERRY_EBLOCKED;
    f->message = ferry_asprintf("the file %s cannot be read on the source: %s", f->src, strerror(errno));
    return;
  }
  if (f->dst) {
    part = ferry_asprintf("%s.part", f->dst);
    if (mkdirs(part) < 0 || (out = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0664)) < 0) {
      f->status = FERRY_EIO;
      f->message = ferry_asprintf("cannot create %s on the target: %s", part, strerror(errno));
      goto end;
    }
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_md5(), NULL);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    EVP_DigestUpdate(md, buf, (size_t)n);
    if (out >= 0 && write(out, buf, (size_t)n) != n) {
      n = -1;
      break;
    }
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dl = 0;
  EVP_DigestFinal_ex(md, d, &dl);
  EVP_MD_CTX_free(md);
  if (n < 0) {
    f->status = FERRY_EIO;
    f->message = ferry_asprintf("copying %s to %s failed: %s", f->src, part ? part : "(nowhere)", strerror(errno));
    goto end;
  }
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < dl; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  if (f->md5 && *f->md5 && strcmp(hex, f->md5)) {
    f->status = FERRY_EBLOCKED;
    f->message = ferry_asprintf("the file %s has MD5 %s on the source, but its checksum says %s", f->src, hex, f->md5);
    goto end;
  }
  if (out >= 0 && (fsync(out) < 0 || rename(part, f->dst) < 0)) {
    f->status = FERRY_EIO;
    f->message = ferry_asprintf("cannot put %s in place: %s", f->dst, strerror(errno));
  }
end:
  close(in);
  if (out >= 0) close(out);
  if (part && f->status) unlink(part);
  ferry_free(part);
}

static void after(uv_work_t *w, int status) {
  fjob *f = w->data;
  if (status && !f->status) {
    f->status = FERRY_ECANCELED;
    f->message = ferry_strdup("file copy canceled");
  }
  f->cb(f->arg, f->status, f->message);
  ferry_free(f->src);
  ferry_free(f->dst);
  ferry_free(f->md5);
  ferry_free(f->message);
  ferry_free(f);
}

void seeddms_file_copy(seeddms_ctx *c, const char *src, const char *dst, const char *md5, int dry,
                       seeddms_file_fn cb, void *arg) {
  fjob *f = calloc(1, sizeof *f);
  f->src = ferry_strdup(src ? src : "");
  f->dst = dry || !dst ? NULL : ferry_strdup(dst);
  f->md5 = md5 ? ferry_strdup(md5) : NULL;
  f->cb = cb;
  f->arg = arg;
  f->w.data = f;
  uv_queue_work(ferry_instance_loop(c->ins), &f->w, work, after);
}
