/* emu-loadgen: keep-alive HTTP load on one URL with libcurl multi; prints requests/second.
   usage: emu-loadgen URL [CONNECTIONS=32] [SECONDS=5] [HEADER...]   (fallback when wrk is not installed) */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t sink(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: emu-loadgen URL [CONNECTIONS] [SECONDS] [HEADER...]\n"); return 2; }
    int nconn = argc > 2 ? atoi(argv[2]) : 32;
    double secs = argc > 3 ? atof(argv[3]) : 5;
    if (nconn < 1 || nconn > 1000 || secs <= 0) { fprintf(stderr, "emu-loadgen: bad CONNECTIONS or SECONDS\n"); return 2; }
    curl_global_init(CURL_GLOBAL_ALL);
    struct curl_slist *hdr = NULL;
    for (int i = 4; i < argc; i++) hdr = curl_slist_append(hdr, argv[i]);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)nconn);
    CURL **h = calloc((size_t)nconn, sizeof *h);
    for (int i = 0; i < nconn; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, argv[1]);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdr);
        curl_multi_add_handle(m, h[i]);
    }
    long ok = 0, bad = 0;
    double t0 = now(), end = t0 + secs;
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code == 200) ok++; else bad++;
            curl_multi_remove_handle(m, msg->easy_handle);
            if (now() < end) { curl_multi_add_handle(m, msg->easy_handle); running = 1; }
        }
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
        if (!running && now() < end) running = 1;
    }
    double el = now() - t0;
    printf("requests: %ld ok, %ld failed in %.2f s: %.0f requests/second\n", ok, bad, el, (double)ok / el);
    for (int i = 0; i < nconn; i++) curl_easy_cleanup(h[i]);
    free(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
