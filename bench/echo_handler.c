/* bench/echo_handler.c: the trivial persistent handler of bench/run (workq-work --persistent).
 * For each JSON line on stdin it answers {"id":"<the same id>","ok":true,"result":""} at once.
 * Ids are [A-Za-z0-9._-] (CONTRACT.md), so no JSON unescaping is needed to echo one. */
#include <stdio.h>
#include <string.h>

int main(void) {
    char *line = NULL;
    size_t size = 0;
    ssize_t length;
    while ((length = getline(&line, &size, stdin)) > 0) {
        char *id = strstr(line, "\"id\":\"");
        if (!id) return 3;
        id += 6;
        char *end = strchr(id, '"');
        if (!end) return 3;
        *end = '\0';
        printf("{\"id\":\"%s\",\"ok\":true,\"result\":\"\"}\n", id);
        fflush(stdout);
    }
    return 0;
}
