//! The ML core's hot paths: one epoch of each iterative solver, a newton solve, and single
//! and batched prediction, on generated 1,000,000 × 10 and 100,000 × 1 data.
//!
//! `cargo bench -p logitflow-core` (BENCHMARKS.md has the figures and the peers').

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use logitflow_core::logistic::{Examples, Solver, TrainParams, Weights, fit};
use logitflow_core::model::{Lineage, Model};
use logitflow_core::scale::{Scaling, Transform};
use logitflow_core::synth::{Generator, generate};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;

fn data(rows: usize, features: usize) -> (Vec<f64>, Vec<f64>) {
    let coefficients: Vec<f64> = (0..features).map(|j| if j % 2 == 0 { 0.8 } else { -0.5 }).collect();
    let g = Generator { intercept: 0.3, coefficients, ranges: vec![(-2.0, 2.0); features], rows, seed: 7 };
    let d = generate(&g);
    (d.x, d.y)
}

fn one_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("epoch");
    group.sample_size(10);
    for &(rows, features) in &[(1_000_000usize, 10usize), (100_000, 1)] {
        let (x, y) = data(rows, features);
        group.throughput(Throughput::Elements(rows as u64));
        for solver in [Solver::Sgd, Solver::Minibatch, Solver::Batch] {
            // One epoch, with no validation set; the loop also measures the epoch's loss and
            // gradient norm, as training does.
            let params = TrainParams { solver, epochs: 1, patience: 0, validation_fraction: 0.0, ..TrainParams::default() };
            group.bench_with_input(BenchmarkId::new(solver.name(), format!("{rows}x{features}")), &params, |b, params| {
                b.iter(|| fit(Examples::new(&x, &y, features), None, params, &AtomicBool::new(false), |_| {}).expect("fits"))
            });
        }
        let params = TrainParams {
            solver: Solver::Newton,
            epochs: 50,
            patience: 0,
            tolerance: 1e-8,
            validation_fraction: 0.0,
            ..TrainParams::default()
        };
        group.bench_with_input(BenchmarkId::new("newton_solve", format!("{rows}x{features}")), &params, |b, params| {
            b.iter(|| fit(Examples::new(&x, &y, features), None, params, &AtomicBool::new(false), |_| {}).expect("fits"))
        });
    }
    group.finish();
}

fn prediction(c: &mut Criterion) {
    let features = 10;
    let t = Transform {
        scaling: Scaling::Standard,
        feature_names: (0..features).map(|j| format!("x{j}")).collect(),
        offset: vec![0.1; features],
        scale: vec![1.5; features],
    };
    let weights = Weights { bias: 0.2, weights: (0..features).map(|j| j as f64 * 0.1).collect() };
    let model = Model::new(
        t,
        weights,
        "y".into(),
        TrainParams::default(),
        logitflow_core::logistic::StopReason::Converged,
        1,
        1,
        Lineage::default(),
    );
    let (x, _) = data(100_000, features);
    let mut group = c.benchmark_group("predict");
    group.bench_function("single_row_10_features", |b| b.iter(|| model.probability_raw(black_box(&x[..features]))));
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("batch_100k_rows_10_features", |b| {
        b.iter(|| x.chunks_exact(features).map(|row| model.probability_raw(row)).sum::<f64>())
    });
    group.finish();
}

criterion_group!(benches, one_epoch, prediction);
criterion_main!(benches);
