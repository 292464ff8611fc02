//! Predictable workloads for nodemeter's integration tests.
//!
//! `nodemeter-testload switch <ms>`: alternates 0.5 ms of spinning (CPU time) with 1 ms sleeps
//! for <ms> milliseconds of wall time (many voluntary context switches, some CPU), prints `done`, then blocks on
//! stdin so its counters stay readable in /proc until the test lets it go.
//! `nodemeter-testload burn <ms>`: spins for <ms> milliseconds of CPU time, prints `done`, blocks likewise.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// CPU time this thread has used. Spinning is measured in CPU time, not wall time, so the
/// work done does not depend on how busy the machine is.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn spin(d: Duration) {
    let start = thread_cpu_time();
    let mut x = 0u64;
    while thread_cpu_time() - start < d {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ms = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000u64);
    let total = Duration::from_millis(ms);
    let start = Instant::now();
    match args.get(1).map(String::as_str) {
        Some("switch") => {
            while start.elapsed() < total {
                spin(Duration::from_micros(500));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Some("burn") => spin(total),
        _ => {
            eprintln!("usage: nodemeter-testload switch|burn <ms>");
            std::process::exit(2);
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "done");
    let _ = out.flush();
    drop(out);
    let mut buf = [0u8; 1];
    let _ = std::io::stdin().read(&mut buf);
}
