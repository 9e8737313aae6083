// The line protocol's framing, parsing and answer texts, as
// docs/PROTOCOL.md defines them and shared/src/protocol/ implements them in
// Rust. Everything here is pure: no sockets, no timers, so a reader can set
// it beside framer.rs, request.rs and response.rs and check it line by line.
//
// Lines are bytes, not text: a line is decoded as latin1, which maps each
// byte to one character, so a line that is not UTF-8 is parsed (and
// refused) like any other and never throws. Words split on spaces and tabs
// only; String.prototype.trim would also eat \v, \f, \r and latin1's 0xA0,
// which the contract says belong to the word they touch.
'use strict';

const MAX_LINE = 1024; // bytes per request line, terminator not counted
const MAX_IMAGE_SIDE = 4096;
const MAX_DB_DELAY_MS = 10000;
const LF = 0x0a;
const CR = 0x0d;

// A marker for "this line passed the limit", told apart from a line.
const LINE_TOO_LONG = Symbol('line too long');

// Cuts a byte stream into lines, whatever the sizes of the reads. Holds at
// most one read plus MAX_LINE + 1 bytes of unparsed input, because a partial
// line that can no longer fit is refused at once (partial_line_cannot_fit
// in shared/src/protocol/framer.rs): its line feed may never come.
class LineFramer {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.consumed = 0;
    this.failed = false;
  }

  push(chunk) {
    if (this.failed) return;
    const rest = this.buf.subarray(this.consumed);
    this.buf = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    this.consumed = 0;
  }

  // The next complete line (a Buffer, terminator removed), LINE_TOO_LONG,
  // or null when no complete line is buffered.
  nextLine() {
    if (this.failed) return null;
    const newline = this.buf.indexOf(LF, this.consumed);
    if (newline === -1) {
      const partial = this.buf.length - this.consumed;
      const endsInCr = partial > 0 && this.buf[this.buf.length - 1] === CR;
      // A final \r may still be followed by \n, so it does not count yet.
      return partial - (endsInCr ? 1 : 0) > MAX_LINE ? this.fail() : null;
    }
    const start = this.consumed;
    this.consumed = newline + 1;
    return this.checked(start, newline);
  }

  // After the peer's end of stream: an unterminated last line is still a
  // request (LineFramer::finish).
  finish() {
    if (this.failed || this.consumed === this.buf.length) return null;
    const start = this.consumed;
    this.consumed = this.buf.length;
    return this.checked(start, this.buf.length);
  }

  checked(start, end) {
    if (end > start && this.buf[end - 1] === CR) end--;
    if (end - start > MAX_LINE) return this.fail();
    return this.buf.subarray(start, end);
  }

  fail() {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    this.consumed = 0;
    return LINE_TOO_LONG;
  }
}

// Words separated by runs of spaces and tabs (0x20, 0x09) and nothing else.
function splitWords(text) {
  const words = [];
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x20;
    const separator = c === 0x20 || c === 0x09;
    if (separator && start >= 0) {
      words.push(text.slice(start, i));
      start = -1;
    } else if (!separator && start < 0) {
      start = i;
    }
  }
  return words;
}

// ASCII-only case folding: toUpperCase would turn latin1's 0xDF into "SS".
function isWord(word, name) {
  if (word.length !== name.length) return false;
  for (let i = 0; i < word.length; i++) {
    let c = word.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== name.charCodeAt(i)) return false;
  }
  return true;
}

const DIGITS = /^[0-9]+$/;
const TWO_32 = 4294967296;

// A u64 in plain decimal (leading zeros allowed, nothing else), as its two
// 32-bit halves and its decimal text without leading zeros (what answers
// echo); null if not a number or above 2^64 - 1. The digits are folded
// into the halves ten at a time: lo * 10 + digit stays below 2^36, exact
// in a double, so no BigInt is needed.
function parseU64(word) {
  if (!DIGITS.test(word)) return null;
  const text = word.replace(/^0+(?=.)/, '');
  if (text.length > 20) return null;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < text.length; i++) {
    const t = lo * 10 + (text.charCodeAt(i) - 0x30);
    lo = t % TWO_32;
    hi = hi * 10 + Math.floor(t / TWO_32);
    if (hi >= TWO_32) return null;
  }
  return { hi, lo, text };
}

const usage = (text) => ({ kind: 'error', text: `ERR ${text}\n` });
const IMAGE_USAGE = usage('usage: IMAGE <blur|edge> <width> <height> [seed]');
const DB_USAGE = usage('usage: DB <id> [delay_ms]');
const NO_ARGUMENTS = {
  PING: usage('usage: PING (no arguments)'),
  HELP: usage('usage: HELP (no arguments)'),
  STATS: usage('usage: STATS (no arguments)'),
  QUIT: usage('usage: QUIT (no arguments)'),
};
const UNKNOWN_COMMAND = usage('unknown command');
const BAD_OP = usage('unknown image op (expected blur or edge)');
const BAD_WIDTH = usage('width must be a number from 1 to 4096');
const BAD_HEIGHT = usage('height must be a number from 1 to 4096');
const BAD_SEED = usage('seed must be a number from 0 to 18446744073709551615');
const BAD_ID = usage('id must be a number from 0 to 18446744073709551615');
const BAD_DELAY = usage('delay_ms must be a number from 0 to 10000');

// One request line (a Buffer) to a request: {kind: 'ping' | 'help' |
// 'stats' | 'quit' | 'db' | 'image' | 'error', ...}, or null for a blank
// line, which gets no answer. Arguments are checked in the contract's
// order, and the first problem is the one answered.
function parseRequest(line) {
  const words = splitWords(line.toString('latin1'));
  if (words.length === 0) return null;
  const [command, ...args] = words;
  for (const name of ['PING', 'HELP', 'STATS', 'QUIT']) {
    if (isWord(command, name)) {
      return args.length === 0 ? { kind: name.toLowerCase() } : NO_ARGUMENTS[name];
    }
  }
  if (isWord(command, 'IMAGE')) return parseImage(args);
  if (isWord(command, 'DB')) return parseDb(args);
  return UNKNOWN_COMMAND;
}

function parseImage(args) {
  if (args.length < 3 || args.length > 4) return IMAGE_USAGE;
  const op = isWord(args[0], 'BLUR') ? 'blur' : isWord(args[0], 'EDGE') ? 'edge' : null;
  if (op === null) return BAD_OP;
  const side = (word) => {
    const n = parseU64(word);
    return n && n.hi === 0 && n.lo >= 1 && n.lo <= MAX_IMAGE_SIDE ? n.lo : null;
  };
  const width = side(args[1]);
  if (width === null) return BAD_WIDTH;
  const height = side(args[2]);
  if (height === null) return BAD_HEIGHT;
  const seed = args.length === 4 ? parseU64(args[3]) : { hi: 0, lo: 0, text: '0' };
  if (seed === null) return BAD_SEED;
  return { kind: 'image', op, width, height, seed };
}

function parseDb(args) {
  if (args.length < 1 || args.length > 2) return DB_USAGE;
  const id = parseU64(args[0]);
  if (id === null) return BAD_ID;
  let delayMs = null;
  if (args.length === 2) {
    const delay = parseU64(args[1]);
    if (delay === null || delay.hi !== 0 || delay.lo > MAX_DB_DELAY_MS) return BAD_DELAY;
    delayMs = delay.lo;
  }
  return { kind: 'db', id, delayMs };
}

// The answer lines (shared/src/protocol/response.rs).
const answers = {
  pong: 'PONG\n',
  help:
    'OK commands: PING | HELP | IMAGE <blur|edge> <width> <height> [seed] | ' +
    'DB <id> [delay_ms] | STATS | QUIT\n',
  bye: 'BYE\n',
  lineTooLong: 'ERR line too long\n',
  internalError: 'ERR internal error\n',
  busyImageQueue: 'ERR busy: image queue full\n',
  db: (id, valueHex) => `OK DB ${id.text} value=${valueHex}\n`,
  // `extra` is the optional fields: " micros=N", then " worker=N" when a
  // worker thread ran the job, as the Rust servers write them.
  image: (job, checksumHex, extra) =>
    `OK IMAGE ${job.op} ${job.width}x${job.height} seed=${job.seed.text} checksum=${checksumHex}${extra}\n`,
  stats: (connections, requests) => `OK STATS connections=${connections} requests=${requests}\n`,
};

module.exports = { LineFramer, LINE_TOO_LONG, parseRequest, answers };
