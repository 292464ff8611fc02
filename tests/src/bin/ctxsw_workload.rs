//! A single-threaded process with a known mix of context switches, for the sched_switch probe
//! test: for about a second it alternates busy work (preempted when the CPU is contended:
//! involuntary switches) with short sleeps (voluntary), then prints `blocked` and blocks reading
//! stdin until EOF, so its counters stay still while the test compares them.
#![allow(
    clippy::print_stdout,
    reason = "the test reads the marker line from stdout"
)]

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

fn main() {
    let started = Instant::now();
    let mut sink = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        let burst = Instant::now();
        while burst.elapsed() < Duration::from_millis(3) {
            sink =
                std::hint::black_box(sink.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        std::thread::sleep(Duration::from_millis(2));
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
