// The IMAGE kernel of shared/src/image.rs, ported to JavaScript so that a
// Node.js server gives the same checksums as the Rust servers, byte for byte.
//
// The contract's arithmetic is 64-bit and wraps (docs/PROTOCOL.md, "IMAGE,
// exactly"). JavaScript numbers are doubles, exact only to 2^53, and a
// BigInt per pixel would cost a heap allocation per operation and make the
// Node rows of the comparison a strawman. So every 64-bit value here is a
// pair of 32-bit halves (hi, lo), and each 64-bit multiplication is built
// from Math.imul (the low 32 bits of a 32x32 product) plus the high 32 bits
// of the low halves' product, computed from 16-bit pieces whose products
// are exact in a double. V8 keeps all of it in registers: no allocation in
// the per-pixel loops.
//
// The filters have the same shape as the Rust ones: a separable box blur
// with a ring of five row sums, Sobel over three rows, and each output row
// checksummed as soon as it is made, so there is no output image.
'use strict';

// Every 32-bit half is kept as a signed int32 (`| 0`), never as an unsigned
// one (`>>> 0`): V8 keeps int32 values in registers, but an unsigned value
// above 2^31 is a double to it, and the loop would compute in floating
// point. XOR, shifts and Math.imul do not care about the sign; only carries
// need care, and they are computed with bit operations too.

// The carry out of the 32-bit addition a + b whose wrapped sum is `sum`:
// the top bit is carried when both tops are set, or either is and the
// sum's is clear.
function carryOut(a, b, sum) {
  return ((a & b) | ((a | b) & ~sum)) >>> 31;
}

// The high 32 bits of the 64-bit product of two 32-bit halves, read as
// unsigned. Each 16x16 piece is below 2^32, so Math.imul returns its exact
// bits; the pieces are added in their columns.
function mulHigh32(a, b) {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = Math.imul(a0, b1);
  const p10 = Math.imul(a1, b0);
  const mid = (Math.imul(a0, b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (Math.imul(a1, b1) + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

// splitmix64 (shared/src/lib.rs) of the 64-bit value (hi, lo). Returns the
// high half, which is all a pixel needs; the low half is left in
// `splitmixLo` for the one caller that wants it (the database value), so
// no pair is allocated per call. V8 inlines this into the pixel loop.
let splitmixLo = 0;
function splitmix64(hi, lo) {
  // z = x + 0x9E3779B97F4A7C15
  let l = (lo + 0x7f4a7c15) | 0;
  let h = (hi + 0x9e3779b9 + carryOut(lo, 0x7f4a7c15, l)) | 0;
  // z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  l ^= (l >>> 30) | (h << 2);
  h ^= h >>> 30;
  h = (mulHigh32(l, 0x1ce4e5b9) + Math.imul(h, 0x1ce4e5b9) + Math.imul(l, 0xbf58476d)) | 0;
  l = Math.imul(l, 0x1ce4e5b9);
  // z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  l ^= (l >>> 27) | (h << 5);
  h ^= h >>> 27;
  h = (mulHigh32(l, 0x133111eb) + Math.imul(h, 0x133111eb) + Math.imul(l, 0x94d049bb)) | 0;
  l = Math.imul(l, 0x133111eb);
  // z ^ (z >> 31)
  splitmixLo = l ^ ((l >>> 31) | (h << 1));
  return h ^ (h >>> 31);
}

// 16 lower-case hex digits of (hi, lo), as every answer writes a u64.
function hex16(hi, lo) {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

// The fake database's value of an id (shared/src/db.rs), as hex16.
function dbValueHex(hi, lo) {
  const h = splitmix64(hi | 0, lo | 0);
  return hex16(h, splitmixLo);
}

// FNV-1a 64 over `bytes[0..len)`, continuing from the state in `fnv`
// ([hi, lo]). The prime 0x100000001b3 is 2^40 + 0x1b3, so h * prime is
// h * 0x1b3 plus h shifted left by 40, which moves the low half's bits
// into the high half. 0x1b3 fits in 16 bits, so the carry out of
// lo * 0x1b3 takes two small products.
const FNV_START_HI = 0xcbf29ce4 | 0;
const FNV_START_LO = 0x84222325 | 0;
const fnv = new Int32Array(2);
function fnvUpdate(bytes, len) {
  let hi = fnv[0];
  let lo = fnv[1];
  for (let i = 0; i < len; i++) {
    lo ^= bytes[i];
    const carry = (Math.imul(lo >>> 16, 0x1b3) + (Math.imul(lo & 0xffff, 0x1b3) >>> 16)) >>> 16;
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) | 0;
    lo = Math.imul(lo, 0x1b3);
  }
  fnv[0] = hi;
  fnv[1] = lo;
}

// Buffers reused between jobs, as ImageScratch does: a fresh 16 MiB array
// per 4096x4096 job would be zeroed and collected every time. Each thread
// (the main one, each worker) has its own copy of this module.
let source = new Uint8Array(0);
let rowSums = new Uint16Array(0);
let outRow = new Uint8Array(0);

function reserve(width, height) {
  const pixels = width * height;
  if (source.length < pixels) source = new Uint8Array(pixels);
  if (rowSums.length < 5 * width) rowSums = new Uint16Array(5 * width);
  if (outRow.length < width) outRow = new Uint8Array(width);
}

// Pixel i is the top byte of splitmix64(seed ^ i). Pixels number at most
// 4096 * 4096 = 2^24, so i only touches the seed's low half.
function fillSource(src, pixels, seedHi, seedLo) {
  for (let i = 0; i < pixels; i++) {
    src[i] = splitmix64(seedHi, seedLo ^ i) >>> 24;
  }
}

function clamp(v, len) {
  return v < 0 ? 0 : v >= len ? len - 1 : v;
}

// The functions below take the buffers as arguments rather than reading the
// module's variables: a local is known not to change during the loop, so
// V8 loads the array's base once instead of on every pixel.

// sums[at + x] = sum of row[x-2..=x+2], clamped at both ends; `start` is
// the row's offset in `src`, `at` the ring slot's offset in `sums`.
function box5Row(src, start, width, sums, at) {
  for (let x = 2; x < width - 2; x++) {
    const p = start + x;
    sums[at + x] = src[p - 2] + src[p - 1] + src[p] + src[p + 1] + src[p + 2];
  }
  // The first two and last two columns read clamped neighbours (in a row
  // narrower than five, every column does).
  for (let x = 0; x < Math.min(width, 2); x++) sums[at + x] = clampedSum5(src, start, x, width);
  for (let x = Math.max(width - 2, 2); x < width; x++) sums[at + x] = clampedSum5(src, start, x, width);
}

function clampedSum5(src, start, x, width) {
  let sum = 0;
  for (let dx = -2; dx <= 2; dx++) sum += src[start + clamp(x + dx, width)];
  return sum;
}

function blur(src, width, height, sums, out) {
  let rowsSummed = 0;
  for (let y = 0; y < height; y++) {
    // The ring holds rows y-2..=y+2 (clamped): each newly summed row only
    // evicts the one five rows above it.
    const lastNeeded = Math.min(y + 2, height - 1);
    while (rowsSummed <= lastNeeded) {
      box5Row(src, rowsSummed * width, width, sums, (rowsSummed % 5) * width);
      rowsSummed++;
    }
    const a = (clamp(y - 2, height) % 5) * width;
    const b = (clamp(y - 1, height) % 5) * width;
    const c = (y % 5) * width;
    const d = (clamp(y + 1, height) % 5) * width;
    const e = (clamp(y + 2, height) % 5) * width;
    for (let x = 0; x < width; x++) {
      const sum = sums[a + x] + sums[b + x] + sums[c + x] + sums[d + x] + sums[e + x];
      // (sum + 12) / 25 rounded down, as a multiply and a shift: exact for
      // every sum up to 43698, and a blur's is at most 25 * 255 = 6375.
      // Rust's compiler makes this change itself; V8 would divide.
      out[x] = Math.imul(sum + 12, 5243) >>> 17;
    }
    fnvUpdate(out, width);
  }
}

function edge(src, width, height, out) {
  for (let y = 0; y < height; y++) {
    const up = clamp(y - 1, height) * width;
    const mid = y * width;
    const down = clamp(y + 1, height) * width;
    for (let x = 1; x < width - 1; x++) {
      const ul = src[up + x - 1], uc = src[up + x], ur = src[up + x + 1];
      const ml = src[mid + x - 1], mr = src[mid + x + 1];
      const dl = src[down + x - 1], dc = src[down + x], dr = src[down + x + 1];
      const gx = ur + 2 * mr + dr - ul - 2 * ml - dl;
      const gy = dl + 2 * dc + dr - ul - 2 * uc - ur;
      const g = Math.abs(gx) + Math.abs(gy);
      out[x] = g > 255 ? 255 : g;
    }
    // The first and last column read clamped neighbours.
    out[0] = clampedSobel(src, up, mid, down, 0, width);
    if (width > 1) out[width - 1] = clampedSobel(src, up, mid, down, width - 1, width);
    fnvUpdate(out, width);
  }
}

function clampedSobel(src, up, mid, down, x, width) {
  const l = clamp(x - 1, width);
  const r = clamp(x + 1, width);
  const gx = src[up + r] + 2 * src[mid + r] + src[down + r]
    - src[up + l] - 2 * src[mid + l] - src[down + l];
  const gy = src[down + l] + 2 * src[down + x] + src[down + r]
    - src[up + l] - 2 * src[up + x] - src[up + r];
  const g = Math.abs(gx) + Math.abs(gy);
  return g > 255 ? 255 : g;
}

// Runs one job and returns its checksum as hex16. `op` is 'blur' or 'edge';
// the seed comes as its two 32-bit halves.
function runImage(op, width, height, seedHi, seedLo) {
  reserve(width, height);
  fillSource(source, width * height, seedHi | 0, seedLo | 0);
  fnv[0] = FNV_START_HI;
  fnv[1] = FNV_START_LO;
  if (op === 'blur') blur(source, width, height, rowSums, outRow);
  else edge(source, width, height, outRow);
  return hex16(fnv[0], fnv[1]);
}

module.exports = { runImage, dbValueHex };
