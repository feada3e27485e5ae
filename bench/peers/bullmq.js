// bench/peers/bullmq.js: BullMQ's side of `bench/run --peers` (not a test).
//
//   node bullmq.js enqueue QUEUE FILE       one job per line of FILE (addBulk, 1,000 a call)
//   node bullmq.js work QUEUE N CONCURRENCY a Worker with an in-process no-op processor; exits
//                                           when N jobs have completed
//
// Connects to PEER_REDIS_HOST:PEER_REDIS_PORT. Prints one line: "first_us done_us hwm_kib": the
// wall clock in µs when the first job started (0 for enqueue), when the last job completed or
// the last call returned, and VmHWM. bench/run
// installs bullmq and ioredis with npm into a directory outside the repository and points
// NODE_PATH at it.
'use strict';
const fs = require('fs');
const { Queue, Worker } = require('bullmq');

const connection = {
    host: process.env.PEER_REDIS_HOST || '127.0.0.1',
    port: Number(process.env.PEER_REDIS_PORT || 6379),
    maxRetriesPerRequest: null,
};
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const hwmKib = () => {
    const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : 0;
};

async function enqueue(name, file) {
    const queue = new Queue(name, { connection });
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
    for (let i = 0; i < lines.length; i += 1000) {
        await queue.addBulk(lines.slice(i, i + 1000).map((p) => ({ name: 'j', data: p })));
    }
    const done = nowUs();
    await queue.close();
    console.log(`0 ${done} ${hwmKib()}`);
}

async function work(name, n, concurrency) {
    let completed = 0;
    let finish;
    const finished = new Promise((resolve) => { finish = resolve; });
    let first = 0;
    const worker = new Worker(name, async () => { if (first === 0) first = nowUs(); },
        { connection, concurrency });
    worker.on('completed', () => {
        completed += 1;
        if (completed === n) finish(nowUs());
    });
    worker.on('failed', (job, err) => { console.error(`job failed: ${err}`); process.exit(1); });
    const done = await finished;
    const hwm = hwmKib();
    await worker.close();
    console.log(`${first} ${done} ${hwm}`);
}

const [mode, name, a, b] = process.argv.slice(2);
const run = mode === 'enqueue' ? enqueue(name, a) : work(name, Number(a), Number(b));
run.then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
