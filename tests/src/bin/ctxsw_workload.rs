//! A single-threaded process with a known mix of context switches, for the sched_switch probe
//! test: [`CYCLES`] times (about a second on an idle machine) it does 2 ms of busy work
//! (preempted when the CPU is contended: involuntary switches) then sleeps 1 ms (at least one
//! voluntary switch each), then prints `blocked` and blocks reading stdin until EOF, so its
//! counters stay still while the test compares them.
#![allow(
    clippy::print_stdout,
    reason = "the test reads the marker line from stdout"
)]

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

/// Sleeps the workload makes; the test relies on at least this many voluntary switches.
const CYCLES: u32 = 300;

fn main() {
    let mut sink = 0u64;
    for _ in 0..CYCLES {
        let burst = Instant::now();
        while burst.elapsed() < Duration::from_millis(2) {
            sink =
                std::hint::black_box(sink.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out = std::io::stdout().lock();
    // Failing to report is failing the test's protocol: exit non-zero so it shows.
    if writeln!(out, "blocked {}", sink & 1)
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(2);
    }
    drop(out);
    let mut rest = Vec::new();
    if std::io::stdin().read_to_end(&mut rest).is_err() {
        std::process::exit(3);
    }
}
