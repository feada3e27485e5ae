"""bench/peers/rq_jobs.py: RQ's side of `bench/run --peers` (not a test).

    python3 rq_jobs.py enqueue QUEUE FILE   one job per line of FILE (enqueue_many, 1,000 a call)

The job function is `rq_jobs.noop`; the workers are RQ's own `rq worker --burst` (which forks a
work horse per job), started by bench/run with this directory on PYTHONPATH. Connects to
PEER_REDIS_HOST:PEER_REDIS_PORT and prints "0 done_us hwm_kib" like the other peers.
"""
import os
import sys
import time

from redis import Redis
from rq import Queue


def noop(payload):
    return None


def hwm_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def enqueue(name, path):
    redis = Redis(host=os.environ.get("PEER_REDIS_HOST", "127.0.0.1"),
                  port=int(os.environ.get("PEER_REDIS_PORT", "6379")))
    queue = Queue(name, connection=redis)
    with open(path) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    for i in range(0, len(lines), 1000):
        queue.enqueue_many([Queue.prepare_data("rq_jobs.noop", (p,)) for p in lines[i:i + 1000]])
    print(f"0 {time.time_ns() // 1000} {hwm_kib()}")


if __name__ == "__main__":
    if sys.argv[1] != "enqueue":
        sys.exit("usage: rq_jobs.py enqueue QUEUE FILE")
    enqueue(sys.argv[2], sys.argv[3])
