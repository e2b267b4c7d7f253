//! The monitor's HTTP side: the page, its assets and the JSON API under
//! `/api/` (docs/monitor.md), on axum, in a small runtime of its own.
//! Everything is read-only: GET only.

use crate::sync::RwLockUnpoisoned;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use axum::Router;
use axum::extract::{Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::State;
use super::collect::ServiceState;
use crate::access::Caller;
use crate::lab::logfile::{self, Selection};
use crate::lab::status::Kind;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/monitor.js");
const STYLE: &str = include_str!("assets/monitor.css");

/// Lines `/api/logs` returns by default, and at most.
const DEFAULT_LINES: usize = 200;
const MAX_LINES: usize = 5000;

/// Connections served at once; more wait in the kernel's queue. The
/// monitor shares its process with the manager, whose file descriptors
/// idle or abandoned clients must not use up.
const MAX_CONNECTIONS: usize = 64;

/// A connection that sends nothing for this long is closed, freeing its
/// place for others.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long clients in the middle of a request get to finish when the
/// monitor stops; then it stops regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The running HTTP server.
pub struct Server {
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `listen` (`host:port`) now, and serves in the background:
    /// HTTPS with `tls`, else HTTP, which beyond loopback it refuses
    /// unless `insecure`.
    pub fn start(
        listen: &str,
        state: Arc<State>,
        tls: Option<Arc<rustls::ServerConfig>>,
        insecure: bool,
    ) -> io::Result<Server> {
        let addresses: Vec<SocketAddr> = listen.to_socket_addrs()?.collect();
        let listener = std::net::TcpListener::bind(&addresses[..])?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        check_exposure(address, tls.is_some(), insecure)?;
        let (shutdown, stop_requested) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("monitor-http")
            .enable_io()
            .enable_time()
            .build()?;
        let thread = thread::Builder::new()
            .name("monitor-http".to_owned())
            .spawn(move || {
                let (graceful, graceful_requested) = oneshot::channel::<()>();
                let server = runtime.spawn(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => Limited::new(listener, tls),
                        Err(err) => {
                            tracing::error!("monitor: cannot serve: {err}");
                            return;
                        }
                    };
                    let app = router(state).into_make_service_with_connect_info::<Caller>();
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = graceful_requested.await;
                        })
                        .await;
                    if let Err(err) = served {
                        tracing::error!("monitor: stopped serving: {err}");
                    }
                });
                runtime.block_on(async {
                    let _ = stop_requested.await;
                });
                let _ = graceful.send(());
                // A client that never finishes its request must not hold
                // the manager (or `down`) up.
                runtime.block_on(async {
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Server {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving and waits (a few seconds at most) for the server to
    /// end.
    pub fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The monitor's rule for an address beyond loopback without TLS, as the
/// daemons' ([`crate::net::Bound::check_exposure`]).
fn check_exposure(address: SocketAddr, tls: bool, insecure: bool) -> io::Result<()> {
    if tls || address.ip().is_loopback() {
        return Ok(());
    }
    if insecure {
        tracing::warn!(
            "the monitor listens on {address} without TLS (insecure: true): anyone who can reach \
             it can read the lab's logs, unencrypted"
        );
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing to listen on {address} without TLS: anyone on the network could read the \
             lab's logs; give it TLS (`tls` in the configuration, `--tls` for `pyrolab-host \
             monitor`; docs/security.md), or allow it (`insecure: true`, `--insecure`)"
        ),
    ))
}

/// How long a client has to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener that serves at most [`MAX_CONNECTIONS`] connections at
/// once, over TLS when it has it. Connections are accepted, and their TLS
/// handshakes made, by a task of their own: a client slow in its
/// handshake holds up no one else.
struct Limited {
    ready: tokio::sync::mpsc::Receiver<(LimitedStream, SocketAddr)>,
    address: io::Result<SocketAddr>,
}

impl Limited {
    fn new(inner: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Limited {
        let address = inner.local_addr();
        let (sender, ready) = tokio::sync::mpsc::channel(MAX_CONNECTIONS);
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(accept_loop(inner, permits, acceptor, sender));
        Limited { ready, address }
    }
}

async fn accept_loop(
    inner: tokio::net::TcpListener,
    permits: Arc<Semaphore>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    sender: tokio::sync::mpsc::Sender<(LimitedStream, SocketAddr)>,
) {
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, address) = match inner.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!("monitor: cannot accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(acceptor) = acceptor.clone() else {
            let stream = LimitedStream::new(Transport::Plain(stream), permit);
            if sender.send((stream, address)).await.is_err() {
                return;
            }
            continue;
        };
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(crate::tls::subject_name);
                    let mut stream = LimitedStream::new(Transport::Tls(Box::new(tls)), permit);
                    stream.identity = identity;
                    let _ = sender.send((stream, address)).await;
                }
                Ok(Err(err)) => {
                    tracing::warn!(peer = %address, "monitor: closing connection: TLS: {err}")
                }
                Err(_) => tracing::warn!(
                    peer = %address,
                    "monitor: closing connection: no TLS handshake within {} s",
                    TLS_HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

/// Who makes a request: its certificate's identity, and its address.
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Limited>> for Caller {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Limited>) -> Caller {
        Caller {
            identity: stream.io().identity.clone(),
            address: Some(stream.remote_addr().to_string()),
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (its runtime is stopping).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.address {
            Ok(address) => Ok(*address),
            Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
        }
    }
}

/// What a connection is carried over.
enum Transport {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection holding one of the listener's permits until it closes,
/// closed when idle for [`IDLE_TIMEOUT`].
struct LimitedStream {
    stream: Transport,
    /// The client's identity, by its TLS certificate.
    identity: Option<String>,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl LimitedStream {
    fn new(stream: Transport, permit: OwnedSemaphorePermit) -> LimitedStream {
        LimitedStream {
            stream,
            identity: None,
            _permit: permit,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
        }
    }

    fn active(&mut self) {
        self.idle
            .as_mut()
            .reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection closed",
                ))),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                this.active();
                ready
            }
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if written.is_ready() {
            this.active();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/monitor.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/monitor.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api", get(api_index))
        .route("/api/status", get(status))
        .route("/api/nameservers", get(nameservers))
        .route("/api/services", get(services))
        .route("/api/components", get(components))
        .route("/api/events", get(events))
        .route("/api/logs", get(logs))
        .route("/api/hosts", get(hosts))
        .route("/api/hosts/config", get(host_config))
        .route("/api/metrics", get(api_metrics))
        .route("/api/metadata", get(metadata))
        .route("/metrics", get(prometheus_metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page: see /api for the API") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "the monitor is read-only: GET only",
            )
        })
        .with_state(state)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// A refusal: an HTTP status and why, answered as `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

type Answer = Result<Response, ApiError>;

fn json(value: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(value)).into_response()
}

type Params = Query<HashMap<String, String>>;

/// Refuses parameters the endpoint does not take (a misspelt filter must
/// not silently return everything).
fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(ApiError::bad(format!(
            "unknown parameter {key:?}; this endpoint takes {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))),
    }
}

async fn api_index() -> Response {
    json(json!({
        "endpoints": {
            "/api/status": "everything below at once, as of the last look",
            "/api/nameservers": "the name servers and whether they answer",
            "/api/services": "the services they list, and this host's lab's that could not register: status available/locked/unreachable/unregistered (?status=...)",
            "/api/components": "this host's name servers and daemons, as `pyrolab-host ps` shows them",
            "/api/events": "recent status changes (?since=TIME)",
            "/api/logs": "a component's log (?component=NAME[&kind=daemon|nameserver|command][&since=TIME][&lines=N]; &host=HOST for another host's, its last lines)",
            "/api/hosts": "the lab's hosts (each host's manager with a `manager:` section, found on the name servers): reachable or unreachable since when, their components, and the lab's configured against running components",
            "/api/hosts/config": "the configuration a host runs, as YAML (?host=HOST)",
            "/api/metrics": "each pyrolab-host daemon's call metrics: per service and method, calls, errors by class, latency, bytes, locks, and the last hour's points (?service=NAME)",
            "/api/metadata": "a listed service's methods, oneway methods and properties, asked of its daemon (?service=NAME[&nameserver=NS])",
            "/metrics": "the metrics in Prometheus' text format (docs/metrics.md)",
        }
    }))
}

/// The last look, or 503 before the first.
fn snapshot(state: &State) -> Result<super::Snapshot, ApiError> {
    state.snapshot.read_unpoisoned().clone().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first look at the lab is not done yet; try again in a moment".to_owned(),
        )
    })
}

async fn status(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &[])?;
    let snapshot = snapshot(&state)?;
    let events: Vec<_> = state.events.read_unpoisoned().iter().cloned().collect();
    Ok(json(json!({
        "taken": snapshot.taken,
        "polling_s": state.polling.as_secs_f64(),
        "nameservers": snapshot.nameservers,
        "services": snapshot.services,
        "components": snapshot.lab.as_ref().map(|lab| &lab.components),
        "manager": snapshot.lab.as_ref().map(|lab| &lab.manager),
        "hosts": snapshot.hosts,
        "lab": lab_summary(&snapshot.hosts),
        "events": events,
    })))
}

/// The whole lab at a glance: hosts answering, and the components the
/// hosts' configurations autolaunch against those running (pylm's
/// registry's "have enough servers joined?").
fn lab_summary(hosts: &[super::collect::HostView]) -> Value {
    use crate::lab::status::{ComponentStatus, State};
    // What each host is configured to run, as last seen (an unreachable
    // host's components are still wanted), and what the hosts answering
    // run now.
    let known = || {
        hosts
            .iter()
            .filter_map(|h| Some((h.reachable, h.status.as_ref()?)))
            .flat_map(|(reachable, status)| status.components.iter().map(move |c| (reachable, c)))
    };
    let running =
        |(reachable, c): &(bool, &ComponentStatus)| *reachable && c.status == State::Running;
    json!({
        "hosts": hosts.len(),
        "hosts_reachable": hosts.iter().filter(|h| h.reachable).count(),
        "configured": known().filter(|(_, c)| c.autolaunch).count(),
        "configured_running": known().filter(|(_, c)| c.autolaunch).filter(running).count(),
        "components": known().count(),
        "running": known().filter(running).count(),
    })
}

async fn hosts(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &[])?;
    let snapshot = snapshot(&state)?;
    Ok(json(json!({
        "taken": snapshot.taken,
        "hosts": snapshot.hosts,
        "lab": lab_summary(&snapshot.hosts),
    })))
}

/// The management object of `host`, as the last look found it.
fn host_manager(state: &State, host: &str) -> Result<crate::client::Proxy, ApiError> {
    let snapshot = snapshot(state)?;
    let found = snapshot
        .hosts
        .iter()
        .find(|h| h.host == host)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no host {host:?} in the lab (see /api/hosts)"),
            )
        })?;
    let uri = found
        .uri
        .parse()
        .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("{err}")))?;
    let mut proxy = crate::client::Proxy::new(uri);
    proxy.set_tls(state.client_tls.clone());
    proxy.set_timeout(Some(Duration::from_secs(5)));
    Ok(proxy)
}

/// Calls `method` on `host`'s manager, off the async threads.
async fn ask_host<T: serde::de::DeserializeOwned + Send + 'static>(
    state: &State,
    host: &str,
    method: &'static str,
    args: Vec<pyrolab_plugin_api::Value>,
) -> Result<T, ApiError> {
    let proxy = host_manager(state, host)?;
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || proxy.call::<T>(method, args))
        .await
        .map_err(|err| ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?
        .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("host {host}: {err}")))
}

async fn host_config(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &["host"])?;
    let host = params
        .get("host")
        .cloned()
        .ok_or_else(|| ApiError::bad("host is required (see /api/hosts)"))?;
    let config: String = ask_host(&state, &host, "config", Vec::new()).await?;
    Ok(json(json!({ "host": host, "config": config })))
}

async fn nameservers(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &[])?;
    Ok(json(json!(snapshot(&state)?.nameservers)))
}

async fn services(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &["status"])?;
    let wanted = match params.get("status") {
        None => None,
        Some(text) => Some(ServiceState::parse(text).ok_or_else(|| {
            ApiError::bad(format!(
                "status must be available, locked, unreachable or unregistered, not {text:?}"
            ))
        })?),
    };
    let snapshot = snapshot(&state)?;
    let services: Vec<_> = snapshot
        .services
        .iter()
        .filter(|s| wanted.is_none_or(|w| s.status == w))
        .collect();
    Ok(json(json!(services)))
}

async fn api_metrics(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &["service"])?;
    let snapshot = snapshot(&state)?;
    let history = state.history.read_unpoisoned();
    let view = super::charts::view(
        &snapshot,
        &history,
        params.get("service").map(String::as_str),
    );
    Ok(json(json!(view)))
}

/// `/metrics`: for Prometheus, which wants text, and an empty page before
/// the first look rather than an error (a scrape then just has no
/// samples).
async fn prometheus_metrics(Extract(state): Extract<Arc<State>>) -> Response {
    let text = state
        .snapshot
        .read_unpoisoned()
        .as_ref()
        .map(super::prometheus::render)
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, super::prometheus::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// A listed service's Pyro5 metadata, asked of its daemon: only of
/// services a name server lists, so the monitor calls no address a
/// visitor makes up.
async fn metadata(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &["service", "nameserver"])?;
    let name = params
        .get("service")
        .ok_or_else(|| ApiError::bad("service is required (see /api/services)"))?;
    let snapshot = snapshot(&state)?;
    let service = snapshot
        .services
        .iter()
        .filter(|s| {
            params
                .get("nameserver")
                .is_none_or(|ns| *ns == s.nameserver)
        })
        .find(|s| s.name == *name && s.status != ServiceState::Unregistered)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no listed service {name:?} (see /api/services)"),
            )
        })?;
    let uri: crate::wire::uri::PyroUri = service
        .uri
        .parse()
        .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("{err}")))?;
    let object = uri.object.clone();
    let daemon_uri = crate::wire::uri::PyroUri {
        object: crate::daemon::pyro::DAEMON_OBJECT.to_owned(),
        ..uri
    };
    let mut proxy = crate::client::Proxy::new(daemon_uri);
    proxy.set_tls(state.client_tls.clone());
    proxy.set_timeout(Some(Duration::from_secs(5)));
    let answer = tokio::task::spawn_blocking(move || {
        proxy.call::<Value>(
            "get_metadata",
            vec![pyrolab_plugin_api::Value::from(object)],
        )
    })
    .await
    .map_err(|err| ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?
    .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("its daemon: {err}")))?;
    let list = |key: &str| answer.get(key).cloned().unwrap_or_else(|| json!([]));
    Ok(json(json!({
        "service": service.name,
        "nameserver": service.nameserver,
        "uri": service.uri,
        "methods": list("methods"),
        "oneway": list("oneway"),
        "attrs": list("attrs"),
    })))
}

async fn components(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &[])?;
    match snapshot(&state)?.lab {
        Some(lab) => Ok(json(json!(lab.components))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no manager runs here: this monitor watches name servers only".to_owned(),
        )),
    }
}

/// `since=`: a time or a duration ago.
fn since(params: &HashMap<String, String>) -> Result<Option<std::time::SystemTime>, ApiError> {
    params
        .get("since")
        .map(|text| logfile::parse_since(text).map_err(|m| ApiError::bad(format!("since: {m}"))))
        .transpose()
}

async fn events(Extract(state): Extract<Arc<State>>, Query(params): Params) -> Answer {
    only(&params, &["since"])?;
    let since = since(&params)?;
    let events: Vec<_> = state
        .events
        .read_unpoisoned()
        .iter()
        .filter(|event| {
            since.is_none_or(|since| {
                logfile::parse_time(&event.time).is_some_and(|time| time >= since)
            })
        })
        .cloned()
        .collect();
    Ok(json(json!(events)))
}

/// Another host's component's last lines, through its manager.
async fn remote_logs(state: &State, host: &str, params: &HashMap<String, String>) -> Answer {
    if params.contains_key("since") {
        return Err(ApiError::bad(
            "since works on this host's logs only; for another host's, give lines",
        ));
    }
    let component = params
        .get("component")
        .cloned()
        .ok_or_else(|| ApiError::bad("component is required"))?;
    let lines = match params.get("lines").map(|text| text.parse::<usize>()) {
        None => DEFAULT_LINES,
        Some(Ok(n)) if (1..=MAX_LINES).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad(format!(
                "lines must be a number from 1 to {MAX_LINES}"
            )));
        }
    };
    let kind = params
        .get("kind")
        .map(|k| pyrolab_plugin_api::Value::from(k.as_str()))
        .unwrap_or(pyrolab_plugin_api::Value::Null);
    let args = vec![
        pyrolab_plugin_api::Value::from(component.as_str()),
        pyrolab_plugin_api::Value::Int(lines as i64),
        kind,
    ];
    let lines: Vec<String> = ask_host(state, host, "logs", args).await?;
    Ok(json(
        json!({ "host": host, "component": component, "lines": lines, "last": null }),
    ))
}

async fn logs(
    Extract(state): Extract<Arc<State>>,
    axum::extract::ConnectInfo(caller): axum::extract::ConnectInfo<Caller>,
    Query(params): Params,
) -> Answer {
    only(&params, &["component", "kind", "since", "lines", "host"])?;
    caller
        .check(&state.rights.logs, "logs", || {
            "read the lab's logs".to_owned()
        })
        .map_err(|refusal| ApiError(StatusCode::FORBIDDEN, refusal))?;
    if let Some(host) = params.get("host").cloned() {
        return remote_logs(&state, &host, &params).await;
    }
    let data_dir = state.data_dir.clone().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this monitor has no data directory, so no logs".to_owned(),
        )
    })?;
    let component = params.get("component").cloned().ok_or_else(|| {
        ApiError::bad(
            "component is required: a name server's, daemon's or command's name, or manager",
        )
    })?;
    let kind = match params.get("kind").map(String::as_str) {
        None => None,
        Some("daemon") => Some(Kind::Daemon),
        Some("nameserver") => Some(Kind::Nameserver),
        Some("command") => Some(Kind::Command),
        Some(other) => {
            return Err(ApiError::bad(format!(
                "kind must be daemon, nameserver or command, not {other:?}"
            )));
        }
    };
    let since = since(&params)?;
    let lines = match params.get("lines").map(|text| text.parse::<usize>()) {
        None => DEFAULT_LINES,
        Some(Ok(n)) if (1..=MAX_LINES).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad(format!(
                "lines must be a number from 1 to {MAX_LINES}"
            )));
        }
    };
    let read = tokio::task::spawn_blocking(move || {
        let path = logfile::locate(&data_dir, &component, kind)?;
        let (lines, _) = logfile::read(
            &path,
            Selection {
                since,
                last: Some(lines),
            },
        )
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        Ok::<_, String>((component, lines))
    })
    .await
    .map_err(|err| ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let (component, lines) = read.map_err(|message| ApiError(StatusCode::NOT_FOUND, message))?;
    let last = lines
        .iter()
        .rev()
        .find_map(|line| line.split_ascii_whitespace().next())
        .filter(|stamp| logfile::parse_time(stamp).is_some())
        .map(str::to_owned);
    Ok(json(
        json!({ "component": component, "lines": lines, "last": last }),
    ))
}
