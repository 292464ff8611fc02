//! The real `nodemeter` binary, started on a config written by the test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::metrics::Exposition;

/// Path of the agent binary, built once per test process with the same cargo and profile.
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test> -> target/<profile>/nodemeter
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir layout");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "nodemeter", "--bin", "nodemeter"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build for the agent");
            assert!(status.success(), "building the agent failed");
            profile_dir.join("nodemeter")
        })
        .clone()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running agent. Killed on drop; [`AgentProcess::terminate`] stops it the orderly way.
pub struct AgentProcess {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts the agent on `config_yaml` (`server.listen` is set to a free port) and waits
    /// until `/healthz` answers.
    pub fn start(config_yaml: &str) -> Self {
        Self::start_with(config_yaml, |_| {})
    }

    /// Like [`start`](Self::start), letting the test adjust the command (user, env).
    pub fn start_with(config_yaml: &str, adjust: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("agent.yaml");
        std::fs::write(&config, config_yaml).expect("write config");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log = dir.path().join("agent.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.args(["run", "--config"])
            .arg(&config)
            .args(["--listen", &addr.to_string()])
            .env("NODEMETER_LOG", "info,nodemeter=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn agent");
        let mut agent = Self {
            child,
            addr,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get("/healthz").is_none() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!(
                    "agent exited during start-up ({status}); log:\n{}",
                    agent.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "agent did not come up; log:\n{}",
                agent.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    /// Process id of the agent (for /proc checks such as peak memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path`; `Some((status, body))` when the agent answered.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Some((status, body))
    }

    /// The current `/metrics`, parsed.
    pub fn scrape(&self) -> Exposition {
        let (status, body) = self.get("/metrics").expect("agent answers /metrics");
        assert_eq!(status, 200, "{body}");
        Exposition::parse(&body)
    }

    /// Scrapes until `check` returns `Some`, or panics after `timeout` with the last scrape.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Exposition) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.scrape();
            if let Some(v) = check(&e) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "condition not met within {timeout:?}; last /metrics:\n{}\nlog:\n{}",
                    e.text,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
