/* Process graphs: parsed from the emulator-private table emu_process_graph, read-only at run time. */
#define _GNU_SOURCE
#include "emu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static proc_t *procs;
static int nprocs;

static char *jstr(json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (json_is_integer(v)) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
        return xstrdup(b);
    }
    if (json_is_real(v)) {
        char b[64];
        fmt_double(json_real_value(v), b, sizeof b);
        return xstrdup(b);
    }
    if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "true" : "false");
    return def ? xstrdup(def) : NULL;
}

int proc_act(const proc_t *p, const char *actdef)
{
    for (int i = 0; i < p->nacts; i++)
        if (strcmp(p->acts[i].id, actdef) == 0) return i;
    return -1;
}

const var_t *proc_var(const proc_t *p, const char *id)
{
    for (int i = 0; i < p->nvars; i++)
        if (strcmp(p->vars[i].id, id) == 0) return &p->vars[i];
    return NULL;
}

int proc_join_need(const proc_t *p, const act_t *a)
{
    int need = 0;
    for (int k = 0; k < a->nin; k++) {
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= p->tr[a->in[j]].from == p->tr[a->in[k]].from;
        need += !dup;
    }
    return need;
}

void proc_free(proc_t *p)
{
    for (int i = 0; i < p->nacts; i++) {
        act_t *a = &p->acts[i];
        free(a->id); free(a->name); free(a->type); free(a->performer); free(a->subflow);
        free(a->in); free(a->out);
    }
    free(p->acts);
    free(p->tr);
    for (int i = 0; i < p->nvars; i++) { free(p->vars[i].id); free(p->vars[i].type); free(p->vars[i].initial); }
    free(p->vars);
    free(p->pdefname); free(p->appid); free(p->procid); free(p->name); free(p->pkgname);
    json_decref(p->graph);
    memset(p, 0, sizeof *p);
}

#define GERR(...) do { snprintf(err, errn, __VA_ARGS__); goto fail; } while (0)

int graph_parse(const char *pdefname, json_t *g, proc_t *p, char *err, size_t errn)
{
    memset(p, 0, sizeof *p);
    p->graph = json_incref(g);
    p->pdefname = xstrdup(pdefname);
    char *h1 = strchr(pdefname, '#'), *h2 = h1 ? strchr(h1 + 1, '#') : NULL;
    if (!h1 || !h2) GERR("bad process definition id '%s'", pdefname);
    p->appid = strndup(pdefname, (size_t)(h1 - pdefname));
    p->pkgver = strtol(h1 + 1, NULL, 10);
    p->procid = xstrdup(h2 + 1);
    p->name = jstr(g, "name", p->procid);
    p->pkgname = jstr(g, "packageName", p->appid);

    json_t *vars = json_object_get(g, "variables");
    if (vars && !json_is_array(vars)) GERR("variables: must be an array");
    p->nvars = (int)json_array_size(vars);
    p->vars = calloc((size_t)p->nvars + 1, sizeof *p->vars);
    for (int i = 0; i < p->nvars; i++) {
        json_t *v = json_array_get(vars, (size_t)i);
        p->vars[i].id = jstr(v, "id", NULL);
        p->vars[i].type = jstr(v, "type", "String");
        p->vars[i].initial = jstr(v, "initial", NULL);
        if (!p->vars[i].id) GERR("variables[%d].id: missing", i);
        const char *t = p->vars[i].type;
        if (strcmp(t, "String") && strcmp(t, "Long") && strcmp(t, "Double") && strcmp(t, "Boolean"))
            GERR("variables[%d].type: '%s' is not String, Long, Double or Boolean", i, t);
    }

    json_t *acts = json_object_get(g, "activities");
    if (!json_is_array(acts) || json_array_size(acts) == 0) GERR("activities: must be a non-empty array");
    p->nacts = (int)json_array_size(acts);
    p->acts = calloc((size_t)p->nacts, sizeof *p->acts);
    for (int i = 0; i < p->nacts; i++) {
        json_t *a = json_array_get(acts, (size_t)i);
        act_t *x = &p->acts[i];
        x->id = jstr(a, "id", NULL);
        if (!x->id || !*x->id) GERR("activities[%d].id: missing", i);
        if (sfa_bad(x->id)) GERR("activities[%d].id: '%s' contains a character Joget rejects", i, x->id);
        x->name = jstr(a, "name", x->id);
        x->type = jstr(a, "type", "manual");
        if (strcmp(x->type, "manual") && strcmp(x->type, "tool") && strcmp(x->type, "route") && strcmp(x->type, "subflow"))
            GERR("activities[%d].type: '%s' is not manual, tool, route or subflow", i, x->type);
        x->performer = jstr(a, "participant", NULL);
        if (!strcmp(x->type, "manual") && !x->performer) GERR("activities[%d].participant: missing for manual activity '%s'", i, x->id);
        x->subflow = jstr(a, "subflow", NULL);
        if (!strcmp(x->type, "subflow") && !x->subflow) GERR("activities[%d].subflow: missing for sub-flow activity '%s'", i, x->id);
        char *j = jstr(a, "join", "xor"), *s = jstr(a, "split", "xor");
        x->join_and = !strcmp(j, "and");
        x->split_and = !strcmp(s, "and");
        free(j); free(s);
        x->async_sub = json_is_true(json_object_get(a, "async"));
        json_t *dl = json_object_get(a, "deadline_ms");
        if (dl && (!json_is_integer(dl) || json_integer_value(dl) < 0))
            GERR("activities[%d].deadline_ms: must be a non-negative integer (milliseconds)", i);
        x->deadline_ms = dl ? (long long)json_integer_value(dl) : 0;
        for (int k = 0; k < i; k++)
            if (!strcmp(p->acts[k].id, x->id)) GERR("activities[%d].id: duplicate '%s'", i, x->id);
    }
    json_t *trs = json_object_get(g, "transitions");
    if (trs && !json_is_array(trs)) GERR("transitions: must be an array");
    p->ntr = (int)json_array_size(trs);
    p->tr = calloc((size_t)p->ntr + 1, sizeof *p->tr);
    for (int i = 0; i < p->ntr; i++) {
        json_t *t = json_array_get(trs, (size_t)i);
        const char *f = json_string_value(json_object_get(t, "from"));
        const char *to = json_string_value(json_object_get(t, "to"));
        p->tr[i].from = f ? proc_act(p, f) : -1;
        p->tr[i].to = to ? proc_act(p, to) : -1;
        if (p->tr[i].from < 0) GERR("transitions[%d].from: unknown activity '%s'", i, nz(f));
        if (p->tr[i].to < 0) GERR("transitions[%d].to: unknown activity '%s'", i, nz(to));
        json_t *c = json_object_get(t, "condition");
        if (c) {
            if (!json_is_object(c) || !json_is_string(json_object_get(c, "variable")))
                GERR("transitions[%d].condition: must be {\"variable\":..,\"op\":..,\"value\":..}", i);
            const char *op = json_string_value(json_object_get(c, "op"));
            if (op && strcmp(op, "==") && strcmp(op, "!=") && strcmp(op, ">") && strcmp(op, "<") &&
                strcmp(op, ">=") && strcmp(op, "<="))
                GERR("transitions[%d].condition.op: '%s' is not one of == != > < >= <=", i, op);
            p->tr[i].cond = c;
        }
        p->tr[i].otherwise = json_is_true(json_object_get(t, "otherwise"));
        act_t *fa = &p->acts[p->tr[i].from], *ta = &p->acts[p->tr[i].to];
        fa->out = realloc(fa->out, sizeof(int) * (size_t)(fa->nout + 1));
        fa->out[fa->nout++] = i;
        ta->in = realloc(ta->in, sizeof(int) * (size_t)(ta->nin + 1));
        ta->in[ta->nin++] = i;
    }
    return 0;
fail:
    proc_free(p);
    return -1;
}

const proc_t *proc_find(const char *pdefname)
{
    for (int i = 0; i < nprocs; i++)
        if (strcmp(procs[i].pdefname, pdefname) == 0) return &procs[i];
    return NULL;
}

int graphs_load(dbconn *c)
{
    dbres *r = db_query(c, "SELECT pdefname, graph FROM emu_process_graph ORDER BY pdefname", 0, NULL);
    if (!r) { db_free(r); return -1; }
    graphs_free();
    int n = db_nrows(r);
    procs = calloc((size_t)n + 1, sizeof *procs);
    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t *g = json_loads(db_get(r, i, 1), 0, &je);
        char err[512];
        if (!g || graph_parse(db_get(r, i, 0), g, &procs[nprocs], err, sizeof err) < 0) {
            fprintf(stderr, "joget-emulator: emu_process_graph row '%s': %s\n", db_get(r, i, 0), g ? err : je.text);
            json_decref(g);
            continue;
        }
        json_decref(g);
        nprocs++;
    }
    db_free(r);
    return 0;
}

void graphs_free(void)
{
    for (int i = 0; i < nprocs; i++) proc_free(&procs[i]);
    free(procs);
    procs = NULL;
    nprocs = 0;
}
