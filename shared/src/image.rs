//! The CPU-bound work: make a pseudo-random grey image, run a 5x5 box blur or
//! a Sobel edge filter over it, and fold the result into an FNV-1a checksum.
//!
//! This is the workload where parallelism pays: no waiting, every cycle is
//! arithmetic, so N cores can do N jobs at once and one core can only do one.
//! It is written to be fast on one core, because a slow kernel would hide the
//! scheduling story under wasted cycles:
//!
//! - The blur is separable. Each source row is summed horizontally once (five
//!   pixels per output pixel), then five such row sums are added vertically,
//!   instead of reading 25 pixels per output pixel.
//! - The inner loops run over equally long slices with no clamping in them,
//!   so the compiler drops the bounds checks and vectorises them; the two
//!   clamped pixels at each end of a row are done apart.
//! - Only the source image is image-sized. Row sums live in a ring of five
//!   rows, and each output row is checksummed as soon as it is made, so there
//!   is no output image at all.
//! - [`ImageScratch`] keeps those buffers between jobs. A fresh 16 MiB buffer
//!   per job would cost thousands of page faults every time.

use crate::splitmix64;

/// With the `panic-hook` feature (tests only), a job with this seed panics.
#[cfg(feature = "panic-hook")]
pub const PANIC_SEED: u64 = 0xDEAD_BEEF_DEAD_BEEF;

/// Which filter a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOp {
    Blur,
    Edge,
}

impl ImageOp {
    /// The op's name on the wire (always lower case in responses).
    pub fn name(self) -> &'static str {
        match self {
            ImageOp::Blur => "blur",
            ImageOp::Edge => "edge",
        }
    }
}

/// One `IMAGE` request, already checked against the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageJob {
    pub op: ImageOp,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

impl ImageJob {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Buffers one worker reuses for every job it runs. Not shared: each thread
/// that runs image jobs owns one, so no lock is taken while a job runs.
#[derive(Debug, Default)]
pub struct ImageScratch {
    source: Vec<u8>,
    /// Five horizontal row sums of the blur, indexed by source row % 5.
    row_sums: Vec<u16>,
    /// The output row being made, checksummed and then overwritten.
    out_row: Vec<u8>,
}

impl ImageScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the whole job (source, filter, checksum) and returns the checksum.
    pub fn run(&mut self, job: &ImageJob) -> u64 {
        #[cfg(feature = "panic-hook")]
        if job.seed == PANIC_SEED {
            panic!("test hook: an image job with the panic seed");
        }
        let width = job.width as usize;
        let height = job.height as usize;
        fill_source(&mut self.source, width, height, job.seed);
        self.out_row.clear();
        self.out_row.resize(width, 0);
        let mut checksum = Fnv1a::new();
        match job.op {
            ImageOp::Blur => {
                self.row_sums.clear();
                self.row_sums.resize(5 * width, 0);
                blur(
                    &self.source,
                    width,
                    height,
                    &mut self.row_sums,
                    &mut self.out_row,
                    &mut checksum,
                );
            }
            ImageOp::Edge => edge(
                &self.source,
                width,
                height,
                &mut self.out_row,
                &mut checksum,
            ),
        }
        checksum.finish()
    }
}

/// Source pixel `(x, y)` is `splitmix64(seed ^ (y * width + x)) >> 56`; the
/// pixel index is just the position in the row-major buffer.
fn fill_source(source: &mut Vec<u8>, width: usize, height: usize, seed: u64) {
    let pixels = (width * height) as u64;
    source.clear();
    source.extend((0..pixels).map(|index| (splitmix64(seed ^ index) >> 56) as u8));
}

/// FNV-1a, 64-bit, over the output bytes in row order.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Clamps `i + delta` into `0..len`: reads outside the image take the
/// nearest edge pixel.
fn clamped(i: usize, delta: isize, len: usize) -> usize {
    (i as isize + delta).clamp(0, len as isize - 1) as usize
}

/// The columns that need clamping for a filter reaching `reach` pixels left
/// and right: the first and last `reach` (all of them in a narrow image).
fn edge_columns(width: usize, reach: usize) -> impl Iterator<Item = usize> {
    let left = 0..width.min(reach);
    let right = width.saturating_sub(reach).max(reach)..width;
    left.chain(right)
}

/// `out[x]` = sum of `row[x-2..=x+2]`, clamped at both ends.
fn box5_row(row: &[u8], out: &mut [u16]) {
    let width = row.len();
    if width > 4 {
        let inner = width - 4;
        let (a, b, c) = (&row[0..inner], &row[1..inner + 1], &row[2..inner + 2]);
        let (d, e) = (&row[3..inner + 3], &row[4..inner + 4]);
        let out_inner = &mut out[2..inner + 2];
        for i in 0..inner {
            out_inner[i] = u16::from(a[i])
                + u16::from(b[i])
                + u16::from(c[i])
                + u16::from(d[i])
                + u16::from(e[i]);
        }
    }
    for x in edge_columns(width, 2) {
        out[x] = (-2..=2)
            .map(|dx| u16::from(row[clamped(x, dx, width)]))
            .sum();
    }
}

fn blur(
    source: &[u8],
    width: usize,
    height: usize,
    row_sums: &mut [u16],
    out_row: &mut [u8],
    checksum: &mut Fnv1a,
) {
    let mut rows_summed = 0;
    for y in 0..height {
        // Sum every source row this output row needs and the ring lacks.
        // The ring always holds rows y-2..=y+2 (clamped) because each newly
        // summed row only evicts the one five rows above it.
        let last_needed = (y + 2).min(height - 1);
        while rows_summed <= last_needed {
            let slot = rows_summed % 5;
            let row = &source[rows_summed * width..(rows_summed + 1) * width];
            box5_row(row, &mut row_sums[slot * width..(slot + 1) * width]);
            rows_summed += 1;
        }
        let ring_row = |dy: isize| {
            let slot = clamped(y, dy, height) % 5;
            &row_sums[slot * width..(slot + 1) * width]
        };
        let (a, b, c, d, e) = (
            ring_row(-2),
            ring_row(-1),
            ring_row(0),
            ring_row(1),
            ring_row(2),
        );
        for x in 0..width {
            // At most 25 * 255 = 6375, so u16 cannot overflow.
            let sum = a[x] + b[x] + c[x] + d[x] + e[x];
            out_row[x] = ((sum + 12) / 25) as u8;
        }
        checksum.update(out_row);
    }
}

fn edge(source: &[u8], width: usize, height: usize, out_row: &mut [u8], checksum: &mut Fnv1a) {
    let row = |y: usize| &source[y * width..(y + 1) * width];
    for y in 0..height {
        let up = row(clamped(y, -1, height));
        let mid = row(y);
        let down = row(clamped(y, 1, height));
        if width > 2 {
            let inner = width - 2;
            sobel_inner(up, mid, down, inner, &mut out_row[1..inner + 1]);
        }
        for x in edge_columns(width, 1) {
            let p = |r: &[u8], dx: isize| i16::from(r[clamped(x, dx, width)]);
            let gx =
                p(up, 1) + 2 * p(mid, 1) + p(down, 1) - p(up, -1) - 2 * p(mid, -1) - p(down, -1);
            let gy =
                p(down, -1) + 2 * p(down, 0) + p(down, 1) - p(up, -1) - 2 * p(up, 0) - p(up, 1);
            out_row[x] = (gx.abs() + gy.abs()).min(255) as u8;
        }
        checksum.update(out_row);
    }
}

/// The unclamped middle of one Sobel output row: every slice below has the
/// same length, which is what lets the loop vectorise.
fn sobel_inner(up: &[u8], mid: &[u8], down: &[u8], inner: usize, out: &mut [u8]) {
    let (ul, uc, ur) = (&up[0..inner], &up[1..inner + 1], &up[2..inner + 2]);
    let (ml, mr) = (&mid[0..inner], &mid[2..inner + 2]);
    let (dl, dc, dr) = (&down[0..inner], &down[1..inner + 1], &down[2..inner + 2]);
    let out = &mut out[0..inner];
    for i in 0..inner {
        let (ul, uc, ur) = (i16::from(ul[i]), i16::from(uc[i]), i16::from(ur[i]));
        let (ml, mr) = (i16::from(ml[i]), i16::from(mr[i]));
        let (dl, dc, dr) = (i16::from(dl[i]), i16::from(dc[i]), i16::from(dr[i]));
        let gx = ur + 2 * mr + dr - ul - 2 * ml - dl;
        let gy = dl + 2 * dc + dr - ul - 2 * uc - ur;
        out[i] = (gx.abs() + gy.abs()).min(255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's definition, read literally: 25 (or 9) clamped reads
    /// per pixel, an output image, then the checksum. Slow and obviously
    /// right, to check the fast kernels against.
    fn reference(job: &ImageJob) -> u64 {
        let (w, h) = (job.width as usize, job.height as usize);
        let src: Vec<u8> = (0..(w * h) as u64)
            .map(|i| (splitmix64(job.seed ^ i) >> 56) as u8)
            .collect();
        let p = |x: usize, y: usize, dx: isize, dy: isize| {
            i32::from(src[clamped(y, dy, h) * w + clamped(x, dx, w)])
        };
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let v = match job.op {
                    ImageOp::Blur => {
                        let mut sum = 0;
                        for dy in -2..=2 {
                            for dx in -2..=2 {
                                sum += p(x, y, dx, dy);
                            }
                        }
                        (sum + 12) / 25
                    }
                    ImageOp::Edge => {
                        let gx = p(x, y, 1, -1) + 2 * p(x, y, 1, 0) + p(x, y, 1, 1)
                            - p(x, y, -1, -1)
                            - 2 * p(x, y, -1, 0)
                            - p(x, y, -1, 1);
                        let gy = p(x, y, -1, 1) + 2 * p(x, y, 0, 1) + p(x, y, 1, 1)
                            - p(x, y, -1, -1)
                            - 2 * p(x, y, 0, -1)
                            - p(x, y, 1, -1);
                        (gx.abs() + gy.abs()).min(255)
                    }
                };
                out.push(v as u8);
            }
        }
        let mut fnv = Fnv1a::new();
        fnv.update(&out);
        fnv.finish()
    }

    fn job(op: ImageOp, width: u32, height: u32, seed: u64) -> ImageJob {
        ImageJob {
            op,
            width,
            height,
            seed,
        }
    }

    #[test]
    fn contract_vectors() {
        let mut scratch = ImageScratch::new();
        let cases = [
            (job(ImageOp::Blur, 1, 1, 0), 0xaf645f4c8602cb25),
            (job(ImageOp::Edge, 1, 1, 0), 0xaf63bd4c8601b7df),
            (job(ImageOp::Blur, 2, 2, 0), 0x9fc471468bdc5393),
            (job(ImageOp::Edge, 5, 1, 3), 0xab69dc08a10a47c1),
            (job(ImageOp::Blur, 1, 7, 9), 0x4a506c5246f13122),
            (job(ImageOp::Blur, 16, 9, 7), 0xee88e055dc78ac5b),
            (job(ImageOp::Edge, 16, 9, 7), 0x89eb0a4a6540b00c),
            (job(ImageOp::Blur, 33, 20, u64::MAX), 0x1d620b69e7a72a76),
        ];
        for (job, expected) in cases {
            assert_eq!(scratch.run(&job), expected, "{job:?}");
        }
    }

    #[test]
    fn fast_kernels_match_the_literal_definition_on_every_small_shape() {
        // 1xN and Nx1 images clamp on both sides of the same pixel; sizes up
        // to 9 cover every mix of edge columns and inner columns.
        let mut scratch = ImageScratch::new();
        for op in [ImageOp::Blur, ImageOp::Edge] {
            for width in 1..=9 {
                for height in 1..=9 {
                    let job = job(op, width, height, u64::from(width * 31 + height));
                    assert_eq!(scratch.run(&job), reference(&job), "{job:?}");
                }
            }
        }
    }

    #[test]
    fn reused_scratch_gives_the_same_answer_as_a_fresh_one() {
        let mut scratch = ImageScratch::new();
        let big = job(ImageOp::Blur, 64, 48, 5);
        let small = job(ImageOp::Edge, 7, 3, 5);
        let first = scratch.run(&small);
        scratch.run(&big);
        assert_eq!(scratch.run(&small), first);
        assert_eq!(ImageScratch::new().run(&big), reference(&big));
    }
}
