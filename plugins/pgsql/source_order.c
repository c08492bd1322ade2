/* pgsql source: the foreign-key order of the selected tables: strongly connected components
 * (Tarjan), cycles reported, ranks. */
#include "source.h"

/* ---- order: components, cycles, ranks ----------------------------------------------------------------------- */
typedef struct tarjan {
  pgsql_src *s;
  int *index, *low, *onstack;
  size_t *stack;
  size_t sp;
  int counter, nscc;
} tarjan;

static void strongconnect(tarjan *tj, size_t v) {
  tj->index[v] = tj->low[v] = tj->counter++;
  tj->stack[tj->sp++] = v;
  tj->onstack[v] = 1;
  stable *t = &tj->s->t[v];
  for (size_t i = 0; i < t->nparents; i++) {
    size_t u = t->parents[i];
    if (tj->index[u] < 0) {
      strongconnect(tj, u);
      if (tj->low[u] < tj->low[v]) tj->low[v] = tj->low[u];
    } else if (tj->onstack[u] && tj->index[u] < tj->low[v]) {
      tj->low[v] = tj->index[u];
    }
  }
  if (tj->low[v] == tj->index[v]) {
    size_t u;
    do {
      u = tj->stack[--tj->sp];
      tj->onstack[u] = 0;
      tj->s->t[u].scc = tj->nscc;
    } while (u != v);
    tj->nscc++;
  }
}

/* A cycle inside component `scc` starting at table `start`, as "a -> b -> a" (depth-first search). */
static int cycle_path(pgsql_src *s, size_t v, size_t start, int *seen, size_t *path, size_t depth,
                      ferry_buf *out) {
  path[depth] = v;
  seen[v] = 1;
  stable *t = &s->t[v];
  for (size_t i = 0; i < t->nparents; i++) {
    size_t u = t->parents[i];
    if (s->t[u].scc != t->scc) continue;
    if (u == start) {
      for (size_t k = 0; k <= depth; k++) ferry_buf_addf(out, "%s -> ", s->t[path[k]].name);
      ferry_buf_add(out, s->t[start].name);
      return 1;
    }
    if (!seen[u] && cycle_path(s, u, start, seen, path, depth + 1, out)) return 1;
  }
  return 0;
}

void pgsql_order_tables(pgsql_src *s) {
  size_t n = s->nt;
  tarjan tj = {.s = s};
  tj.index = pgsql_xmalloc(n * sizeof(int));
  tj.low = pgsql_xmalloc(n * sizeof(int));
  tj.onstack = pgsql_xcalloc(n, sizeof(int));
  tj.stack = pgsql_xmalloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) tj.index[i] = -1;
  for (size_t i = 0; i < n; i++)
    if (tj.index[i] < 0) strongconnect(&tj, i);
  /* cyclic components */
  size_t *members = pgsql_xcalloc((size_t)tj.nscc, sizeof(size_t));
  for (size_t i = 0; i < n; i++) members[s->t[i].scc]++;
  for (size_t i = 0; i < n; i++) s->t[i].cyclic = members[s->t[i].scc] > 1 || s->t[i].self_ref;
  ferry_buf report = {0};
  int *seen = pgsql_xcalloc(n, sizeof(int));
  size_t *path = pgsql_xmalloc(n * sizeof(size_t));
  int *reported = pgsql_xcalloc((size_t)tj.nscc, sizeof(int));
  for (size_t i = 0; i < n; i++) {
    stable *t = &s->t[i];
    if (!t->cyclic || reported[t->scc]) continue;
    reported[t->scc] = 1;
    memset(seen, 0, n * sizeof(int));
    ferry_buf cyc = {0};
    if (members[t->scc] == 1) ferry_buf_addf(&cyc, "%s -> %s", t->name, t->name); /* refers to itself */
    else cycle_path(s, i, i, seen, path, 0, &cyc);
    if (s->c->defer_constraints) {
      ferry_log_warn(s->ins,
                     "tables form a foreign-key cycle: %s; copying them with the target's foreign-key "
                     "triggers off for their batches (defer_constraints)", cyc.buf ? cyc.buf : t->name);
    } else {
      ferry_buf_addf(&report, "%s%s", report.len ? "; " : "", cyc.buf ? cyc.buf : t->name);
    }
    ferry_buf_free(&cyc);
  }
  if (report.len) {
    /* refuse the cycles' tables and every table that depends on one of them */
    for (size_t i = 0; i < n; i++)
      if (s->t[i].cyclic) s->t[i].state = T_REFUSED;
    ferry_buf deps = {0};
    for (int changed = 1; changed;) {
      changed = 0;
      for (size_t i = 0; i < n; i++) {
        stable *t = &s->t[i];
        if (t->state == T_REFUSED) continue;
        for (size_t p = 0; p < t->nparents; p++) {
          if (s->t[t->parents[p]].state == T_REFUSED) {
            t->state = T_REFUSED;
            ferry_buf_addf(&deps, "%s%s", deps.len ? ", " : "", t->name);
            changed = 1;
            break;
          }
        }
      }
    }
    ferry_buf msg = {0};
    ferry_buf_addf(&msg, "pgsql source: tables form a foreign-key cycle, so no order puts parents first: %s. "
                        "Refused: the tables of the cycle", report.buf);
    if (deps.len) ferry_buf_addf(&msg, " and the tables depending on them (%s)", deps.buf);
    ferry_buf_add(&msg, "; the other tables were copied. Leave them out (option \"exclude\"), or set "
                       "\"defer_constraints\": true to copy them with the target's foreign-key checks off");
    s->refusal = ferry_buf_steal(&msg);
    ferry_buf_free(&deps);
    ferry_log_error(s->ins, "%s", s->refusal);
  }
  ferry_buf_free(&report);
  /* ranks: components in topological order (parents first), ties by name (tables are sorted by name) */
  size_t rank = 0;
  int *placed = pgsql_xcalloc((size_t)tj.nscc, sizeof(int));
  for (int progress = 1; progress;) {
    progress = 0;
    for (size_t i = 0; i < n; i++) {
      stable *t = &s->t[i];
      if (placed[t->scc]) continue;
      int ok = 1;
      for (size_t k = 0; k < n && ok; k++) {
        if (s->t[k].scc != t->scc) continue;
        for (size_t p = 0; p < s->t[k].nparents; p++) {
          stable *par = &s->t[s->t[k].parents[p]];
          if (par->scc != t->scc && !placed[par->scc]) ok = 0;
        }
      }
      if (!ok) continue;
      placed[t->scc] = 1;
      for (size_t k = 0; k < n; k++)
        if (s->t[k].scc == t->scc) s->t[k].rank = rank++;
      progress = 1;
      break; /* lowest name first among the components that can go now */
    }
  }
  /* "after" and the initial states */
  for (size_t i = 0; i < n; i++) {
    stable *t = &s->t[i];
    t->after = json_array();
    int ready = 1;
    for (size_t p = 0; p < t->nparents; p++) {
      stable *par = &s->t[t->parents[p]];
      if (par->scc == t->scc) continue;
      json_array_append_new(t->after, json_string(par->name));
    }
    for (size_t k = 0; k < n; k++) {
      if (s->t[k].scc != t->scc) continue;
      for (size_t p = 0; p < s->t[k].nparents; p++)
        if (s->t[s->t[k].parents[p]].scc != t->scc) ready = 0;
    }
    if (t->state != T_REFUSED) t->state = ready ? T_READY : T_WAIT;
  }
  free(placed);
  free(reported);
  free(path);
  free(seen);
  free(members);
  free(tj.index);
  free(tj.low);
  free(tj.onstack);
  free(tj.stack);
}
