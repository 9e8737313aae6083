// One client connection: lines in, answers out in request order, however
// the work behind them finishes. This is what a Node developer writes by
// hand for a pipelined protocol, and the same bookkeeping the hand-written
// event loop does in event_loop_server/src/connection.rs: a queue of answer
// slots, filled as timers fire or worker threads reply, and written out
// from the front as far as it is filled.
//
// The rules it keeps, from docs/PROTOCOL.md:
// - one answer per request, in order (a later PONG waits for an earlier DB);
// - after QUIT or a line that is too long, earlier answers, then the last
//   line, then close; nothing after it is read;
// - after the client half-closes, every request already sent (a final
//   unterminated line included) is answered, then close;
// - backpressure: at most 1024 unanswered requests or 256 KiB unsent per
//   connection before it stops reading (MAX_IN_FLIGHT, MAX_UNSENT).
'use strict';

const { LineFramer, LINE_TOO_LONG, parseRequest, answers } = require('./protocol');
const { runImage, dbValueHex } = require('./kernel');

const MAX_IN_FLIGHT = 1024;
const MAX_UNSENT = 256 * 1024;
// After our FIN, how long a client may keep its side open before the socket
// is destroyed: without a bound, a client that never closes would hold it
// for ever. Reading (and dropping) its input meanwhile avoids the reset
// that closing with unread input would send, which could destroy our last
// answers in flight (shared/src/linger.rs explains the same for Rust).
const LINGER_MS = 1000;
const DISCARD_LIMIT = 1024 * 1024;

// Where a connection is in its life.
const State = Object.freeze({
  READING: 'reading', // serving requests as they come
  LAST_ANSWER_QUEUED: 'last answer queued', // QUIT, too long, or shutdown: read nothing more
  CLOSING: 'closing', // our FIN is sent; dropping input until the peer closes
});

class Connection {
  // `server` holds what all connections share: the counters, the config,
  // the offload pool, and the set of open connections.
  constructor(socket, server) {
    this.socket = socket;
    this.server = server;
    this.framer = new LineFramer();
    this.state = State.READING;
    this.peerEnded = false;
    this.slots = []; // answers not yet written; a slot is {text} or {text: null}
    this.out = ''; // answers ready to write in this turn
    this.paused = false;
    this.discarded = 0;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.serve());
    // A reset or any socket error ends this connection only; answers still
    // owed to it are dropped when they arrive (`closed` below).
    socket.on('error', () => socket.destroy());
    socket.on('close', () => server.forget(this));
  }

  get closed() {
    return this.socket.destroyed;
  }

  onData(chunk) {
    if (this.state !== State.READING) {
      this.discarded += chunk.length;
      if (this.discarded > DISCARD_LIMIT) this.socket.destroy();
      return;
    }
    this.framer.push(chunk);
    this.serve();
  }

  onEnd() {
    this.peerEnded = true;
    this.serve();
  }

  // Starts every buffered request the limits allow, then writes what is
  // ready. Called on new input, on end of stream, on 'drain', and when a
  // slot is filled.
  serve() {
    while (this.state === State.READING && !this.full()) {
      let line = this.framer.nextLine();
      if (line === null && this.peerEnded) {
        line = this.framer.finish();
        // The client sends nothing more: what was asked is all there is.
        this.state = State.LAST_ANSWER_QUEUED;
      }
      if (line === null) break;
      if (line === LINE_TOO_LONG) {
        this.lastAnswer(answers.lineTooLong);
        break;
      }
      const request = parseRequest(line);
      if (request !== null) this.start(request);
    }
    this.flush();
    this.pauseOrResume();
    if (this.state === State.LAST_ANSWER_QUEUED && this.slots.length === 0) this.close();
  }

  full() {
    return this.slots.length >= MAX_IN_FLIGHT || this.socket.writableLength >= MAX_UNSENT;
  }

  // Reading stops while the limits are reached: the client's bytes wait in
  // the kernel and TCP slows it down, as on the Rust event loop.
  pauseOrResume() {
    if (this.closed) return;
    const wantPause = this.state === State.READING && this.full();
    if (wantPause && !this.paused) this.socket.pause();
    else if (!wantPause && this.paused) this.socket.resume();
    this.paused = wantPause;
  }

  start(request) {
    const server = this.server;
    switch (request.kind) {
      case 'ping':
        return this.answer(answers.pong);
      case 'help':
        return this.answer(answers.help);
      // The request being answered does not count itself.
      case 'stats':
        return this.answer(answers.stats(server.connections.size, server.requests));
      case 'quit':
        return this.lastAnswer(answers.bye);
      case 'error':
        return this.answer(request.text);
      case 'db':
        return this.db(request);
      case 'image':
        return this.image(request);
    }
  }

  // A database query: the answer is due after the delay, on a timer, and
  // the connection goes on serving meanwhile (setTimeout is Node's timer
  // heap, as event_loop_server/src/timers.rs is the hand-written one's).
  db(request) {
    const delayMs = request.delayMs ?? this.server.config.dbDelayMs;
    const text = () => answers.db(request.id, dbValueHex(request.id.hi, request.id.lo));
    // Node runs setTimeout(fn, 0) after at least 1 ms; an answer due now
    // is given now.
    if (delayMs === 0) return this.answer(text());
    const slot = this.pending();
    setTimeout(() => this.fill(slot, text()), delayMs);
  }

  // An image job: on this thread (blocking the loop for its duration, which
  // is the point of the inline rows), or on a worker thread with --offload.
  image(job) {
    const pool = this.server.pool;
    if (pool === null) {
      const started = performance.now();
      const checksum = runImage(job.op, job.width, job.height, job.seed.hi, job.seed.lo);
      const micros = Math.round((performance.now() - started) * 1000);
      return this.answer(answers.image(job, checksum, ` micros=${micros}`));
    }
    const slot = this.pending();
    const accepted = pool.submit(job, (result) => {
      const text =
        result.error !== undefined
          ? answers.internalError
          : answers.image(job, result.checksum, ` micros=${result.micros} worker=${result.worker}`);
      this.fill(slot, text);
    });
    if (!accepted) this.fill(slot, answers.busyImageQueue);
  }

  answer(text) {
    if (this.slots.length === 0) {
      this.out += text;
      this.server.requests++;
    } else {
      this.slots.push({ text });
    }
  }

  pending() {
    const slot = { text: null };
    this.slots.push(slot);
    return slot;
  }

  fill(slot, text) {
    slot.text = text;
    if (!this.closed) this.serve();
  }

  lastAnswer(text) {
    this.answer(text);
    this.state = State.LAST_ANSWER_QUEUED;
  }

  // Moves the filled front of the queue into `out`, counting each answer as
  // it is queued for sending, and writes `out` in one call.
  flush() {
    let ready = 0;
    while (ready < this.slots.length && this.slots[ready].text !== null) {
      this.out += this.slots[ready].text;
      ready++;
    }
    if (ready > 0) {
      this.slots.splice(0, ready);
      this.server.requests += ready;
    }
    if (this.out.length > 0 && !this.closed) {
      this.socket.write(this.out);
    }
    this.out = '';
  }

  // Every answer is queued: send our FIN after them, then drop input until
  // the client closes too, or LINGER_MS after our last byte left.
  close() {
    this.state = State.CLOSING;
    if (this.closed) return;
    this.socket.end(() => setTimeout(() => this.socket.destroy(), LINGER_MS).unref());
  }

  // Server shutdown: answer the complete requests already read (not an
  // unterminated last line: it may be half of a request), then close.
  drain() {
    if (this.state !== State.READING) return;
    this.serve();
    if (this.state === State.READING) this.state = State.LAST_ANSWER_QUEUED;
    this.serve();
  }
}

module.exports = { Connection };
