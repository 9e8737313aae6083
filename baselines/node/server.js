#!/usr/bin/env node
// The reader's own platform on the same wire contract: a Node.js server of
// the line protocol (docs/PROTOCOL.md), in plain Node 20 with no npm
// package, written the way a Node developer would write it: one `net`
// server, one event loop, `setTimeout` for the fake database, and the IMAGE
// kernel in JavaScript (kernel.js). It exists to be measured beside the two
// hand-written Rust servers; see baselines/README.md.
//
//   node baselines/node/server.js [--addr HOST:PORT] [--db-delay-ms N]
//                                 [--offload N] [--cluster N]
//
// Three shapes, each Node's usual answer to one question:
// - default: everything on the one loop, IMAGE included (it blocks the loop
//   while it computes, as the inline Rust loop does);
// - --offload N: IMAGE on N worker_threads (offload.js);
// - --cluster N: N processes, each a loop of its own, sharing one port
//   (node:cluster), Node's "one process per core".
//
// The first line on stdout is `listening on ADDRESS` with the address
// actually bound, so a harness can pass port 0 and read the port, as it
// does with the Rust servers (src/server_process.rs).
'use strict';

const cluster = require('node:cluster');
const net = require('node:net');
const { Connection } = require('./connection');
const { ImagePool } = require('./offload');

const NAME = 'node_server';
// The listen backlog the Rust servers use (BACKLOG in shared/src/listen.rs).
// Node's default is 511: with a thousand clients connecting at once, the
// comparison would measure dropped SYNs instead of the loop.
const BACKLOG = 4096;

const USAGE = `usage: node baselines/node/server.js [flags]

The line protocol of docs/PROTOCOL.md on Node.js (no HTTP dialect).

  --addr HOST:PORT   address to listen on; port 0 picks a free one [127.0.0.1:7880]
  --db-delay-ms N    delay of \`DB <id>\` without a delay, 0 to 10000 [50]
  --offload N        run IMAGE jobs on N worker_threads, 0 to 1024 [0: on the loop]
  --cluster N        run N processes sharing the port (node:cluster), 1 to 1024 [off]
  -h, --help         print this and exit
`;

class UsageError extends Error {}

function parseFlags(argv) {
  const config = { host: '127.0.0.1', port: 7880, dbDelayMs: 50, offload: 0, cluster: 0 };
  const number = (name, value, min, max) => {
    if (value === undefined || !/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`--${name} needs a number from ${min} to ${max}`);
    }
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return null;
    const value = argv[++i];
    switch (flag) {
      case '--addr': {
        // HOST:PORT, with [v6]:PORT for an IPv6 address.
        const match = /^\[?([^\]]*?)\]?:([0-9]+)$/.exec(value ?? '');
        if (!match || Number(match[2]) > 65535) throw new UsageError('--addr needs HOST:PORT');
        config.host = match[1];
        config.port = Number(match[2]);
        break;
      }
      case '--db-delay-ms':
        config.dbDelayMs = number('db-delay-ms', value, 0, 10000);
        break;
      case '--offload':
        config.offload = number('offload', value, 0, 1024);
        break;
      case '--cluster':
        config.cluster = number('cluster', value, 1, 1024);
        break;
      default:
        throw new UsageError(`unknown flag ${flag}`);
    }
  }
  return config;
}

function formatAddress({ address, port, family }) {
  return family === 'IPv6' || family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function fail(code, message) {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(code);
}

// One loop serving connections: the whole server without --cluster, and
// each worker process with it. `announce` prints the listening line (only
// when this process is the whole server).
function serve(config, announce) {
  const state = {
    config,
    pool: config.offload > 0 ? new ImagePool(config.offload) : null,
    connections: new Set(),
    requests: 0, // answers queued for sending, as STATS counts them
    shuttingDown: false,
    forget(connection) {
      this.connections.delete(connection);
      if (this.shuttingDown && this.connections.size === 0) finish();
    },
  };
  const listener = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (state.shuttingDown) return socket.destroy();
    state.connections.add(new Connection(socket, state));
  });
  listener.on('error', (e) => fail(1, `cannot listen on ${config.host}:${config.port}: ${e.message}`));
  listener.listen({ host: config.host, port: config.port, backlog: BACKLOG }, () => {
    if (announce) process.stdout.write(`listening on ${formatAddress(listener.address())}\n`);
  });

  let drainedFrom = 0;
  function finish() {
    const drained = state.requests - drainedFrom;
    const pool = state.pool ? state.pool.close() : Promise.resolve();
    pool.then(() => {
      if (cluster.isWorker) {
        process.send({ drained }, () => process.exit(0));
      } else {
        process.stdout.write(`shut down cleanly; drained ${drained} requests\n`);
        process.exit(0);
      }
    });
  }
  // Stop accepting, answer what was already asked, close, exit 0.
  return function shutdown() {
    if (state.shuttingDown) return;
    state.shuttingDown = true;
    drainedFrom = state.requests;
    listener.close();
    for (const connection of state.connections) connection.drain();
    if (state.connections.size === 0) finish();
  };
}

// The first signal drains; a second one exits at once with 130, as the
// Rust servers do (shared/src/cli.rs).
function onSignals(shutdown) {
  let signals = 0;
  const handler = () => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`${NAME}: second signal, exiting without draining\n`);
      process.exit(130);
    }
    process.stderr.write(`${NAME}: shutting down; press Ctrl-C again to exit at once\n`);
    shutdown();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

// The primary process of --cluster: it forks the workers, prints one
// listening line once all of them listen, and on a signal asks each to
// drain. With port 0 the workers still share one port: the primary binds
// the first listen(0) and hands every worker the same socket.
function primary(config) {
  let listening = 0;
  let drained = 0;
  let stopping = false;
  for (let i = 0; i < config.cluster; i++) cluster.fork();
  cluster.on('listening', (worker, address) => {
    listening++;
    if (listening === config.cluster) {
      process.stdout.write(`listening on ${formatAddress({ ...address, family: address.addressType })}\n`);
    }
  });
  cluster.on('message', (worker, message) => {
    if (typeof message.drained === 'number') drained += message.drained;
  });
  cluster.on('exit', (worker, code) => {
    if (!stopping && listening < config.cluster) {
      // A worker that could not bind has said why on stderr.
      stopping = true;
      for (const other of Object.values(cluster.workers)) other.kill('SIGKILL');
      process.exit(code || 1);
    }
    if (Object.keys(cluster.workers).length === 0) {
      process.stdout.write(`shut down cleanly; drained ${drained} requests\n`);
      process.exit(stopping ? 0 : 1);
    }
    if (!stopping) process.stderr.write(`${NAME}: worker ${worker.process.pid} exited (${code})\n`);
  });
  onSignals(() => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
  });
}

function main() {
  let config;
  try {
    config = parseFlags(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) fail(2, `${e.message} (see --help)`);
    throw e;
  }
  if (config === null) {
    process.stdout.write(USAGE);
    return;
  }
  if (config.cluster > 0 && cluster.isPrimary) return primary(config);
  const shutdown = serve(config, cluster.isPrimary);
  if (cluster.isWorker) {
    // Ctrl-C reaches every process of the terminal's group; the primary
    // alone decides, and sends each worker SIGTERM.
    process.on('SIGINT', () => {});
    process.on('SIGTERM', shutdown);
  } else {
    onSignals(shutdown);
  }
}

main();
