//! A real HTTP scrape target for the tests: one thread per connection on 127.0.0.1, routes
//! that behave like healthy and broken exporters, and a record of the requests received.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What a path answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body and `Content-Type`.
    Body {
        content_type: Option<String>,
        body: String,
    },
    /// Like `Body`, gzip-compressed with `Content-Encoding: gzip`.
    Gzip { content_type: String, body: String },
    /// Waits this long, then answers like `Body`.
    Slow { delay: Duration, body: String },
    /// This status with a short body.
    Status(u16),
    /// 200 with `size` bytes of valid exposition lines, generated while sending.
    Huge { size: u64 },
}

impl Reply {
    /// A 200 in the Prometheus text format 0.0.4.
    pub fn text(body: &str) -> Self {
        Self::Body {
            content_type: Some("text/plain; version=0.0.4; charset=utf-8".into()),
            body: body.into(),
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Reply>,
    requests: Vec<Request>,
}

/// The server. Threads end with the process; the tests are short-lived.
#[derive(Clone)]
pub struct TestTarget {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl TestTarget {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test target");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        Self { addr, shared }
    }

    /// Sets what `path` (e.g. `/metrics`) answers from now on.
    pub fn route(&self, path: &str, reply: Reply) {
        self.shared
            .lock()
            .expect("lock")
            .routes
            .insert(path.into(), reply);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().expect("lock").requests.clone()
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

fn serve(conn: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("/").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let reply = {
            let mut s = shared.lock().expect("lock");
            s.requests.push(Request {
                path: target.clone(),
                headers,
            });
            s.routes.get(&path).cloned()
        };
        match reply {
            None => respond(&mut conn, 404, None, &[], b"not found\n")?,
            Some(Reply::Body { content_type, body }) => respond(
                &mut conn,
                200,
                content_type.as_deref(),
                &[],
                body.as_bytes(),
            )?,
            Some(Reply::Gzip { content_type, body }) => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(body.as_bytes())?;
                let gz = enc.finish()?;
                respond(
                    &mut conn,
                    200,
                    Some(&content_type),
                    &[("Content-Encoding", "gzip")],
                    &gz,
                )?
            }
            Some(Reply::Slow { delay, body }) => {
                thread::sleep(delay);
                respond(
                    &mut conn,
                    200,
                    Some("text/plain; version=0.0.4"),
                    &[],
                    body.as_bytes(),
                )?
            }
            Some(Reply::Status(code)) => respond(
                &mut conn,
                code,
                Some("text/plain"),
                &[],
                b"something broke\n",
            )?,
            Some(Reply::Huge { size }) => {
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                )?;
                // The client is expected to give up long before the end: stop when it does.
                let line =
                    b"huge_series{a=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"} 1\n";
                let mut chunk = Vec::with_capacity(1 << 16);
                while chunk.len() + line.len() <= 1 << 16 {
                    chunk.extend_from_slice(line);
                }
                let mut sent = 0u64;
                while sent < size {
                    let n = chunk.len().min((size - sent) as usize);
                    conn.write_all(&chunk[..n])?;
                    sent += n as u64;
                }
                return Ok(());
            }
        }
    }
}

fn respond(
    conn: &mut TcpStream,
    code: u16,
    content_type: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Length: {}\r\n",
        if code == 200 { "OK" } else { "Status" },
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}
