/* The libltdl wrapper (module.h): the only place in ferry that talks to libltdl. */
#include <dlfcn.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdlib.h>

#include "load/load.h"
#include "load/module.h"

struct ferry_module {
  lt_dlhandle handle;
};

/* libltdl is not thread-safe (its error state and handle list are global). */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

static char *ltdl_error(const char *fallback) {
  const char *e = lt_dlerror();
  return ferry_strdup(e && *e ? e : fallback);
}

/* Why `path` could not be opened. libltdl reports "file not found" for every failure of a file that exists
 * (it restores its previous error after trying each of its loaders), so ask the dynamic linker itself for the
 * reason ("invalid ELF header", "libfoo.so.1: cannot open shared object file", "undefined symbol: ..."). */
static char *open_error(const char *path) {
  char *lt = ltdl_error("unknown error");
  (void)dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h) { /* the dynamic linker can open it: libltdl's own reason stands */
    dlclose(h);
    return lt;
  }
  const char *e = dlerror();
  if (!e || !*e) return lt;
  free(lt);
  return ferry_strdup(e);
}

ferry_module *ferry__module_open(const char *path, char **errtext) {
  *errtext = NULL;
  pthread_mutex_lock(&ltdl_lock);
  if (lt_dlinit() != 0) {
    char *e = ltdl_error("unknown error");
    *errtext = ferry_asprintf("libltdl could not be initialised: %s", e);
    free(e);
    pthread_mutex_unlock(&ltdl_lock);
    return NULL;
  }
  lt_dlhandle h = NULL;
  lt_dladvise advise;
  if (lt_dladvise_init(&advise) != 0) {
    *errtext = ltdl_error("lt_dladvise_init failed");
  } else {
    if (lt_dladvise_ext(&advise) != 0 || lt_dladvise_local(&advise) != 0) {
      *errtext = ltdl_error("lt_dladvise failed");
    } else {
      h = lt_dlopenadvise(path, advise);
      if (!h) *errtext = open_error(path);
    }
    lt_dladvise_destroy(&advise);
  }
  if (!h) {
    lt_dlexit();
    pthread_mutex_unlock(&ltdl_lock);
    return NULL;
  }
  pthread_mutex_unlock(&ltdl_lock);
  ferry_module *m = ferry__xcalloc(1, sizeof *m);
  m->handle = h;
  return m;
}

const void *ferry__module_sym(ferry_module *m, const char *symbol) {
  pthread_mutex_lock(&ltdl_lock);
  const void *p = lt_dlsym(m->handle, symbol);
  if (!p) (void)lt_dlerror(); /* clear libltdl's error state */
  pthread_mutex_unlock(&ltdl_lock);
  return p;
}

void ferry__module_close(ferry_module *m) {
  if (!m) return;
  pthread_mutex_lock(&ltdl_lock);
  lt_dlclose(m->handle);
  lt_dlexit();
  pthread_mutex_unlock(&ltdl_lock);
  free(m);
}
