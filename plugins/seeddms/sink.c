/* seeddms sink: writes a folder or a document item (source.c) into a SeedDMS 6.0 installation, or a 5.1 one
 * (the rows turned into the 5.1 shape by sink_51.c). Users, groups, attribute definitions and workflow
 * definitions are matched by name on the target (or created, sink_defs.c);
 * folders by the journal's id map; every row of a document goes in one transaction, with the new ids of
 * earlier rows (document, version, status, run) put into the later ones, and the versions' files copied with
 * their MD5 checked before the commit. The new ids are recorded with ferry_task_map_id(). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

typedef struct seeddms_snk {
  seeddms_ctx *c;
  json_t *ids[SD_NMAPS]; /* name -> target id */
  int loaded, loading, pending;
  ferry_error err;       /* why loading failed */
  ferry_task **waiting;
  size_t nwaiting;
} seeddms_snk;

typedef struct op {
  char *sql;
  json_t *params;   /* [string | null | {"var": name[, "dir": 1]}] */
  char *save;       /* variable for the insert id, or NULL */
} op;

typedef struct seeddms_job {
  seeddms_ctx *c;
  ferry_task *task;
  op *ops;
  size_t nops, next;
  json_t *files;    /* [{"src", "var", "version", "fileType", "checksum"}] */
  size_t fnext;
  json_t *vars;     /* "doc:12" -> "57" */
  ferry_sql_txn *txn;
  ferry_error err;
  int failed;
  int rows_done;    /* every statement has run (the "rows" test point passed) */
  char *repair_id;  /* `run --repair`: the target id of the folder or document, kept */
  seeddms_after_fn after; /* called after a successful commit (the definitions item) */
  json_t *reasons;  /* plan: every reason the item is blocked, in order, each once */
  json_t *tables;   /* the item's rows as the target's layout holds them (target_tables()) */
} job;

void seeddms_sink_free(seeddms_ctx *c) {
  seeddms_snk *k = c->snk;
  if (!k) return;
  for (int i = 0; i < SD_NMAPS; i++) json_decref(k->ids[i]);
  ferry_error_clear(&k->err);
  ferry_free(k->waiting);
  ferry_free(k);
  c->snk = NULL;
}

static void job_free(job *j) {
  for (size_t i = 0; i < j->nops; i++) {
    ferry_free(j->ops[i].sql);
    json_decref(j->ops[i].params);
    ferry_free(j->ops[i].save);
  }
  ferry_free(j->ops);
  json_decref(j->files);
  json_decref(j->vars);
  ferry_error_clear(&j->err);
  ferry_free(j->repair_id);
  json_decref(j->reasons);
  json_decref(j->tables);
  ferry_free(j);
}

/* Test knob: FERRY_SEEDDMS_TEST_CRASH_AFTER=<point>[:<n>] raises SIGKILL the n-th time (default 1) the sink
 * passes <point>: "intent" (the intent is in the journal, nothing written), "rows" (all rows inserted, the
 * transaction open), "files" (the files copied, not committed), "commit" (committed, not yet done in the
 * journal). Used by tests/seeddms/plugin_test.sh crash; unset in production. */
static void test_crash(const char *point) {
  static int seen;
  const char *e = getenv("FERRY_SEEDDMS_TEST_CRASH_AFTER");
  if (!e || !*e) return;
  size_t n = strcspn(e, ":");
  if (strlen(point) != n || strncmp(e, point, n)) return;
  int at = e[n] == ':' ? atoi(e + n + 1) : 1;
  if (++seen >= (at > 0 ? at : 1)) {
    fprintf(stderr, "seeddms: FERRY_SEEDDMS_TEST_CRASH_AFTER=%s: raising SIGKILL (test only)\n", e);
    fflush(stderr);
    raise(SIGKILL);
  }
}

static void task_fail(ferry_task *task, int code, const char *msg) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, code, "%s", msg);
  ferry_task_fail(task, &e);
  ferry_error_clear(&e);
}

/* ---- resolving an item into statements ------------------------------------------------------------ */

static const char *const ref_what[SD_NMAPS] = {"user", "group", "attribute definition", "workflow state",
                                               "workflow", "workflow transition"};

/* The target id of a folder: the root is 1 everywhere; others through the id map. A plan writes no folder,
 * so there a folder not carried yet counts as one its own item will create ("0"). */
static char *folder_id(ferry_task *task, const char *old) {
  if (!strcmp(old, "1")) return ferry_strdup("1");
  char *id = ferry_task_lookup_id(task, "folder", old);
  if (!id && ferry_task_mode(task) == FERRY_MODE_PLAN) id = ferry_strdup("0");
  return id;
}

static int resolve_value(job *j, const seeddms_table *t, const seeddms_col *col, json_t *row, json_t *v,
                         json_t **out) {
  const char *s = json_string_value(v);
  int m = seeddms_ref_map(col->ref);
  *out = NULL;
  if (m >= 0) {
    if (!json_is_object(v)) { *out = json_incref(v); return 0; }
    const char *name = json_string_value(json_object_get(v, "n"));
    if (!name)
      return ferry_error_set(&j->err, FERRY_EINVAL, "%s.%s refers to %s id %s, which the source does not hold",
                             t->name, col->name, ref_what[m], json_string_value(json_object_get(v, "id")));
    json_t *id = json_object_get(j->c->snk->ids[m], name);
    if (!id) {
      char *shown = ferry_strdup(name);
      for (char *p = shown; *p; p++) if (*p == '\x1f') *p = m == M_TRANSITION && p == strchr(shown, '\x1f') ? ':' : '>';
      const char *ver = seeddms_str(row, "version");
      ferry_error_set(&j->err, FERRY_EBLOCKED, "%s \"%s\" is missing on the target (%s.%s%s%s)", ref_what[m], shown,
                      t->name, col->name, ver ? ", version " : "", ver ? ver : "");
      ferry_free(shown);
      return -1;
    }
    *out = json_incref(id);
    return 0;
  }
  if (!s || ((col->ref == SD_FOLDER || col->ref == SD_VAR) && (!strcmp(s, "0") || !strcmp(s, "-1")))) {
    *out = json_incref(v);
    return 0;
  }
  switch (col->ref) {
  case SD_FOLDER: {
    char *id = folder_id(j->task, s);
    if (!id) return ferry_error_set(&j->err, FERRY_EBLOCKED, "folder id %s (%s.%s) has not been carried", s,
                                    t->name, col->name);
    *out = json_string(id);
    free(id);
    return 0;
  }
  case SD_FLIST: {
    ferry_buf b = FERRY_BUF_INIT;
    char *dup = ferry_strdup(s), *save = NULL;
    ferry_buf_add(&b, *s == ':' ? ":" : "");
    for (char *p = strtok_r(dup, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
      char *id = folder_id(j->task, p);
      if (!id) {
        ferry_free(dup);
        ferry_buf_free(&b);
        return ferry_error_set(&j->err, FERRY_EBLOCKED, "folder id %s (%s.%s) has not been carried", p, t->name,
                               col->name);
      }
      ferry_buf_addf(&b, "%s:", id);
      free(id);
    }
    ferry_free(dup);
    *out = json_string(b.buf ? b.buf : "");
    ferry_buf_free(&b);
    return 0;
  }
  case SD_VAR: {
    char *name = ferry_asprintf("%s:%s", col->var, s);
    *out = json_pack("{s:s}", "var", name);
    ferry_free(name);
    return 0;
  }
  case SD_DOCDIR: {
    char *name = ferry_asprintf("doc:%s", seeddms_str(row, "document"));
    *out = json_pack("{s:s, s:b}", "var", name, "dir", 1);
    ferry_free(name);
    return 0;
  }
  case SD_ACLTARGET: {
    const char *tt = seeddms_str(row, "targetType");
    char *name = ferry_asprintf("%s:%s", tt && !strcmp(tt, "1") ? "folder" : "doc", s);
    *out = json_pack("{s:s}", "var", name);
    ferry_free(name);
    return 0;
  }
  default:
    *out = json_incref(v);
    return 0;
  }
}

static int add_row(job *j, const seeddms_table *t, json_t *row) {
  ferry_buf sql = FERRY_BUF_INIT, vals = FERRY_BUF_INIT;
  json_t *params = json_array();
  const char *col;
  json_t *v;
  size_t n = 0;
  /* a repair keeps the folder or document's own target id: the folder row is updated in place, the
   * document row inserted again under its id (its old rows were deleted first, repair_ops()) */
  int keep = j->repair_id && (!strcmp(t->name, "tblFolders") || !strcmp(t->name, "tblDocuments"));
  int update = keep && !strcmp(t->name, "tblFolders");
  char *qt = ferry_sql_quote_ident(j->c->db, t->name);
  ferry_buf_addf(&sql, update ? "UPDATE %s SET " : "INSERT INTO %s (", qt);
  ferry_free(qt);
  if (keep && !update) {
    char *qi = ferry_sql_quote_ident(j->c->db, t->id);
    ferry_buf_addf(&sql, "%s", qi);
    ferry_buf_add(&vals, "$1");
    ferry_free(qi);
    json_array_append_new(params, json_string(j->repair_id));
    n++;
  }
  json_object_foreach(row, col, v) {
    if (t->id && !strcmp(col, t->id)) continue;
    const seeddms_col *spec = NULL;
    for (const seeddms_col *cc = t->cols; cc->name; cc++)
      if (!strcmp(cc->name, col)) spec = cc;
    json_t *val = NULL;
    seeddms_col plain = {col, SD_PLAIN, NULL};
    if (resolve_value(j, t, spec ? spec : &plain, row, v, &val) < 0) {
      ferry_buf_free(&sql);
      ferry_buf_free(&vals);
      json_decref(params);
      return -1;
    }
    json_array_append_new(params, val);
    char *qc = ferry_sql_quote_ident(j->c->db, col);
    if (update) ferry_buf_addf(&sql, "%s%s = $%zu", n ? ", " : "", qc, n + 1);
    else ferry_buf_addf(&sql, "%s%s", n ? ", " : "", qc);
    ferry_buf_addf(&vals, "%s$%zu", n ? ", " : "", n + 1);
    ferry_free(qc);
    n++;
  }
  if (update) {
    char *qi = ferry_sql_quote_ident(j->c->db, t->id);
    ferry_buf_addf(&sql, " WHERE %s = $%zu", qi, n + 1);
    ferry_free(qi);
    json_array_append_new(params, json_string(j->repair_id));
  } else {
    ferry_buf_addf(&sql, ") VALUES (%s)", vals.buf ? vals.buf : "");
  }
  ferry_buf_free(&vals);
  j->ops = realloc(j->ops, (j->nops + 1) * sizeof *j->ops);
  op *o = &j->ops[j->nops++];
  o->sql = ferry_buf_steal(&sql);
  o->params = params;
  o->save = t->idvar && !keep ? ferry_asprintf("%s:%s", t->idvar, seeddms_str(row, t->id)) : NULL;
  return 0;
}

/* A repair (`ferry run --repair`): the rows of the folder (attributes, ACLs) or document (everything it
 * carries) are deleted on the target, children before parents, before the item is written again. */
static void repair_ops(job *j, int folder) {
  static const char *const doc[] = {
      "DELETE FROM tblWorkflowLog WHERE workflowdocumentcontent IN "
      "(SELECT id FROM tblWorkflowDocumentContent WHERE document = $1)",
      "DELETE FROM tblWorkflowDocumentContent WHERE document = $1 AND parent IS NOT NULL",
      "DELETE FROM tblWorkflowDocumentContent WHERE document = $1",
      "DELETE FROM tblDocumentStatusLog WHERE statusID IN (SELECT statusID FROM tblDocumentStatus WHERE documentID = $1)",
      "DELETE FROM tblDocumentStatus WHERE documentID = $1",
      "DELETE FROM tblDocumentContentAttributes WHERE content IN (SELECT id FROM tblDocumentContent WHERE document = $1)",
      "DELETE FROM tblDocumentContent WHERE document = $1",
      "DELETE FROM tblDocumentAttributes WHERE document = $1",
      "DELETE FROM tblACLs WHERE targetType = 2 AND target = $1",
      "DELETE FROM tblDocuments WHERE id = $1",
      NULL};
  static const char *const fold[] = {"DELETE FROM tblFolderAttributes WHERE folder = $1",
                                     "DELETE FROM tblACLs WHERE targetType = 1 AND target = $1", NULL};
  /* 5.1: runs and log rows name the document directly */
  static const char *const doc51[] = {"DELETE FROM tblWorkflowLog WHERE document = $1",
                                      "DELETE FROM tblWorkflowDocumentContent WHERE document = $1"};
  if (!folder && j->c->detected == SEEDDMS_LAYOUT_51)
    for (size_t i = 0; i < 2; i++) {
      j->ops = realloc(j->ops, (j->nops + 1) * sizeof *j->ops);
      op *o = &j->ops[j->nops++];
      o->sql = ferry_strdup(doc51[i]);
      o->params = json_pack("[s]", j->repair_id);
      o->save = NULL;
    }
  const char *const *first = folder ? fold : j->c->detected == SEEDDMS_LAYOUT_51 ? doc + 3 : doc;
  for (const char *const *q = first; *q; q++) {
    j->ops = realloc(j->ops, (j->nops + 1) * sizeof *j->ops);
    op *o = &j->ops[j->nops++];
    o->sql = ferry_strdup(*q);
    o->params = json_pack("[s]", j->repair_id);
    o->save = NULL;
  }
}

/* plan: notes a reason the item is blocked and clears j->err. A definition missing on the target is named
 * once, at the first row that needs it ("user \"x\" is missing on the target (tblDocuments.owner)"). */
static void add_reason(job *j, const char *msg) {
  if (!j->reasons) j->reasons = json_array();
  const char *cut = strstr(msg, " is missing on the target (");
  size_t n = cut ? (size_t)(cut - msg) : strlen(msg) + 1;
  size_t i;
  json_t *r;
  json_array_foreach(j->reasons, i, r) if (!strncmp(json_string_value(r), msg, n)) goto out;
  json_array_append_new(j->reasons, json_string(msg));
out:
  ferry_error_clear(&j->err);
}

/* The item's tables as the target's layout holds them: a new reference (on a 5.1 target a document's rows
 * turned into the 5.1 shape, what it cannot hold appended to `losses` if not NULL), or NULL with err. */
static json_t *target_tables(seeddms_ctx *c, const ferry_item *it, json_t *losses, ferry_error *err) {
  json_t *tables = json_object_get(it->body, "tables");
  if (!json_is_object(tables)) {
    ferry_error_set(err, FERRY_EINVAL, "item %s has no \"tables\" (not from a seeddms source?)", it->key);
    return NULL;
  }
  if (c->detected != SEEDDMS_LAYOUT_51 || strcmp(ferry_item_str(it, "object", ""), "document"))
    return json_incref(tables);
  json_t *tmp = losses ? NULL : json_array();
  json_t *out = seeddms_tables_to_51(tables, !strcmp(ferry_item_str(it, "layout", ""), "5.1"), losses ? losses : tmp,
                                     err);
  json_decref(tmp);
  return out;
}

/* Builds the statements and file copies of the task's item; -1 with j->err (FERRY_EBLOCKED: something the
 * target lacks). */
static int resolve(job *j) {
  const ferry_item *it = ferry_task_item(j->task);
  json_t *losses = json_array();
  j->tables = target_tables(j->c, it, losses, &j->err);
  if (json_array_size(losses)) {
    json_t *rep = ferry_task_report(j->task), *have = json_object_get(rep, "losses");
    if (json_is_array(have)) json_array_extend(have, losses);
    else json_object_set(rep, "losses", losses);
  }
  json_decref(losses);
  if (!j->tables) return -1;
  json_t *tables = j->tables;
  if (ferry_task_repair(j->task)) {
    int folder = !strcmp(ferry_item_str(it, "object", ""), "folder");
    const char *tid = json_string_value(json_object_get(ferry_task_state(j->task), "target_id"));
    j->repair_id = tid ? ferry_strdup(tid)
                       : ferry_task_lookup_id(j->task, folder ? "folder" : "document", ferry_item_str(it, "id", ""));
    if (!j->repair_id)
      return ferry_error_set(&j->err, FERRY_EINVAL, "repair of %s: the journal holds no target id", it->key);
    char *var = ferry_asprintf("%s:%s", folder ? "folder" : "doc", ferry_item_str(it, "id", ""));
    json_object_set_new(j->vars, var, json_string(j->repair_id));
    ferry_free(var);
    repair_ops(j, folder);
  }
  for (const seeddms_table *t0 = seeddms_tables; t0->name; t0++) {
    const seeddms_table *t = seeddms_table_in(j->c->detected, t0->name);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(tables, t->name), i, row) {
      if (add_row(j, t, row) < 0) {
        /* a plan goes on, to name every reason the item is blocked */
        if (ferry_task_mode(j->task) != FERRY_MODE_PLAN || j->err.code != FERRY_EBLOCKED) return -1;
        add_reason(j, j->err.message);
      }
    }
  }
  size_t i;
  json_t *login;
  json_array_foreach(json_object_get(it->body, "home_of"), i, login) {
    j->ops = realloc(j->ops, (j->nops + 1) * sizeof *j->ops);
    op *o = &j->ops[j->nops++];
    o->sql = ferry_strdup("UPDATE tblUsers SET homefolder = $1 WHERE login = $2");
    char *var = ferry_asprintf("folder:%s", ferry_item_str(it, "id", ""));
    o->params = json_pack("[{s:s}, O]", "var", var, login);
    ferry_free(var);
    o->save = NULL;
  }
  j->files = json_incref(json_object_get(it->body, "files"));
  if (!j->files) j->files = json_array();
  return 0;
}

/* ---- running the statements ----------------------------------------------------------------------- */

static void step(job *j);

/* The id map's kind of a saved variable "<var>:<old id>" (the prefix is `len` bytes of `var`), or NULL for a
 * variable that is not an id of the map. */
static const char *map_kind(const char *var, size_t len) {
  static const struct { const char *var, *kind; } kinds[] = {
      {"folder", "folder"}, {"doc", "document"}, {"content", "version"}, {"status", "status"}, {"run", "run"},
      {"log", "log"},       {"user", "user"},    {"group", "group"},     {"attrdef", "attrdef"},
      {"state", "state"},   {"action", "action"}, {"workflow", "workflow"}, {"transition", "transition"}};
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (strlen(kinds[i].var) == len && !strncmp(kinds[i].var, var, len)) return kinds[i].kind;
  return NULL;
}

static void finish(job *j) {
  ferry_task *task = j->task;
  if (j->failed) {
    ferry_task_fail(task, &j->err);
    job_free(j);
    return;
  }
  if (j->after) j->after(j->c, j->vars);
  const char *k;
  json_t *v;
  json_object_foreach(j->vars, k, v) {
    const char *colon = strchr(k, ':');
    const char *kind = colon ? map_kind(k, (size_t)(colon - k)) : NULL;
    if (kind) ferry_task_map_id(task, kind, colon + 1, json_string_value(v), NULL);
  }
  const ferry_item *it = ferry_task_item(task);
  const char *main = !strcmp(ferry_item_str(it, "object", ""), "folder") ? "folder:" : "doc:";
  char *mk = ferry_asprintf("%s%s", main, ferry_item_str(it, "id", ""));
  json_t *tid = json_object_get(j->vars, mk);
  ferry_free(mk);
  if (tid) {
    json_object_set(ferry_task_report(task), "target_id", tid);
    json_object_set(ferry_task_state(task), "target_id", tid);
  }
  ferry_task_done(task, 0);
  job_free(j);
}

static void ended(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  job *j = arg;
  if (status && !j->failed) {
    j->failed = 1;
    ferry_error_set(&j->err, status, "seeddms: commit on %s failed: %s", ferry_sql_endpoint(j->c->db), err->message);
  }
  if (!j->failed) test_crash("commit");
  finish(j);
}

static void abort_job(job *j) {
  j->failed = 1;
  if (!j->txn || ferry_sql_rollback(j->txn, ended, j) < 0) finish(j);
}

static void file_done(void *arg, int status, const char *message) {
  job *j = arg;
  if (status) {
    if (ferry_task_mode(j->task) == FERRY_MODE_PLAN && status == FERRY_EBLOCKED) {
      add_reason(j, message);
      step(j);
      return;
    }
    ferry_error_set(&j->err, status, "%s", message);
    if (ferry_task_mode(j->task) == FERRY_MODE_PLAN) {
      j->failed = 1;
      finish(j);
    } else {
      abort_job(j);
    }
    return;
  }
  step(j);
}

static void op_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  job *j = arg;
  op *o = &j->ops[j->next - 1];
  if (status) {
    ferry_error_set(&j->err, status, "seeddms: writing %s failed: %s", o->save ? o->save : "a row", err->message);
    abort_job(j);
    return;
  }
  if (o->save) {
    char *id = ferry_asprintf("%llu", (unsigned long long)info->insert_id);
    json_object_set_new(j->vars, o->save, json_string(id));
    ferry_free(id);
  }
  step(j);
}

static void step(job *j) {
  seeddms_ctx *c = j->c;
  int plan = ferry_task_mode(j->task) == FERRY_MODE_PLAN;
  if (!plan && j->next < j->nops) {
    op *o = &j->ops[j->next++];
    size_t n = json_array_size(o->params);
    ferry_sql_value *pv = calloc(n ? n : 1, sizeof *pv);
    char **tmp = calloc(n ? n : 1, sizeof *tmp);
    for (size_t i = 0; i < n; i++) {
      json_t *p = json_array_get(o->params, i);
      const char *s = json_string_value(p);
      if (json_is_object(p)) {
        const char *var = json_string_value(json_object_get(p, "var"));
        s = json_string_value(json_object_get(j->vars, var));
        if (!s) {
          ferry_error_set(&j->err, FERRY_EINVAL, "seeddms: %s refers to %s, which this item does not hold",
                          o->save ? o->save : "a row", var);
          ferry_free(pv);
          ferry_free(tmp);
          abort_job(j);
          return;
        }
        if (json_is_true(json_object_get(p, "dir"))) s = tmp[i] = seeddms_doc_dir(strtoll(s, NULL, 10), c->max_dir_id);
      } else if (json_is_integer(p)) {
        s = tmp[i] = ferry_asprintf("%lld", (long long)json_integer_value(p));
      }
      pv[i].data = s;
      pv[i].len = s ? strlen(s) : 0;
    }
    int rc = ferry_sql_query(c->db, j->txn, o->sql, n, pv, NULL, op_done, j);
    for (size_t i = 0; i < n; i++) ferry_free(tmp[i]);
    ferry_free(tmp);
    ferry_free(pv);
    if (rc < 0) {
      ferry_error_set(&j->err, rc, "seeddms: cannot queue a statement on %s", ferry_sql_endpoint(c->db));
      abort_job(j);
    }
    return;
  }
  if (!plan && j->fnext == 0 && !j->rows_done) {
    j->rows_done = 1;
    test_crash("rows");
  }
  if (j->fnext < json_array_size(j->files)) {
    json_t *f = json_array_get(j->files, j->fnext++);
    const char *src = json_string_value(json_object_get(f, "local_path"));
    const ferry_item *it = ferry_task_item(j->task);
    char *dst = NULL;
    if (!plan) {
      char *var = ferry_asprintf("doc:%s", ferry_item_str(it, "id", ""));
      const char *nd = json_string_value(json_object_get(j->vars, var));
      ferry_free(var);
      dst = seeddms_version_path(c, nd ? strtoll(nd, NULL, 10) : 0, json_string_value(json_object_get(f, "version")),
                                 json_string_value(json_object_get(f, "fileType")));
    }
    seeddms_file_copy(c, src, dst, json_string_value(json_object_get(f, "checksum")), plan, file_done, j);
    ferry_free(dst);
    return;
  }
  if (plan && j->reasons) {
    size_t n = json_array_size(j->reasons);
    json_object_set(ferry_task_report(j->task), "blocked", j->reasons);
    ferry_error_set(&j->err, FERRY_EBLOCKED, "%s%s", json_string_value(json_array_get(j->reasons, 0)),
                    n > 1 ? " (and more: every reason is in the report's \"blocked\")" : "");
    j->failed = 1;
    finish(j);
    return;
  }
  if (plan) {
    const ferry_item *it = ferry_task_item(j->task);
    size_t nl = json_array_size(json_object_get(ferry_task_report(j->task), "losses"));
    char losses[64] = "";
    if (nl) snprintf(losses, sizeof losses, "; %zu losses, in the report", nl);
    char *w = ferry_asprintf("create %s \"%s\" (%zu rows, %zu files%s)", ferry_item_str(it, "object", "?"),
                             ferry_item_str(it, "name", ferry_item_str(it, "id", "")), j->nops,
                             json_array_size(j->files), losses);
    json_object_set_new(ferry_task_report(j->task), "would", json_string(w));
    ferry_free(w);
    finish(j);
    return;
  }
  test_crash("files");
  if (ferry_sql_commit(j->txn, ended, j) < 0) {
    j->txn = NULL;
    ferry_error_set(&j->err, FERRY_EINTERNAL, "seeddms: cannot commit on %s", ferry_sql_endpoint(c->db));
    j->failed = 1;
    finish(j);
  }
}

static void began(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  job *j = arg;
  if (status) {
    j->failed = 1;
    ferry_error_set(&j->err, status, "seeddms: cannot begin a transaction on %s: %s", ferry_sql_endpoint(j->c->db),
                    err ? err->message : "");
    finish(j);
    return;
  }
  j->txn = txn;
  step(j);
}

static void start_job(seeddms_ctx *c, ferry_task *task) {
  job *j = calloc(1, sizeof *j);
  j->c = c;
  j->task = task;
  j->vars = json_object();
  if (c->snk->err.code) {
    ferry_task_fail(task, &c->snk->err);
    job_free(j);
    return;
  }
  if (resolve(j) < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    const ferry_item *it = ferry_task_item(task);
    int code = j->err.code == FERRY_EBLOCKED && ferry_task_mode(task) != FERRY_MODE_PLAN ? FERRY_ENOENT : j->err.code;
    ferry_error_set(&e, code, "seeddms: %s: %s", it->key, j->err.message);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    job_free(j);
    return;
  }
  if (ferry_task_mode(task) == FERRY_MODE_PLAN) {
    step(j);
    return;
  }
  if (ferry_task_intent(task, "write", &j->err) < 0) {
    ferry_task_fail(task, &j->err);
    job_free(j);
    return;
  }
  test_crash("intent");
  if (ferry_sql_begin(c->db, FERRY_SQL_READ_WRITE, NULL, began, j) < 0) {
    task_fail(task, FERRY_EINTERNAL, "seeddms: cannot begin a transaction");
    job_free(j);
  }
}

/* ---- the job API for sink_defs.c ------------------------------------------------------------------ */

seeddms_job *seeddms_job_new(seeddms_ctx *c, ferry_task *task) {
  job *j = calloc(1, sizeof *j);
  j->c = c;
  j->task = task;
  j->vars = json_object();
  j->files = json_array();
  return j;
}

void seeddms_job_add(seeddms_job *j, const char *sql, json_t *params, const char *save) {
  j->ops = realloc(j->ops, (j->nops + 1) * sizeof *j->ops);
  op *o = &j->ops[j->nops++];
  o->sql = ferry_strdup(sql);
  o->params = params;
  o->save = save ? ferry_strdup(save) : NULL;
}

size_t seeddms_job_size(const seeddms_job *j) { return j->nops; }

void seeddms_job_free(seeddms_job *j) { job_free(j); }

void seeddms_job_run(seeddms_job *j, seeddms_after_fn after) {
  ferry_task *task = j->task;
  j->after = after;
  if (ferry_task_intent(task, "write", &j->err) < 0) {
    ferry_task_fail(task, &j->err);
    job_free(j);
    return;
  }
  if (ferry_sql_begin(j->c->db, FERRY_SQL_READ_WRITE, NULL, began, j) < 0) {
    task_fail(task, FERRY_EINTERNAL, "seeddms: cannot begin a transaction");
    job_free(j);
  }
}

json_t *seeddms_sink_ids(seeddms_ctx *c, int map) { return c->snk->ids[map]; }

/* The target rows of one table for the object `id`: a WHERE clause with $1 = the target id (where51: on a 5.1
 * target, if it differs). */
static const struct { const char *table, *where; int folder; const char *where51; } verify_where[] = {
    {"tblFolders", "id = $1", 1, NULL},
    {"tblFolderAttributes", "folder = $1", 1, NULL},
    {"tblDocuments", "id = $1", 0, NULL},
    {"tblDocumentAttributes", "document = $1", 0, NULL},
    {"tblDocumentContent", "document = $1", 0, NULL},
    {"tblDocumentContentAttributes", "content IN (SELECT id FROM tblDocumentContent WHERE document = $1)", 0, NULL},
    {"tblDocumentStatus", "documentID = $1", 0, NULL},
    {"tblDocumentStatusLog", "statusID IN (SELECT statusID FROM tblDocumentStatus WHERE documentID = $1)", 0, NULL},
    {"tblWorkflowDocumentContent", "document = $1", 0, NULL},
    {"tblWorkflowLog",
     "workflowdocumentcontent IN (SELECT id FROM tblWorkflowDocumentContent WHERE document = $1)", 0,
     "document = $1"},
    {"tblACLs", "targetType = 2 AND target = $1", 0, NULL},
    {"tblACLs", "targetType = 1 AND target = $1", 1, NULL},
};
#define NVERIFY (sizeof verify_where / sizeof *verify_where)

/* "SELECT <cols> FROM <table> WHERE <where> [ORDER BY <id>]" for verify_where[i] on c's target (malloc'd);
 * *t gets the table's description in the target's layout. */
static char *where_sql(seeddms_ctx *c, size_t i, const char *cols, const seeddms_table **t) {
  *t = seeddms_table_in(c->detected, verify_where[i].table);
  const char *where = c->detected == SEEDDMS_LAYOUT_51 && verify_where[i].where51 ? verify_where[i].where51
                                                                                   : verify_where[i].where;
  char *qt = ferry_sql_quote_ident(c->db, (*t)->name);
  char *qi = (*t)->id ? ferry_sql_quote_ident(c->db, (*t)->id) : NULL;
  char *sql = ferry_asprintf("SELECT %s FROM %s WHERE %s%s%s", cols ? cols : qi, qt, where, qi ? " ORDER BY " : "",
                             qi ? qi : "");
  ferry_free(qt);
  ferry_free(qi);
  return sql;
}

/* ---- resume: an earlier run recorded the intent; its transaction may have committed ---------------- */

typedef struct adopt {
  seeddms_ctx *c;
  ferry_task *task;
  json_t *tables;  /* the item's rows in the target's layout */
  char *tid;       /* the adopted document's target id */
  size_t next;     /* index into verify_where */
  json_t *unmapped; /* [table]: row counts differ, its ids are not mapped */
} adopt;

static void adopt_next(adopt *a);

static void adopt_end(adopt *a) {
  ferry_task *task = a->task;
  if (json_array_size(a->unmapped)) json_object_set(ferry_task_report(task), "adopt_unmapped", a->unmapped);
  json_decref(a->unmapped);
  json_decref(a->tables);
  ferry_free(a->tid);
  ferry_free(a);
  ferry_task_done(task, FERRY_DONE_SKIPPED);
}

/* The target rows of one table of an adopted document: the sink wrote the item's rows in order, so the
 * target's rows by id pair with them one to one; their ids go to the id map like a fresh write's. */
static void adopt_mapped(void *arg, json_t *rows, const ferry_error *err) {
  adopt *a = arg;
  const seeddms_table *t = seeddms_table_in(a->c->detected, verify_where[a->next - 1].table);
  const ferry_item *it = ferry_task_item(a->task);
  json_t *want = json_object_get(a->tables, t->name);
  const char *kind = map_kind(t->idvar, strlen(t->idvar));
  if (!rows || json_array_size(rows) != json_array_size(want)) {
    if (!rows)
      ferry_log_item(a->c->ins, FERRY_LOG_WARN, it->key, 0, "seeddms: %s of the adopted document cannot be read: %s",
                     t->name, err ? err->message : "?");
    json_array_append_new(a->unmapped, json_string(t->name));
  } else {
    for (size_t i = 0; i < json_array_size(rows); i++)
      ferry_task_map_id(a->task, kind, seeddms_str(json_array_get(want, i), t->id),
                        seeddms_str(json_array_get(rows, i), t->id), NULL);
  }
  adopt_next(a);
}

static void adopt_next(adopt *a) {
  seeddms_ctx *c = a->c;
  while (a->next < NVERIFY) {
    const seeddms_table *t = seeddms_table_in(c->detected, verify_where[a->next].table);
    if (verify_where[a->next].folder || !t->idvar || !strcmp(t->idvar, "doc")) {
      a->next++;
      continue;
    }
    char *sql = where_sql(c, a->next, NULL, &t);
    a->next++;
    ferry_sql_value p = {a->tid, strlen(a->tid), 0};
    int rc = seeddms_collect(c->db, NULL, sql, 1, &p, adopt_mapped, a);
    ferry_free(sql);
    if (rc == 0) return;
    json_array_append_new(a->unmapped, json_string(t->name));
  }
  adopt_end(a);
}

static void adopt_rows(void *arg, json_t *rows, const ferry_error *err) {
  adopt *a = arg;
  ferry_task *task = a->task;
  seeddms_ctx *c = a->c;
  if (!rows) {
    ferry_free(a);
    ferry_task_fail(task, err);
    return;
  }
  if (json_array_size(rows) == 0) {
    ferry_free(a);
    start_job(c, task);
    return;
  }
  const ferry_item *it = ferry_task_item(task);
  const char *id = seeddms_str(json_array_get(rows, 0), "id");
  int folder = !strcmp(ferry_item_str(it, "object", ""), "folder");
  ferry_task_map_id(task, folder ? "folder" : "document", ferry_item_str(it, "id", ""), id, NULL);
  json_object_set_new(ferry_task_report(task), "target_id", json_string(id));
  json_object_set_new(ferry_task_state(task), "target_id", json_string(id));
  json_object_set_new(ferry_task_report(task), "adopted", json_true());
  a->tid = ferry_strdup(id);
  a->unmapped = json_array();
  ferry_error terr = FERRY_ERROR_INIT;
  a->tables = target_tables(c, it, NULL, &terr);
  ferry_error_clear(&terr);
  if (!a->tables) a->tables = json_object(); /* every table then counts as unmapped */
  a->next = folder ? NVERIFY : 0;
  adopt_next(a);
}

static void reconcile(seeddms_ctx *c, ferry_task *task) {
  const ferry_item *it = ferry_task_item(task);
  int folder = !strcmp(ferry_item_str(it, "object", ""), "folder");
  json_t *row = json_array_get(json_object_get(json_object_get(it->body, "tables"), folder ? "tblFolders" : "tblDocuments"), 0);
  const char *where = seeddms_str(row, folder ? "parent" : "folder");
  char *fid = where ? folder_id(task, where) : NULL;
  if (!row || !fid) {
    free(fid);
    start_job(c, task);
    return;
  }
  ferry_sql_value p[3] = {{seeddms_str(row, "name"), strlen(seeddms_str(row, "name")), 0}, {fid, strlen(fid), 0},
                          {seeddms_str(row, "date"), seeddms_str(row, "date") ? strlen(seeddms_str(row, "date")) : 0, 0}};
  adopt *a = calloc(1, sizeof *a);
  a->c = c;
  a->task = task;
  const char *sql = folder ? "SELECT id FROM tblFolders WHERE name = $1 AND parent = $2 AND date = $3"
                           : "SELECT id FROM tblDocuments WHERE name = $1 AND folder = $2 AND date = $3";
  int rc = seeddms_collect(c->db, NULL, sql, 3, p, adopt_rows, a);
  free(fid);
  if (rc < 0) {
    ferry_free(a);
    task_fail(task, FERRY_EINTERNAL, "seeddms: cannot query the target to resume");
  }
}

/* ---- the target's definitions, loaded once ---------------------------------------------------------- */

static void verify_start(seeddms_ctx *c, ferry_task *task);

static void dispatch(seeddms_ctx *c, ferry_task *task) {
  if (!strcmp(ferry_item_str(ferry_task_item(task), "object", ""), "definitions")) {
    if (c->snk->err.code) ferry_task_fail(task, &c->snk->err);
    else seeddms_defs(c, task); /* idempotent: creates only what is missing by name */
  } else if (ferry_task_mode(task) == FERRY_MODE_VERIFY)
    verify_start(c, task);
  else if (ferry_task_mode(task) == FERRY_MODE_RUN && ferry_task_repair(task) && !c->snk->err.code)
    start_job(c, task);
  else if (ferry_task_mode(task) == FERRY_MODE_RUN && ferry_task_step(task) && !c->snk->err.code)
    reconcile(c, task);
  else
    start_job(c, task);
}

typedef struct lq {
  seeddms_snk *k;
  int map;
} lq;

static void loaded_one(void *arg, json_t *rows, const ferry_error *err) {
  lq *q = arg;
  seeddms_snk *k = q->k;
  if (!rows) {
    if (!k->err.code)
      ferry_error_set(&k->err, err->code, "seeddms: reading the definitions of the target %s failed: %s",
                      ferry_sql_endpoint(k->c->db), err->message);
  } else {
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      char *n = seeddms_row_name(q->map, r);
      if (n) json_object_set_new(k->ids[q->map], n, json_string(seeddms_str(r, "id")));
      ferry_free(n);
    }
  }
  ferry_free(q);
  if (--k->pending > 0) return;
  k->loaded = 1;
  ferry_task **w = k->waiting;
  size_t n = k->nwaiting;
  k->waiting = NULL;
  k->nwaiting = 0;
  for (size_t i = 0; i < n; i++) dispatch(k->c, w[i]);
  ferry_free(w);
}

static void detected(void *arg, int status, const ferry_error *err) {
  seeddms_snk *k = arg;
  if (status)
    ferry_error_set(&k->err, status, "%s", err->message);
  k->pending = 1;
  for (int m = 0; !status && m < SD_NMAPS; m++) {
    lq *q = calloc(1, sizeof *q);
    q->k = k;
    q->map = m;
    k->pending++;
    if (seeddms_collect(k->c->db, NULL, seeddms_name_sql[m], 0, NULL, loaded_one, q) < 0) {
      ferry_error e = {FERRY_EINTERNAL, "could not queue a query", NULL};
      loaded_one(q, NULL, &e);
    }
  }
  lq *q = calloc(1, sizeof *q);
  q->k = k;
  q->map = -1;
  json_t *none = json_array();
  loaded_one(q, none, NULL);
  json_decref(none);
}

static void snk_task(ferry_instance *ins, ferry_task *task) {
  seeddms_ctx *c = ferry_instance_ctx(ins);
  seeddms_snk *k = c->snk;
  if (k->loaded) {
    dispatch(c, task);
    return;
  }
  k->waiting = realloc(k->waiting, (k->nwaiting + 1) * sizeof *k->waiting);
  k->waiting[k->nwaiting++] = task;
  if (!k->loading) {
    k->loading = 1;
    seeddms_detect(c, detected, k);
  }
}

static int snk_start(ferry_instance *ins, ferry_error *err) {
  (void)err;
  seeddms_ctx *c = ferry_instance_ctx(ins);
  seeddms_snk *k = calloc(1, sizeof *k);
  k->c = c;
  for (int i = 0; i < SD_NMAPS; i++) k->ids[i] = json_object();
  c->snk = k;
  return 0;
}

const ferry_sink_ops seeddms_sink_ops = {
    .struct_size = sizeof(ferry_sink_ops), .accepts = FERRY_ITEM_RECORD,
    .start = snk_start, .write = snk_task, .plan = snk_task, .verify = snk_task,
};

/* ---- verify: the target's rows of the item, through the journal's id map, against the item ---------- */


typedef struct vjob {
  job j;            /* c, task, vars, err: what resolve_value() needs */
  char *tid;        /* the target id of the folder or document */
  int folder;
  size_t next;      /* index into verify_where */
  json_t *diffs;    /* [string] */
} vjob;

static void vjob_free(vjob *v) {
  json_decref(v->j.vars);
  json_decref(v->j.tables);
  json_decref(v->j.files);
  ferry_error_clear(&v->j.err);
  ferry_free(v->tid);
  json_decref(v->diffs);
  ferry_free(v);
}

static void vdiff(vjob *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vdiff(vjob *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry_vasprintf(fmt, ap);
  va_end(ap);
  json_array_append_new(v->diffs, json_string(s));
  ferry_free(s);
}

/* Equal as SeedDMS values: the same text, both NULL, or the same number written differently ("1" / "1.0"). */
static int same_value(const char *a, const char *b) {
  if (!a || !b) return a == b;
  if (!strcmp(a, b)) return 1;
  char *ea, *eb;
  double x = strtod(a, &ea), y = strtod(b, &eb);
  return *a && *b && !*ea && !*eb && x == y;
}

static void verify_next(vjob *v);

static void verify_end(vjob *v) {
  ferry_task *task = v->j.task;
  json_object_set_new(ferry_task_report(task), "target_id", json_string(v->tid));
  size_t n = json_array_size(v->diffs);
  if (n) {
    json_object_set(ferry_task_report(task), "differences", v->diffs);
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EMISMATCH, "seeddms: %s differs on the target (id %s): %s%s", ferry_task_item(task)->key,
                    v->tid, json_string_value(json_array_get(v->diffs, 0)), n > 1 ? " (and more)" : "");
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
  } else {
    ferry_task_done(task, 0);
  }
  vjob_free(v);
}

static void verify_file_done(void *arg, int status, const char *message) {
  vjob *v = arg;
  json_t *f = json_array_get(v->j.files, v->j.fnext - 1);
  if (status) {
    /* the file helper words it for a source; here it read the target's file */
    ferry_buf b = FERRY_BUF_INIT;
    const char *m = message ? message : "differs", *p;
    while ((p = strstr(m, " on the source"))) {
      ferry_buf_addf(&b, "%.*s", (int)(p - m), m);
      m = p + strlen(" on the source");
    }
    ferry_buf_add(&b, m);
    vdiff(v, "the file of version %s on the target: %s", json_string_value(json_object_get(f, "version")), b.buf);
    ferry_buf_free(&b);
  }
  verify_next(v);
}

/* The expected text of an item's value on the target; *ok = 0 when it cannot be resolved (diff noted). */
static char *expected(vjob *v, const seeddms_table *t, const seeddms_col *spec, json_t *row, json_t *val, int *ok) {
  json_t *r = NULL;
  *ok = 1;
  seeddms_col plain = {spec ? spec->name : "", SD_PLAIN, NULL};
  if (resolve_value(&v->j, t, spec ? spec : &plain, row, val, &r) < 0) {
    *ok = 0;
    return ferry_strdup(v->j.err.message);
  }
  char *s = NULL;
  if (json_is_object(r)) {
    const char *var = json_string_value(json_object_get(r, "var"));
    const char *id = json_string_value(json_object_get(v->j.vars, var));
    if (!id) {
      *ok = 0;
      s = ferry_asprintf("%s refers to %s, which has no row on the target", t->name, var);
    } else if (json_is_true(json_object_get(r, "dir"))) {
      s = seeddms_doc_dir(strtoll(id, NULL, 10), v->j.c->max_dir_id);
    } else {
      s = ferry_strdup(id);
    }
  } else if (json_is_string(r)) {
    s = ferry_strdup(json_string_value(r));
  }
  json_decref(r);
  return s;
}

/* A table without a key (5.1's runs): each of the item's rows must equal one target row, in any order. */
static void verify_unordered(vjob *v, const seeddms_table *t, json_t *want, json_t *rows) {
  size_t nw = json_array_size(want), ng = json_array_size(rows);
  char *used = calloc(ng ? ng : 1, 1);
  for (size_t i = 0; i < nw; i++) {
    json_t *w = json_array_get(want, i);
    json_t *exp = json_object();
    ferry_buf shown = FERRY_BUF_INIT;
    const char *col;
    json_t *val;
    int ok = 1;
    json_object_foreach(w, col, val) {
      const seeddms_col *spec = NULL;
      for (const seeddms_col *cc = t->cols; cc->name; cc++)
        if (!strcmp(cc->name, col)) spec = cc;
      int cok;
      char *e = expected(v, t, spec, w, val, &cok);
      if (!cok) {
        vdiff(v, "%s row %zu: %s", t->name, i + 1, e);
        ok = 0;
      }
      json_object_set_new(exp, col, e ? json_string(e) : json_null());
      ferry_buf_addf(&shown, "%s%s=%s", shown.buf ? ", " : "", col, e ? e : "NULL");
      ferry_free(e);
    }
    size_t hit = ng;
    for (size_t g = 0; ok && g < ng && hit == ng; g++) {
      if (used[g]) continue;
      int same = 1;
      json_object_foreach(exp, col, val) same = same && json_object_get(json_array_get(rows, g), col) &&
                                                 same_value(json_string_value(val),
                                                            seeddms_str(json_array_get(rows, g), col));
      if (same) hit = g;
    }
    if (hit < ng) used[hit] = 1;
    else if (ok) vdiff(v, "%s: no row on the target has %s", t->name, shown.buf ? shown.buf : "");
    ferry_buf_free(&shown);
    json_decref(exp);
  }
  ferry_free(used);
}

static void verify_rows(void *arg, json_t *rows, const ferry_error *err) {
  vjob *v = arg;
  const char *tname = verify_where[v->next - 1].table;
  const seeddms_table *t = seeddms_table_in(v->j.c->detected, tname);
  if (!rows) {
    vdiff(v, "%s cannot be read on the target: %s", tname, err ? err->message : "?");
    verify_next(v);
    return;
  }
  json_t *want = json_object_get(v->j.tables, tname);
  size_t nw = json_array_size(want), ng = json_array_size(rows);
  if (nw != ng) vdiff(v, "%s: %zu rows on the source, %zu on the target", tname, nw, ng);
  if (!t->id) {
    verify_unordered(v, t, want, rows);
    verify_next(v);
    return;
  }
  for (size_t i = 0; i < nw && i < ng; i++) {
    json_t *w = json_array_get(want, i), *g = json_array_get(rows, i);
    if (t->idvar) {
      char *var = ferry_asprintf("%s:%s", t->idvar, seeddms_str(w, t->id));
      json_object_set_new(v->j.vars, var, json_string(seeddms_str(g, t->id)));
      ferry_free(var);
    }
    const char *col;
    json_t *val;
    json_object_foreach(w, col, val) {
      if (t->id && !strcmp(col, t->id)) continue;
      const seeddms_col *spec = NULL;
      for (const seeddms_col *cc = t->cols; cc->name; cc++)
        if (!strcmp(cc->name, col)) spec = cc;
      int ok;
      char *e = expected(v, t, spec, w, val, &ok);
      const char *got = seeddms_str(g, col);
      if (!ok)
        vdiff(v, "%s row %zu (source id %s): %s", tname, i + 1, t->id ? seeddms_str(w, t->id) : "-", e);
      else if (!json_object_get(g, col))
        vdiff(v, "%s has no column %s on the target", tname, col);
      else if (!same_value(e, got))
        vdiff(v, "%s row %zu (source id %s, target id %s) %s: \"%s\" expected, \"%s\" found", tname, i + 1,
              t->id ? seeddms_str(w, t->id) : "-", t->id ? seeddms_str(g, t->id) : "-", col, e ? e : "NULL",
              got ? got : "NULL");
      ferry_free(e);
    }
  }
  verify_next(v);
}

static void verify_next(vjob *v) {
  seeddms_ctx *c = v->j.c;
  while (v->next < NVERIFY && verify_where[v->next].folder != v->folder) v->next++;
  if (v->next < NVERIFY) {
    const seeddms_table *t;
    char *sql = where_sql(c, v->next, "*", &t);
    v->next++;
    ferry_sql_value p = {v->tid, strlen(v->tid), 0};
    int rc = seeddms_collect(c->db, NULL, sql, 1, &p, verify_rows, v);
    ferry_free(sql);
    if (rc < 0) {
      vdiff(v, "cannot query %s on the target", t->name);
      verify_next(v);
    }
    return;
  }
  if (v->j.fnext < json_array_size(v->j.files)) {
    json_t *f = json_array_get(v->j.files, v->j.fnext++);
    char *path = seeddms_version_path(c, strtoll(v->tid, NULL, 10), json_string_value(json_object_get(f, "version")),
                                      json_string_value(json_object_get(f, "fileType")));
    seeddms_file_copy(c, path, NULL, json_string_value(json_object_get(f, "checksum")), 1, verify_file_done, v);
    ferry_free(path);
    return;
  }
  verify_end(v);
}

static void verify_start(seeddms_ctx *c, ferry_task *task) {
  if (c->snk->err.code) {
    ferry_task_fail(task, &c->snk->err);
    return;
  }
  const ferry_item *it = ferry_task_item(task);
  vjob *v = calloc(1, sizeof *v);
  v->j.c = c;
  v->j.task = task;
  v->j.vars = json_object();
  v->diffs = json_array();
  v->folder = !strcmp(ferry_item_str(it, "object", ""), "folder");
  const char *tid = json_string_value(json_object_get(ferry_task_state(task), "target_id"));
  v->tid = tid ? ferry_strdup(tid) : ferry_task_lookup_id(task, v->folder ? "folder" : "document",
                                                         ferry_item_str(it, "id", ""));
  if (!v->tid) {
    task_fail(task, FERRY_EMISMATCH, "seeddms: the journal holds no target id for this item");
    vjob_free(v);
    return;
  }
  v->j.tables = target_tables(c, it, NULL, &v->j.err);
  if (!v->j.tables) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, v->j.err.code, "seeddms: %s: %s", it->key, v->j.err.message);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    vjob_free(v);
    return;
  }
  char *var = ferry_asprintf("%s:%s", v->folder ? "folder" : "doc", ferry_item_str(it, "id", ""));
  json_object_set_new(v->j.vars, var, json_string(v->tid));
  ferry_free(var);
  if (!v->folder) {
    v->j.files = json_incref(json_object_get(it->body, "files"));
  }
  if (!v->j.files) v->j.files = json_array();
  verify_next(v);
}
