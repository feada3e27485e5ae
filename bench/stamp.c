/* bench/stamp.c: the handler of the latency benchmark (bench/run builds it with cc).
 * Its payload is the wall-clock time, in microseconds since the epoch, at which bench/run
 * handed the job to workq-enqueue. It reads the clock first thing in main() and prints the
 * difference in microseconds: the job's result is its enqueue -> handler-start latency. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long started_us = (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000;
    char payload[64];
    ssize_t got = read(0, payload, sizeof payload - 1);
    if (got <= 0) return 2;
    payload[got] = '\0';
    long long enqueued_us = atoll(payload);
    if (enqueued_us <= 0) return 2;
    printf("%lld", started_us - enqueued_us);
    return 0;
}
