// `--offload N`: image jobs leave the event loop for a pool of N
// worker_threads, so a blur no longer stalls every other connection. This
// is Node's answer to CPU work on a loop, and the counterpart of
// event_loop_server's --offload-workers (event_loop_server/src/offload.rs):
// a fixed set of threads, a bounded queue of waiting jobs, and the answer
// handed back to the loop, which puts it in the connection's slot.
//
// What it costs, beside the Rust pool: each job and each answer is a
// message, copied (structured clone) between isolates, and each worker is
// a whole V8 isolate with its own heap, some megabytes before it runs a
// job. A Rust worker shares the process's memory and takes the job by
// pointer. The library itself (libuv's threadpool) runs only Node's own C++
// work (fs, dns, crypto, zlib), never JavaScript, so worker_threads is the
// only way to run this kernel off the loop.
'use strict';

const path = require('node:path');
const { Worker } = require('node:worker_threads');

// Jobs waiting for a worker before IMAGE is answered "ERR busy: image queue
// full", as QUEUE in event_loop_server/src/offload.rs.
const QUEUE = 1024;

class ImagePool {
  constructor(size) {
    this.idle = [];
    this.waiting = [];
    this.workers = [];
    this.closing = false;
    for (let id = 0; id < size; id++) this.spawn(id);
  }

  spawn(id) {
    const worker = new Worker(path.join(__dirname, 'image_worker.js'));
    const entry = { id, worker, job: null };
    worker.on('message', (result) => this.done(entry, { ...result, worker: id }));
    // A worker that dies (a bug, or out of memory) answers its job with an
    // error line, and a fresh one takes its place: one bad job must not
    // take the pool down.
    worker.on('error', () => {});
    worker.on('exit', () => {
      if (this.closing) return;
      if (entry.job !== null) entry.job.reply({ error: 'worker exited' });
      this.workers = this.workers.filter((w) => w !== entry);
      this.idle = this.idle.filter((w) => w !== entry);
      this.spawn(id);
    });
    this.workers.push(entry);
    this.idle.push(entry);
    this.dispatch();
  }

  // Queues `job`; `reply` gets {checksum, micros, worker} or {error}.
  // False when the queue is full.
  submit(job, reply) {
    if (this.waiting.length >= QUEUE) return false;
    this.waiting.push({ job, reply });
    this.dispatch();
    return true;
  }

  dispatch() {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const entry = this.idle.pop();
      entry.job = this.waiting.shift();
      const { op, width, height, seed } = entry.job.job;
      entry.worker.postMessage({ op, width, height, seedHi: seed.hi, seedLo: seed.lo });
    }
  }

  done(entry, result) {
    const { reply } = entry.job;
    entry.job = null;
    this.idle.push(entry);
    this.dispatch();
    reply(result);
  }

  close() {
    this.closing = true;
    return Promise.all(this.workers.map((entry) => entry.worker.terminate()));
  }
}

module.exports = { ImagePool };
