/* fs source: declarations shared by the source's files (private to the plugin; see fs.h).
 *
 * Files: source.c (the outline; entries and items, the loop side, records, ops), source_walk.c (the jobs
 * on the thread pool: the confined walk, and preparing entries: stat and checksum).
 * Functions shared between these files start with fs_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_FS_SOURCE_H
#define FERRY_FS_SOURCE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define WALK_BATCH 512

typedef struct wframe {
  int fd; /* list mode: the directory (owned); readdir mode: -1 (the DIR owns it) */
  DIR *d; /* readdir mode */
  char *const *list; /* list mode: the names to open (tables or records) */
  size_t idx;
  size_t plen; /* length of this directory's path below the root ("" for the root) */
  int level; /* 0 = the root */
} wframe;

typedef struct fs_entry {
  struct fs_entry *next;
  char *rel; /* path below the root (for refused entries: printable form) */
  char *why; /* refused: the reason; NULL: a regular file */
  int code;
  struct stat st; /* regular files: from the preparing job */
  char sha[FS_SHA_HEX];
  int hashed, prepared;
} fs_entry;

struct fs_src {
  fs_ctx *c;
  ferry_instance *ins;
  fs_pool *pool;
  int rootfd;
  char *realroot;
  char *name;
  char **records; /* records + records_file, NULL-terminated (owned) */
  /* the walker: touched only by the walk job, one at a time */
  wframe *fr;
  size_t nfr, cfr;
  char *path;
  size_t pcap;
  int walk_started;
  /* "count": the first walk only counts (then the walker starts again from the root) */
  int counting, counted;
  int64_t counted_n;
  /* loop side */
  int walking, walk_eof;
  fs_entry *qhead, *qtail; /* walked, not yet handled */
  size_t qlen;
  fs_entry *rhead, *rtail; /* prepared, ready to emit */
  size_t want; /* asked for, not yet emitted */
  size_t preparing; /* entries in prepare jobs */
  size_t jobs; /* prepare jobs in flight */
  int started, stopped, ended;
  int64_t emitted, refused, skipped_tmp;
};

typedef struct walk_job {
  fs_job j;
  fs_src *s;
  size_t max;
  fs_entry *head, *tail;
  size_t n;
  int eof;
  int64_t skipped_tmp;
} walk_job;
typedef struct prep_job {
  fs_job j;
  fs_src *s;
  int rootfd, checksum;
  fs_entry *head, *tail;
  size_t n;
} prep_job;

/* ---- source.c ------------------------------------------------------------------------------------------ */
void fs_entry_free(fs_entry *e);
void fs_entries_free(fs_entry *e);
void fs_src_pump(fs_src *s);

/* ---- source_walk.c ------------------------------------------------------------------------------------- */
void fs_pop_frame(fs_src *s);
void fs_walk_work(fs_job *jb);
void fs_walk_after(fs_job *jb, int status);
void fs_count_after(fs_job *jb, int status);
void fs_walk_release(fs_job *jb);
void fs_prep_work(fs_job *jb);
void fs_prep_after(fs_job *jb, int status);
void fs_prep_release(fs_job *jb);

#endif
