//! How fast one core runs an image job: source generation, the filter and
//! the checksum, all counted, in MPixel/s (criterion's "elem/s").
//!
//! This is the unit of the CPU-bound workload. The thread pool should reach
//! about (cores x this) and the inline event loop exactly this, so if this
//! number is poor, every comparison built on it is about a slow kernel
//! rather than about scheduling.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shared::image::{ImageJob, ImageOp, ImageScratch};

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("image_job");
    for side in [512u32, 4096] {
        if side == 4096 {
            // 16 MPixel per run: fewer, longer samples.
            group.sample_size(10);
        }
        for op in [ImageOp::Blur, ImageOp::Edge] {
            let job = ImageJob {
                op,
                width: side,
                height: side,
                seed: 1,
            };
            group.throughput(Throughput::Elements(job.pixels()));
            // One scratch per benchmark, as one worker keeps one.
            let mut scratch = ImageScratch::new();
            group.bench_function(format!("{}/{side}x{side}", op.name()), |b| {
                b.iter(|| scratch.run(&job))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
