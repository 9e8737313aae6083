// One worker thread of `--offload N` (offload.js): it runs image jobs, one
// at a time, with its own copy of the kernel and its own reused buffers,
// and posts each checksum back to the event loop's thread.
'use strict';

const { parentPort } = require('node:worker_threads');
const { runImage } = require('./kernel');

parentPort.on('message', ({ op, width, height, seedHi, seedLo }) => {
  const started = performance.now();
  const checksum = runImage(op, width, height, seedHi, seedLo);
  const micros = Math.round((performance.now() - started) * 1000);
  parentPort.postMessage({ checksum, micros });
});
