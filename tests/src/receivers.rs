//! Remote-write receivers for the tests: real Prometheus and VictoriaMetrics processes started
//! on free 127.0.0.1 ports (killed by PID on drop), and a small HTTP receiver of our own whose
//! answers the test chooses and which records every request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;

use nodemeter::sinks::remote_write::encode;
use nodemeter::sinks::remote_write::proto::{v1, v2};

use crate::agent::free_port;

/// Returns `None` (and says why) when a receiver binary is not installed.
fn installed(bin: &str) -> Option<PathBuf> {
    let p = PathBuf::from(bin);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {bin} is not installed (apt-get install prometheus victoria-metrics)");
        None
    }
}

/// A child process killed (by its PID) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Daemon {
    fn spawn(cmd: &mut Command, addr: SocketAddr, log: PathBuf, ready_path: &str) -> Self {
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn receiver");
        let mut d = Self {
            child: Some(child),
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, _)) = http_get(addr, ready_path) {
                break;
            }
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                panic!("receiver exited ({status}):\n{}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "receiver not ready:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process the orderly way (SIGTERM: it flushes what it stored) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Kills the process now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Prometheus server with the remote-write receiver on.
pub struct Prometheus {
    pub daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start() -> Option<Self> {
        let bin = installed("/usr/bin/prometheus")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global: {}\n").expect("config");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut cmd = Command::new(bin);
        cmd.arg("--web.enable-remote-write-receiver")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--config.file={}", config.display()));
        let daemon = Daemon::spawn(&mut cmd, addr, dir.path().join("log"), "/-/ready");
        Some(Self { daemon, _dir: dir })
    }

    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.daemon.addr)
    }

    /// Runs an instant query; returns `data.result`.
    pub fn query(&self, promql: &str, time_s: f64) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}&time={time_s}", url_encode(promql));
        let (status, body) = http_get(self.daemon.addr, &path).expect("query");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["data"]["result"].clone()
    }
}

/// A VictoriaMetrics single-node server.
pub struct VictoriaMetrics {
    pub daemon: Daemon,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl VictoriaMetrics {
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut vm = Self::start_at(&data, addr)?;
        vm._dir = Some(dir);
        Some(vm)
    }

    /// Starts on a given data directory and address (to restart after an outage).
    pub fn start_at(data: &Path, addr: SocketAddr) -> Option<Self> {
        let bin = installed("/usr/bin/victoria-metrics")?;
        let log = data.with_extension("log");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr={addr}"))
            .arg("-retentionPeriod=100y");
        let daemon = Daemon::spawn(&mut cmd, addr, log, "/health");
        Some(Self {
            daemon,
            data: data.to_path_buf(),
            _dir: None,
        })
    }

    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.daemon.addr)
    }

    /// Every stored raw sample of the series matching `selector`, by label set.
    pub fn export(&self, selector: &str) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
        let _ = http_get(self.daemon.addr, "/internal/force_flush");
        let path = format!("/api/v1/export?match[]={}", url_encode(selector));
        let (status, body) = http_get(self.daemon.addr, &path).expect("export");
        assert_eq!(status, 200, "{body}");
        let mut out = BTreeMap::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("export line");
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let ts = v["timestamps"].as_array().expect("timestamps");
            let vals = v["values"].as_array().expect("values");
            let samples = ts
                .iter()
                .zip(vals)
                .map(|(t, v)| {
                    let value = match v {
                        serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                        // VM writes special values as strings or null.
                        serde_json::Value::String(s) => s.parse().unwrap_or(f64::NAN),
                        _ => f64::NAN,
                    };
                    (t.as_i64().unwrap_or_default(), value)
                })
                .collect();
            out.insert(labels, samples);
        }
        out
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GET over a fresh connection; `Some((status, body))`.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
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
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// One received sample: labels in wire order, timestamp ms, value bits.
pub type WireSample = (Vec<(String, String)>, i64, u64);

/// One request as the fake receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: BTreeMap<String, String>,
    /// The snappy-decoded protobuf.
    pub protobuf: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn is_v2(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.contains("proto=io.prometheus.write.v2.Request"))
    }

    pub fn v1(&self) -> v1::WriteRequest {
        v1::WriteRequest::decode(self.protobuf.as_slice()).expect("v1 body")
    }

    pub fn v2(&self) -> v2::Request {
        v2::Request::decode(self.protobuf.as_slice()).expect("v2 body")
    }

    /// Every sample in the request as (labels, timestamp, value bits), either version.
    pub fn samples(&self) -> Vec<WireSample> {
        let mut out = Vec::new();
        if self.is_v2() {
            let r = self.v2();
            for ts in r.timeseries {
                let labels: Vec<(String, String)> = ts
                    .labels_refs
                    .chunks(2)
                    .map(|p| {
                        (
                            r.symbols[p[0] as usize].clone(),
                            r.symbols[p[1] as usize].clone(),
                        )
                    })
                    .collect();
                for s in ts.samples {
                    out.push((labels.clone(), s.timestamp, s.value));
                }
            }
        } else {
            for ts in self.v1().timeseries {
                let labels: Vec<(String, String)> = ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                for s in ts.samples {
                    out.push((labels.clone(), s.timestamp, s.value));
                }
            }
        }
        out
    }
}

/// What the fake receiver answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: &str) -> Self {
        self.body = b.to_string();
        self
    }
}

type Handler = dyn Fn(usize, &Received) -> Reply + Send + Sync;

/// An HTTP/1.1 receiver on 127.0.0.1 that records requests and answers what `handler` says
/// (given the request's index, counting from 0). Optional TLS with a rustls server config.
pub struct FakeReceiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl FakeReceiver {
    pub fn start(handler: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(handler, None)
    }

    pub fn start_with(
        handler: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let requests: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (r, s) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, h, tls) = (Arc::clone(&r), Arc::clone(&handler), tls.clone());
                        std::thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                            match tls {
                                Some(cfg) => {
                                    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                        return;
                                    };
                                    serve(rustls::StreamOwned::new(conn, stream), &r, &*h);
                                }
                                None => serve(stream, &r, &*h),
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            requests,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.received();
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests within {timeout:?}",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves requests on one connection (keep-alive) until the peer closes it.
fn serve<S: Read + Write>(stream: S, log: &Mutex<Vec<Received>>, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let protobuf = encode::decompress(&body).unwrap_or_default();
        let req = Received {
            at: Instant::now(),
            headers,
            protobuf,
        };
        let index = {
            let mut l = log.lock().expect("lock");
            l.push(req.clone());
            l.len() - 1
        };
        let reply = handler(index, &req);
        let mut out = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        let s = reader.get_mut();
        if s.write_all(out.as_bytes()).is_err() || s.flush().is_err() {
            return;
        }
    }
}
