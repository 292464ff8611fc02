//! A test double of the Kubernetes API server: in-memory objects served over HTTP with the
//! list/watch semantics the `kube` client relies on.
//!
//! It is driven through the real `kube::Client`. Implemented: core/v1 pods, services,
//! endpoints, namespaces, secrets and configmaps and monitoring.coreos.com/v1 podmonitors and
//! servicemonitors; list with `resourceVersion`, `limit` and `continue`; watch from a
//! `resourceVersion` with ADDED/MODIFIED/DELETED (selector transitions become ADDED/DELETED
//! as on a real server), `allowWatchBookmarks` → BOOKMARK events, `timeoutSeconds`; an
//! ERROR event with a 410 `Expired` Status when a watch starts before the compacted history
//! (and HTTP 410 for an expired `continue` token); label selectors (`=`, `==`, `!=`, `in`,
//! `notin`, `key`, `!key`) and field selectors (`spec.nodeName`, `metadata.name`,
//! `metadata.namespace`). Test controls add, update and delete objects, compact the history,
//! take the server down and up, and drop every watch ("restart"). Byte counters per request
//! kind measure what a client costs the API server.
//!
//! Not implemented: create/update/patch through HTTP, authentication, `resourceVersionMatch`
//! semantics beyond "any", streaming lists (`sendInitialEvents`), table output, protobuf.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// A resource the double serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    Service,
    Endpoints,
    Namespace,
    Secret,
    ConfigMap,
    PodMonitor,
    ServiceMonitor,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::Service,
        Kind::Endpoints,
        Kind::Namespace,
        Kind::Secret,
        Kind::ConfigMap,
        Kind::PodMonitor,
        Kind::ServiceMonitor,
    ];

    fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::Namespace => "namespaces",
            Kind::Secret => "secrets",
            Kind::ConfigMap => "configmaps",
            Kind::PodMonitor => "podmonitors",
            Kind::ServiceMonitor => "servicemonitors",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::Namespace => "Namespace",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::PodMonitor => "PodMonitor",
            Kind::ServiceMonitor => "ServiceMonitor",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::PodMonitor | Kind::ServiceMonitor => "monitoring.coreos.com/v1",
            _ => "v1",
        }
    }

    fn namespaced(self) -> bool {
        self != Kind::Namespace
    }
}

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    kind: Kind,
    /// The object before the change (None for a creation).
    old: Option<Value>,
    /// The object after the change; for a deletion, the last state.
    new: Value,
    deleted: bool,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    history: Vec<Change>,
    /// Changes at or below this resourceVersion are gone.
    compacted: u64,
    /// Requests fail with 503 while down.
    down: bool,
    uid_seq: u64,
}

/// Bytes and requests served, by request kind.
#[derive(Default, Debug)]
pub struct Traffic {
    pub list_requests: AtomicU64,
    pub list_bytes: AtomicU64,
    pub watch_requests: AtomicU64,
    pub watch_events: AtomicU64,
    pub watch_bytes: AtomicU64,
    pub bookmarks: AtomicU64,
    pub expired: AtomicU64,
}

/// Copy of [`Traffic`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    pub list_requests: u64,
    pub list_bytes: u64,
    pub watch_requests: u64,
    pub watch_events: u64,
    pub watch_bytes: u64,
    pub bookmarks: u64,
    pub expired: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Change>,
    /// Bumped to drop every open watch.
    generation: watch::Sender<u64>,
    traffic: Traffic,
    bookmark_interval: Duration,
}

/// The running test API server. Dropping it stops serving.
pub struct TestApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApiServer {
    /// Starts serving on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_bookmarks(Duration::from_secs(1)).await
    }

    /// Like [`start`](Self::start), sending bookmarks to watches that allow them this often.
    pub async fn start_with_bookmarks(bookmark_interval: Duration) -> std::io::Result<Self> {
        let (events, _) = broadcast::channel(65536);
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1,
                ..Inner::default()
            }),
            events,
            generation,
            traffic: Traffic::default(),
            bookmark_interval,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A real `kube::Client` talking to this server.
    pub fn client(&self) -> kube::Client {
        let uri = self
            .url()
            .parse()
            .unwrap_or_else(|e| panic!("test server URL {} does not parse: {e}", self.url()));
        let config = kube::Config::new(uri);
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates or replaces an object (`metadata.name`, and `metadata.namespace` for
    /// namespaced kinds, are required). Returns its new resourceVersion.
    pub fn apply(&self, kind: Kind, mut obj: Value) -> u64 {
        let mut inner = self.lock();
        inner.rv += 1;
        let rv = inner.rv;
        let (ns, name) = key_of(kind, &obj);
        let key = (kind, ns, name);
        let old = inner.objects.get(&key).cloned();
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind());
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["uid"].is_null() {
            let uid = old
                .as_ref()
                .map(|o| o["metadata"]["uid"].clone())
                .unwrap_or_else(|| {
                    inner.uid_seq += 1;
                    json!(format!("00000000-0000-4000-8000-{:012}", inner.uid_seq))
                });
            obj["metadata"]["uid"] = uid;
        }
        inner.objects.insert(key, obj.clone());
        let change = Change {
            rv,
            kind,
            old,
            new: obj,
            deleted: false,
        };
        inner.history.push(change.clone());
        let _ = self.shared.events.send(change);
        rv
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let mut inner = self.lock();
        let ns = if kind.namespaced() { namespace } else { "" };
        let Some(mut obj) = inner
            .objects
            .remove(&(kind, ns.to_string(), name.to_string()))
        else {
            return false;
        };
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let change = Change {
            rv,
            kind,
            old: Some(obj.clone()),
            new: obj,
            deleted: true,
        };
        inner.history.push(change.clone());
        let _ = self.shared.events.send(change);
        true
    }

    /// Forgets all history up to now, as etcd compaction does: watches from an older
    /// resourceVersion get 410 Expired.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.compacted = inner.rv;
        inner.history.clear();
    }

    /// Drops every open watch connection (clients reconnect from their last
    /// resourceVersion).
    pub fn restart(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// While down, every request fails with 503 and open watches are dropped.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
        if down {
            self.restart();
        }
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn traffic(&self) -> TrafficSnapshot {
        let t = &self.shared.traffic;
        TrafficSnapshot {
            list_requests: t.list_requests.load(Ordering::Relaxed),
            list_bytes: t.list_bytes.load(Ordering::Relaxed),
            watch_requests: t.watch_requests.load(Ordering::Relaxed),
            watch_events: t.watch_events.load(Ordering::Relaxed),
            watch_bytes: t.watch_bytes.load(Ordering::Relaxed),
            bookmarks: t.bookmarks.load(Ordering::Relaxed),
            expired: t.expired.load(Ordering::Relaxed),
        }
    }
}

fn key_of(kind: Kind, obj: &Value) -> (String, String) {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{} without metadata.name", kind.kind()))
        .to_string();
    let ns = if kind.namespaced() {
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {name} without metadata.namespace", kind.kind()))
            .to_string()
    } else {
        String::new()
    };
    (ns, name)
}

/// Parses `/api/v1[/namespaces/<ns>]/<plural>` and the monitoring.coreos.com equivalent.
fn route(path: &str) -> Option<(Kind, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segs.as_slice() {
        ["api", "v1", rest @ ..] => (rest, false),
        ["apis", "monitoring.coreos.com", "v1", rest @ ..] => (rest, true),
        _ => return None,
    };
    let (plural, ns) = match rest.0 {
        [plural] => (*plural, None),
        ["namespaces", ns, plural] => (*plural, Some(ns.to_string())),
        _ => return None,
    };
    let kind = Kind::ALL.into_iter().find(|k| k.plural() == plural)?;
    let is_monitoring = matches!(kind, Kind::PodMonitor | Kind::ServiceMonitor);
    (is_monitoring == rest.1).then_some((kind, ns))
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn status_response(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = status(code.as_u16(), reason, message).to_string();
    (code, [("content-type", "application/json")], body).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .down
    {
        return status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "down",
        );
    }
    let Some((kind, ns)) = route(uri.path()) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let labels = match q
        .get("labelSelector")
        .map(|s| LabelSelector::parse(s))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    let fields = match q
        .get("fieldSelector")
        .map(|s| FieldSelector::parse(s))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    let filter = Filter {
        kind,
        namespace: ns,
        labels,
        fields,
    };
    let is_watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    if is_watch {
        watch_response(shared, filter, &q)
    } else {
        list_response(&shared, &filter, &q)
    }
}

struct Filter {
    kind: Kind,
    namespace: Option<String>,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    fn matches(&self, kind: Kind, obj: &Value) -> bool {
        if kind != self.kind {
            return false;
        }
        if let Some(ns) = &self.namespace
            && obj["metadata"]["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        self.labels.as_ref().is_none_or(|s| s.matches(obj))
            && self.fields.as_ref().is_none_or(|s| s.matches(obj))
    }
}

fn list_response(shared: &Shared, filter: &Filter, q: &BTreeMap<String, String>) -> Response {
    let inner = shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (list_rv, offset) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (inner.rv, 0usize),
        Some(token) => {
            let parsed = token
                .split_once(':')
                .and_then(|(rv, off)| Some((rv.parse::<u64>().ok()?, off.parse::<usize>().ok()?)));
            match parsed {
                Some((rv, off)) if rv > inner.compacted => (rv, off),
                Some(_) => {
                    shared.traffic.expired.fetch_add(1, Ordering::Relaxed);
                    return status_response(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result.",
                    );
                }
                None => {
                    return status_response(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "invalid continue token",
                    );
                }
            }
        }
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let matching: Vec<&Value> = inner
        .objects
        .iter()
        .filter(|((k, _, _), v)| filter.matches(*k, v))
        .map(|(_, v)| v)
        .collect();
    let end = limit.map_or(matching.len(), |l| (offset + l).min(matching.len()));
    let items: Vec<Value> = matching
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|v| (*v).clone())
        .collect();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if end < matching.len() {
        metadata["continue"] = json!(format!("{list_rv}:{end}"));
        metadata["remainingItemCount"] = json!(matching.len() - end);
    }
    let body = json!({
        "kind": format!("{}List", filter.kind.kind()),
        "apiVersion": filter.kind.api_version(),
        "metadata": metadata,
        "items": items,
    })
    .to_string();
    shared.traffic.list_requests.fetch_add(1, Ordering::Relaxed);
    shared
        .traffic
        .list_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    ([("content-type", "application/json")], body).into_response()
}

/// The event a watcher with `filter` sees for `c` (selector transitions become ADDED or
/// DELETED), if any.
fn event_for(filter: &Filter, c: &Change) -> Option<Value> {
    let was = c.old.as_ref().is_some_and(|o| filter.matches(c.kind, o));
    let is = !c.deleted && filter.matches(c.kind, &c.new);
    let ty = match (was, is, c.deleted) {
        (true, _, true) => "DELETED",
        (false, true, _) => "ADDED",
        (true, true, _) => "MODIFIED",
        (true, false, _) => "DELETED",
        _ => return None,
    };
    Some(json!({"type": ty, "object": c.new}))
}

fn watch_response(shared: Arc<Shared>, filter: Filter, q: &BTreeMap<String, String>) -> Response {
    shared
        .traffic
        .watch_requests
        .fetch_add(1, Ordering::Relaxed);
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    // Subscribe before reading history so nothing falls between the two.
    let mut live = shared.events.subscribe();
    let mut generation = shared.generation.subscribe();
    let (backlog, start, expired) = {
        let inner = shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // resourceVersion 0/unset means "from now" (the state is not replayed: a client
        // lists first).
        let start = if from == 0 { inner.rv } else { from };
        let expired = start < inner.compacted;
        let backlog: Vec<Change> = inner
            .history
            .iter()
            .filter(|c| c.rv > start)
            .cloned()
            .collect();
        (backlog, start, expired)
    };
    let task_shared = Arc::clone(&shared);
    tokio::spawn(async move {
        let shared = task_shared;
        let send = |v: Value, bookmark: bool| {
            let mut line = v.to_string();
            line.push('\n');
            shared
                .traffic
                .watch_bytes
                .fetch_add(line.len() as u64, Ordering::Relaxed);
            if bookmark {
                shared.traffic.bookmarks.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.traffic.watch_events.fetch_add(1, Ordering::Relaxed);
            }
            Bytes::from(line)
        };
        if expired {
            shared.traffic.expired.fetch_add(1, Ordering::Relaxed);
            let e = json!({"type": "ERROR", "object": status(410, "Expired",
                &format!("too old resource version: {from}"))});
            let _ = tx.send(send(e, false)).await;
            return;
        }
        let mut last_rv = start;
        for c in &backlog {
            last_rv = c.rv;
            if let Some(e) = event_for(&filter, c)
                && tx.send(send(e, false)).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(shared.bookmark_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = generation.changed() => return,
                () = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let rv = shared.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).rv.max(last_rv);
                    let b = json!({"type": "BOOKMARK", "object": {
                        "kind": filter.kind.kind(), "apiVersion": filter.kind.api_version(),
                        "metadata": {"resourceVersion": rv.to_string()}}});
                    if tx.send(send(b, true)).await.is_err() { return; }
                }
                c = live.recv() => match c {
                    Ok(c) => {
                        if c.rv <= last_rv { continue; }
                        last_rv = c.rv;
                        if let Some(e) = event_for(&filter, &c)
                            && tx.send(send(e, false)).await.is_err() { return; }
                    }
                    // A watcher this far behind is dropped, as a real server drops slow watchers.
                    Err(_) => return,
                },
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    ([("content-type", "application/json")], body).into_response()
}

/// A parsed label selector.
#[derive(Debug, Clone)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Debug, Clone)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("bad set in label selector {part:?}"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let r = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set(rest)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            reqs.push(r);
        }
        Ok(Self(reqs))
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v),
            Requirement::NotEq(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector over the fields the API server supports for these kinds.
#[derive(Debug, Clone)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in split_top(s) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector {part:?}"));
            };
            let field = field.trim();
            if !matches!(
                field,
                "spec.nodeName" | "metadata.name" | "metadata.namespace"
            ) {
                return Err(format!("field label not supported: {field}"));
            }
            out.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(Self(out))
    }

    fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, value)| {
            let actual = field
                .split('.')
                .fold(obj, |o, seg| &o[seg])
                .as_str()
                .unwrap_or_default();
            (actual == value) == *eq
        })
    }
}
