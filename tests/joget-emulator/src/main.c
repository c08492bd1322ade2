/* joget-emulator: command line. */
#define _GNU_SOURCE
#include "emu.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: joget-emulator --db URL|CONNINFO [options]\n"
            "A Joget DX 8 compatible server for tests (JSON API under /jw/web/json/, state in PostgreSQL or MariaDB).\n\n"
            "  --db URL|CONNINFO    the database holding the Joget tables (required): mariadb://user:password@host:port/db\n"
            "                       (or mysql://...) for MariaDB/MySQL with Joget's MySQL layout, else a libpq\n"
            "                       connection string for PostgreSQL with Joget's PostgreSQL layout\n"
            "  --fixture FILE       JSON fixture to load (repeatable); loaded only into a fresh database or with --reset\n"
            "  --reset              drop and recreate all Joget tables before loading\n"
            "  --uploads DIR        base directory (wflow home); files go to DIR/app_formuploads/<table>/<recordId>/\n"
            "  --host ADDR          IPv4 address to listen on (default 127.0.0.1)\n"
            "  --port N             TCP port; 0 = pick a free one (default 0)\n"
            "  --port-file FILE     write the bound port to FILE once listening\n"
            "  --threads N          worker threads, one database connection each (default 8)\n"
            "  --latency-ms N       added to every reply\n"
            "  --max-inflight N     at most N requests inside their latency at once, the others queue in arrival\n"
            "                       order (a server with N busy workers; needs --latency-ms; default 0 = no limit)\n"
            "  --fail-rate R        fraction 0..1 of /jw/web/json/ requests that fail\n"
            "  --fail-kinds LIST    comma list of 500,reset,timeout,lost,partial,twice (default 500):\n"
            "                       500 error answer, nothing done; reset closed unanswered, nothing done;\n"
            "                       timeout held --timeout-ms, then done and answered; lost done and committed,\n"
            "                       then closed unanswered (POST calls only); partial done, then the answer is\n"
            "                       cut after about half of its body; twice process/start executed two times\n"
            "                       (a proxy that re-sent it), the second answered\n"
            "  --timeout-ms N       delay of a 'timeout' fault before the answer; 0 = never answer (default 30000)\n"
            "  --seed S             seed of the deterministic fault sequence (default 1)\n"
            "  --request-log FILE   append one line per request (time method url status user duration fault arrival)\n"
            "  --audit-log FILE     append one line per assignment created or reassigned in apps whose default\n"
            "                       plugins include UserNotificationAuditTrail (time event activityId processId user)\n"
            "  --load-only          load fixtures and exit without serving\n"
            "  --help               this text\n");
}

static int num_arg(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *e;
    long n = strtol(v, &e, 10);
    if (!*v || *e || n < lo || n > hi) {
        fprintf(stderr, "joget-emulator: %s: '%s' is not an integer in [%ld, %ld]\n", opt, v, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

int main(int argc, char **argv)
{
    static struct option opts[] = {
        {"db", 1, 0, 'd'}, {"fixture", 1, 0, 'f'}, {"reset", 0, 0, 'r'}, {"uploads", 1, 0, 'u'},
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"port-file", 1, 0, 'P'}, {"threads", 1, 0, 't'},
        {"latency-ms", 1, 0, 'l'}, {"fail-rate", 1, 0, 'F'}, {"fail-kinds", 1, 0, 'k'}, {"timeout-ms", 1, 0, 'T'},
        {"seed", 1, 0, 's'}, {"request-log", 1, 0, 'L'}, {"audit-log", 1, 0, 'A'}, {"load-only", 0, 0, 'o'},
        {"max-inflight", 1, 0, 'M'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    http_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 8;
    cfg.timeout_ms = 30000;
    cfg.seed = 1;
    cfg.fail_500 = 1;
    const char *db = NULL, *port_file = NULL, *audit_log = NULL;
    const char *fixtures[64];
    int nfix = 0, reset = 0, load_only = 0;
    long n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f':
            if (nfix == 64) { fprintf(stderr, "joget-emulator: --fixture: at most 64\n"); return 2; }
            fixtures[nfix++] = optarg;
            break;
        case 'r': reset = 1; break;
        case 'u': cfg.uploads = optarg; break;
        case 'H': cfg.host = optarg; break;
        case 'p': if (num_arg("--port", optarg, 0, 65535, &n) < 0) return 2; cfg.port = (int)n; break;
        case 'P': port_file = optarg; break;
        case 't': if (num_arg("--threads", optarg, 1, 256, &n) < 0) return 2; cfg.threads = (int)n; break;
        case 'l': if (num_arg("--latency-ms", optarg, 0, 3600000, &n) < 0) return 2; cfg.latency_ms = (int)n; break;
        case 'M': if (num_arg("--max-inflight", optarg, 0, 100000, &n) < 0) return 2; cfg.max_inflight = (int)n; break;
        case 'T': if (num_arg("--timeout-ms", optarg, 0, 86400000, &n) < 0) return 2; cfg.timeout_ms = (int)n; break;
        case 'F': {
            char *e;
            double r = strtod(optarg, &e);
            if (!*optarg || *e || r < 0 || r > 1) { fprintf(stderr, "joget-emulator: --fail-rate: '%s' is not a number in [0, 1]\n", optarg); return 2; }
            cfg.fail_rate = r;
            break;
        }
        case 'k': {
            cfg.fail_500 = cfg.fail_reset = cfg.fail_timeout = cfg.fail_lost = cfg.fail_partial = cfg.fail_twice = 0;
            char *d = xstrdup(optarg), *save = NULL;
            for (char *t = strtok_r(d, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "500")) cfg.fail_500 = 1;
                else if (!strcmp(t, "reset")) cfg.fail_reset = 1;
                else if (!strcmp(t, "timeout")) cfg.fail_timeout = 1;
                else if (!strcmp(t, "lost")) cfg.fail_lost = 1;
                else if (!strcmp(t, "partial")) cfg.fail_partial = 1;
                else if (!strcmp(t, "twice")) cfg.fail_twice = 1;
                else {
                    fprintf(stderr, "joget-emulator: --fail-kinds: unknown kind '%s' (valid: 500,reset,timeout,lost,partial,twice)\n", t);
                    free(d);
                    return 2;
                }
            }
            free(d);
            break;
        }
        case 's': {
            char *e;
            unsigned long long s = strtoull(optarg, &e, 10);
            if (!*optarg || *e) { fprintf(stderr, "joget-emulator: --seed: '%s' is not an unsigned integer\n", optarg); return 2; }
            cfg.seed = s;
            break;
        }
        case 'L': cfg.request_log = optarg; break;
        case 'A': audit_log = optarg; break;
        case 'o': load_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "joget-emulator: unexpected argument '%s'\n", argv[optind]); usage(stderr); return 2; }
    if (!db) { fprintf(stderr, "joget-emulator: --db URL|CONNINFO is required\n"); usage(stderr); return 2; }
    if (db_setup(db) < 0) return 2;
    int rc = 1;
    dbconn *conn = db_conn();
    if (!conn) goto out;
    if (db_schema(conn, reset) < 0) { fprintf(stderr, "joget-emulator: cannot create the Joget tables\n"); goto out; }
    dbres *r = db_query(conn, sqlq(Q_META_LOADED), 0, NULL);
    int loaded = r && atoi(db_get(r, 0, 0)) > 0;
    db_free(r);
    if (graphs_load(conn) < 0) goto out;
    if (nfix && loaded && !reset)
        fprintf(stderr, "joget-emulator: database already holds a fixture; reusing it (use --reset to reload)\n");
    else
        for (int i = 0; i < nfix; i++) {
            if (fixture_load(conn, fixtures[i], cfg.uploads) < 0) goto out;
        }
    if (graphs_load(conn) < 0) goto out;
    if (load_only) { rc = 0; goto out; }
    if (audit_log && eng_audit_open(audit_log) < 0) goto out;
    rc = http_run(&cfg, port_file);
out:
    db_shutdown();
    eng_audit_close();
    graphs_free();
    return rc;
}
