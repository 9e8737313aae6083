// How fast the JavaScript IMAGE kernel runs on one core, in MPix/s, to set
// beside the Rust kernel's (`cargo bench --bench kernels`). The Node rows of
// the comparison are only fair if this number is close to what JavaScript
// can do: a slow port would measure the port, not the event loop.
//
//   node baselines/node/kernel_bench.js [SIDE] [SECONDS]   (512, 2)
//
// Each op runs for about SECONDS after a warm-up, so V8 has optimised the
// loops before the clock starts; the figure is the median of five slices.
'use strict';

const { runImage } = require('./kernel');

const side = Number(process.argv[2] || 512);
const seconds = Number(process.argv[3] || 2);
if (!(side >= 1 && side <= 4096) || !(seconds > 0)) {
  console.error('usage: node kernel_bench.js [SIDE 1..4096] [SECONDS]');
  process.exit(2);
}

function jobsPerSecond(op, forMs) {
  let jobs = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < forMs) {
    runImage(op, side, side, 0, jobs);
    jobs++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (jobs * 1000) / elapsedMs;
}

for (const op of ['blur', 'edge']) {
  jobsPerSecond(op, 300); // warm-up: let V8 optimise the kernel
  const slices = [];
  for (let i = 0; i < 5; i++) slices.push(jobsPerSecond(op, (seconds * 1000) / 5));
  slices.sort((a, b) => a - b);
  const perSecond = slices[2];
  const mpix = (perSecond * side * side) / 1e6;
  console.log(
    `${op} ${side}x${side}: ${mpix.toFixed(1)} MPix/s (${perSecond.toFixed(1)} jobs/s, ` +
      `${(1000 / perSecond).toFixed(2)} ms/job) on node ${process.version}`,
  );
}
