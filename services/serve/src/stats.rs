//! Inference statistics per model version, as Triton keeps them: requests that succeeded and
//! failed with the time they took, rows inferred, the time of the last inference, and a latency
//! histogram. `GET /v2/models/{m}/stats` and gRPC's `ModelStatistics` answer from them in
//! Triton's shape; `/metrics` shows them as Prometheus series named as Triton's `nv_inference_*`.
//!
//! - [`VersionStats`]: one version's counters, kept across catalog swaps while the version is
//!   served.
//! - [`Snapshot`]: their sum at one moment.
//!
//! Why shards: a counter shared by every request is written from both cores, and each write
//! moves its cache line between them; that is what cost serve its throughput before (see the
//! kit's `connection` module). Each worker thread here writes to a shard of its own, a cache
//! line apart from the others, and a reader sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upper bounds of the latency histogram's buckets, in microseconds (`+Inf` follows).
pub(crate) const BUCKETS_US: [u64; 12] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000];

/// Shards per version: more than the worker threads of any machine serve runs on, so threads
/// rarely share one; a thread that does shares it with few.
const SHARDS: usize = 16;

/// One thread's counters, on a cache line (pair) of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    success: AtomicU64,
    success_ns: AtomicU64,
    failure: AtomicU64,
    failure_ns: AtomicU64,
    rows: AtomicU64,
    /// Milliseconds since the Unix epoch of the last inference that ended here.
    last_inference_ms: AtomicU64,
    /// Successful requests by latency: `buckets[i]` counts those at most `BUCKETS_US[i]` and
    /// above the bound before it; the last counts those above every bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

/// One served version's inference statistics.
#[derive(Debug, Default)]
pub(crate) struct VersionStats {
    shards: Box<[Shard; SHARDS]>,
}

/// The sum of a version's shards at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) success: u64,
    pub(crate) success_ns: u64,
    pub(crate) failure: u64,
    pub(crate) failure_ns: u64,
    pub(crate) rows: u64,
    /// 0 when nothing was inferred yet, as Triton says it.
    pub(crate) last_inference_ms: u64,
    /// Not cumulative: as [`Shard::buckets`].
    pub(crate) buckets: [u64; BUCKETS_US.len() + 1],
}

/// The shard this thread writes to: threads take them in turn as they first infer.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Milliseconds since the Unix epoch at `at`, from one reading of the wall clock taken at the
/// first call (a monotonic instant is cheaper to read than the wall clock on every request).
fn epoch_ms(at: Instant) -> u64 {
    static ORIGIN: std::sync::OnceLock<(Instant, u64)> = std::sync::OnceLock::new();
    let (instant, ms) = *ORIGIN.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (Instant::now(), now.as_millis() as u64)
    });
    ms + at.saturating_duration_since(instant).as_millis() as u64
}

impl VersionStats {
    /// Counts one request that began at `started` and ended now: `Ok(rows)` when it was
    /// answered, `Err(())` when it was refused (bad input and the like).
    pub(crate) fn record(&self, started: Instant, outcome: Result<usize, ()>) {
        let ended = Instant::now();
        let took = ended.saturating_duration_since(started);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[shard_index()];
        match outcome {
            Ok(rows) => {
                shard.success.fetch_add(1, Ordering::Relaxed);
                shard.success_ns.fetch_add(ns, Ordering::Relaxed);
                shard.rows.fetch_add(rows as u64, Ordering::Relaxed);
                shard.buckets[bucket_of(took)].fetch_add(1, Ordering::Relaxed);
            }
            Err(()) => {
                shard.failure.fetch_add(1, Ordering::Relaxed);
                shard.failure_ns.fetch_add(ns, Ordering::Relaxed);
            }
        }
        shard.last_inference_ms.fetch_max(epoch_ms(ended), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut sum = Snapshot::default();
        for shard in self.shards.iter() {
            sum.success += shard.success.load(Ordering::Relaxed);
            sum.success_ns += shard.success_ns.load(Ordering::Relaxed);
            sum.failure += shard.failure.load(Ordering::Relaxed);
            sum.failure_ns += shard.failure_ns.load(Ordering::Relaxed);
            sum.rows += shard.rows.load(Ordering::Relaxed);
            sum.last_inference_ms =
                sum.last_inference_ms.max(shard.last_inference_ms.load(Ordering::Relaxed));
            for (total, count) in sum.buckets.iter_mut().zip(&shard.buckets) {
                *total += count.load(Ordering::Relaxed);
            }
        }
        sum
    }
}

fn bucket_of(took: Duration) -> usize {
    let us = took.as_micros() as u64;
    BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(BUCKETS_US.len())
}

impl Snapshot {
    /// Triton's `ModelStatistics` for `name` version `version`, as JSON (`GET .../stats`).
    /// Every inference is its own execution (no batching), and serve has no queue or cache, so
    /// those durations are zero, as Triton reports them for a model without them.
    pub(crate) fn triton_json(&self, name: &str, version: u32) -> serde_json::Value {
        let duration = |count: u64, ns: u64| serde_json::json!({"count": count, "ns": ns});
        let zero = duration(0, 0);
        serde_json::json!({
            "name": name,
            "version": version.to_string(),
            "last_inference": self.last_inference_ms,
            "inference_count": self.rows,
            "execution_count": self.success,
            "inference_stats": {
                "success": duration(self.success, self.success_ns),
                "fail": duration(self.failure, self.failure_ns),
                "queue": zero,
                "compute_input": zero,
                "compute_infer": duration(self.success, self.success_ns),
                "compute_output": zero,
                "cache_hit": zero,
                "cache_miss": zero,
            },
            "batch_stats": [],
        })
    }

    /// The Prometheus series of one version, labelled `model` and `version`.
    pub(crate) fn write_prometheus(&self, name: &str, version: u32, out: &mut String) {
        use std::fmt::Write;
        let labels = format!("model=\"{}\",version=\"{version}\"", escape_label(name));
        let _ = writeln!(out, "nv_inference_request_success{{{labels}}} {}", self.success);
        let _ = writeln!(out, "nv_inference_request_failure{{{labels}}} {}", self.failure);
        let _ = writeln!(out, "nv_inference_count{{{labels}}} {}", self.rows);
        let _ = writeln!(out, "nv_inference_exec_count{{{labels}}} {}", self.success);
        let _ = writeln!(
            out,
            "nv_inference_request_duration_us{{{labels}}} {}",
            (self.success_ns + self.failure_ns) / 1_000
        );
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count;
            let le = BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "logitflow_inference_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "logitflow_inference_request_duration_seconds_sum{{{labels}}} {}",
            self.success_ns as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "logitflow_inference_request_duration_seconds_count{{{labels}}} {}",
            self.success
        );
    }
}

/// The HELP and TYPE lines of the series [`Snapshot::write_prometheus`] writes, once per page.
pub(crate) fn write_prometheus_help(out: &mut String) {
    for (name, kind, help) in [
        (
            "nv_inference_request_success",
            "counter",
            "Inference requests answered, per model version.",
        ),
        (
            "nv_inference_request_failure",
            "counter",
            "Inference requests refused (bad input and the like), per model version.",
        ),
        ("nv_inference_count", "counter", "Rows inferred, per model version."),
        (
            "nv_inference_exec_count",
            "counter",
            "Model executions (one per answered request: serve does not batch).",
        ),
        (
            "nv_inference_request_duration_us",
            "counter",
            "Time spent on inference requests, answered and refused, in µs.",
        ),
        (
            "logitflow_inference_request_duration_seconds",
            "histogram",
            "Time to answer an inference request, per model version.",
        ),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }
}

/// A label value as Prometheus's text format wants it.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_outcome_and_bucketed_by_latency_across_threads() {
        let stats = std::sync::Arc::new(VersionStats::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        stats.record(Instant::now(), Ok(3));
                    }
                    stats.record(Instant::now() - Duration::from_millis(2), Err(()));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = stats.snapshot();
        assert_eq!((s.success, s.failure, s.rows), (1000, 4, 3000));
        assert_eq!(s.buckets.iter().sum::<u64>(), 1000, "failures are not in the histogram");
        assert!(s.failure_ns >= 4 * 2_000_000, "a failure's time is counted: {}", s.failure_ns);
        let now_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
        assert!(
            now_ms.abs_diff(s.last_inference_ms) < 5_000,
            "last inference {} vs now {now_ms}",
            s.last_inference_ms
        );
    }

    #[test]
    fn latencies_fall_in_the_bucket_whose_bound_is_the_first_at_or_above_them() {
        assert_eq!(bucket_of(Duration::from_micros(50)), 0);
        assert_eq!(bucket_of(Duration::from_micros(51)), 1);
        assert_eq!(bucket_of(Duration::from_millis(1)), 4);
        assert_eq!(bucket_of(Duration::from_secs(1)), BUCKETS_US.len());
    }

    #[test]
    fn prometheus_histogram_is_cumulative_and_ends_at_the_count() {
        let s = Snapshot {
            success: 3,
            success_ns: 1_500_000,
            buckets: [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ..Snapshot::default()
        };
        let mut out = String::new();
        s.write_prometheus("a\"b", 2, &mut out);
        assert!(
            out.contains("nv_inference_request_success{model=\"a\\\"b\",version=\"2\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("le=\"0.00005\"} 1\n")
                && out.contains("le=\"0.00025\"} 2\n")
                && out.contains("le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("logitflow_inference_request_duration_seconds_count{model=\"a\\\"b\",version=\"2\"} 3\n"), "{out}");
    }
}
