//! Shared test fixtures: model and reference paths, a server on an ephemeral
//! port, and event builders.

use std::path::PathBuf;
use std::sync::Arc;

use context_engine::api::{ApiKeys, BearerKey};
use context_engine::app::{self, App, AppConfig};
use context_engine::domain::{ConsentState, Purpose};
use context_engine::embed::DeviceChoice;
use context_engine::engine::Engine;
use context_engine::pb;
use context_engine::pb::context_engine_client::ContextEngineClient;
use context_engine::pb::privacy_client::PrivacyClient;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = ContextEngineClient<InterceptedService<Channel, BearerKey>>;

pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("CONTEXT_ENGINE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "model not found at {}: run models/fetch.sh (scripts/test.sh does) or set CONTEXT_ENGINE_MODEL_DIR",
        dir.display()
    );
    dir
}

/// `../shared` next to the repository, or `$CONTEXT_ENGINE_SHARED_DIR`.
/// `None` (with a skip line printed) when it is absent, as in a user's clone.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CONTEXT_ENGINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join(what).exists() {
        Some(dir)
    } else {
        skip(&format!(
            "{what} not found under {}; set CONTEXT_ENGINE_SHARED_DIR (see README, \"Test data\")",
            dir.display()
        ));
        None
    }
}

/// Prints `skipped: <why>` where CI shows it: straight to stderr, past the
/// test harness's output capture (which only catches `print!`/`eprint!`).
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The engine configuration tests run with (CPU, default ranking).
pub fn app_config(data_dir: &std::path::Path) -> AppConfig {
    let mut config = AppConfig::new(model_dir(), data_dir);
    config.model.device = DeviceChoice::Cpu;
    config
}

pub fn build_app(data_dir: &std::path::Path) -> App {
    app::build(&app_config(data_dir)).expect("engine builds")
}

/// A server on 127.0.0.1:0 over a fresh engine; stops when dropped.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(data_dir: &std::path::Path) -> Self {
        let data_dir = data_dir.to_path_buf();
        let app = tokio::task::spawn_blocking(move || build_app(&data_dir)).await.unwrap();
        Self::serve(app).await
    }

    pub async fn serve(app: App) -> Self {
        Self::serve_with_keys(app, ApiKeys::default()).await
    }

    pub async fn start_with_keys(data_dir: &std::path::Path, keys: ApiKeys) -> Self {
        let data_dir = data_dir.to_path_buf();
        let app = tokio::task::spawn_blocking(move || build_app(&data_dir)).await.unwrap();
        Self::serve_with_keys(app, keys).await
    }

    pub async fn serve_with_keys(app: App, keys: ApiKeys) -> Self {
        Self::serve_with_options(app, keys, Default::default()).await
    }

    pub async fn serve_with_options(app: App, keys: ApiKeys, options: context_engine::api::ServeOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let engine: Arc<Engine> = app.engine.clone();
        let task = tokio::spawn(async move {
            context_engine::api::serve_with(listener, engine, keys, options, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self { addr, app, shutdown: Some(tx), task: Some(task) }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("client connects")
    }

    pub async fn client(&self) -> Client {
        self.client_with_key(None).await
    }

    pub async fn client_with_key(&self, key: Option<&str>) -> Client {
        ContextEngineClient::with_interceptor(self.channel().await, BearerKey::new(key).unwrap())
    }

    pub async fn privacy(&self, key: Option<&str>) -> PrivacyClient<InterceptedService<Channel, BearerKey>> {
        PrivacyClient::with_interceptor(self.channel().await, BearerKey::new(key).unwrap())
    }

    /// Grants `purpose` for each source directly through the engine.
    pub async fn grant(&self, user: &str, sources: &[&str], purpose: Purpose) {
        for source in sources {
            self.app
                .engine
                .set_consent(user, source, Some(purpose), Some(ConsentState::Granted), now())
                .await
                .expect("grant");
        }
    }

    /// Graceful stop: drain, flush, release the store's files.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.app.engine.flush().await.unwrap();
        let store = self.app.store.clone();
        tokio::task::spawn_blocking(move || store.close()).await.unwrap();
    }
}

/// A test that fails before `stop` still releases the store while its
/// temporary directory exists (an Edge shard dropped later, after the
/// directory is gone, panics while flushing).
impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.app.store.close();
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Builder for a valid event; tweak fields after.
pub fn ev(user: &str, source: &str, id: &str, name: &str, content: &str) -> pb::ActivityEvent {
    pb::ActivityEvent {
        event_id: id.into(),
        user_id: user.into(),
        source_id: source.into(),
        source_name: String::new(),
        event_name: name.into(),
        event_time: now() - 86_400,
        action_source: "website".into(),
        custom_data: Some(pb::CustomData { content_name: content.into(), ..Default::default() }),
        ..Default::default()
    }
}

pub fn with_props(mut e: pb::ActivityEvent, props: &[(&str, &str)]) -> pb::ActivityEvent {
    let data = e.custom_data.get_or_insert_with(Default::default);
    for (k, v) in props {
        data.properties.insert(k.to_string(), v.to_string());
    }
    e
}

pub async fn ingest(client: &mut Client, events: Vec<pb::ActivityEvent>) -> pb::IngestResponse {
    client.ingest(pb::IngestRequest { events }).await.expect("ingest succeeds").into_inner()
}

pub fn chat(user: &str, query: &str, limit: u32) -> pb::GetContextRequest {
    pb::GetContextRequest {
        user_id: user.into(),
        query: query.into(),
        max_snippets: limit,
        purpose: pb::Purpose::ChatAssistant as i32,
        ..Default::default()
    }
}

pub async fn context(client: &mut Client, user: &str, query: &str, limit: u32) -> Vec<pb::Snippet> {
    client.get_context(chat(user, query, limit)).await.expect("get_context succeeds").into_inner().snippets
}

/// A free loopback port (for servers started as child processes).
pub fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Two different free ports (both held while the second is chosen: two
/// calls of [`free_port`] may return the same one).
pub fn free_ports() -> (std::net::SocketAddr, std::net::SocketAddr) {
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (first.local_addr().unwrap(), second.local_addr().unwrap())
}

/// The `context-engine serve` binary as a child process, killed when dropped
/// (a failing test leaves none behind).
pub struct ServerProcess(pub std::process::Child);

impl ServerProcess {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends SIGTERM.
    pub fn signal_term(&self) {
        let pid = self.0.id().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success());
    }

    /// Waits (at most a minute) for the exit status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(exit) = self.0.try_wait().unwrap() {
                return exit;
            }
            assert!(std::time::Instant::now() < deadline, "server did not exit after SIGTERM");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the server binary on `addr` over `data` (log level warn, output
/// discarded); `extra` goes to `serve`.
pub fn spawn_server(data: &std::path::Path, addr: std::net::SocketAddr, extra: &[&str]) -> ServerProcess {
    spawn_server_with(data, addr, extra, Some("warn"), std::process::Stdio::null())
}

/// As [`spawn_server`], with the log filter (`None`: the binary's default)
/// and where its stderr goes.
pub fn spawn_server_with(
    data: &std::path::Path,
    addr: std::net::SocketAddr,
    extra: &[&str],
    log: Option<&str>,
    stderr: std::process::Stdio,
) -> ServerProcess {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_context-engine"));
    command
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .arg("--model-dir")
        .arg(model_dir())
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    match log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    ServerProcess(command.spawn().expect("server starts"))
}

/// A channel to `process`, a server that may still be starting on `addr`:
/// waits up to two minutes (loading the model on a busy 2-core machine),
/// and fails at once, with the exit status, if the process has ended (a
/// port taken meanwhile, a store it refused) instead of waiting it out.
pub async fn connect_to(process: &mut ServerProcess, addr: std::net::SocketAddr) -> Channel {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await {
            return channel;
        }
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!("the server for {addr} exited ({status}) before it served");
        }
        assert!(std::time::Instant::now() < deadline, "server did not come up on {addr} in two minutes");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Grants `user` chat-assistant use of source `shop` over gRPC.
pub async fn grant_shop(channel: Channel, user: &str) {
    PrivacyClient::with_interceptor(channel, BearerKey::new(None).unwrap())
        .set_consent(pb::SetConsentRequest {
            user_id: user.into(),
            source_id: "shop".into(),
            purpose: pb::Purpose::ChatAssistant as i32,
            state: pb::ConsentState::Granted as i32,
        })
        .await
        .expect("grant");
}

/// An access record of `user` at `at` listing `events` events of source `shop`.
pub fn access_record(user: &str, at: i64, events: usize) -> context_engine::domain::AccessRecord {
    use context_engine::domain::{AccessRecord, AccessedEvent, Purpose};
    AccessRecord {
        access_id: uuid::Uuid::new_v4().to_string(),
        user_id: user.into(),
        caller: "orchestrator".into(),
        purpose: Purpose::ChatAssistant,
        at,
        events: (0..events)
            .map(|i| AccessedEvent { source_id: "shop".into(), event_id: format!("event-{i}"), consent_version: 1 })
            .collect(),
    }
}

pub type Privacy = PrivacyClient<InterceptedService<Channel, BearerKey>>;

/// Polls GetErasureStatus until the ticket is PURGED (at most the promised
/// 60 s plus a margin for a loaded test machine).
pub async fn wait_purged(privacy: &mut Privacy, ticket: u64) -> pb::ErasureStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let status = privacy
            .get_erasure_status(pb::GetErasureStatusRequest { purge_ticket: ticket })
            .await
            .expect("erasure status")
            .into_inner();
        if status.state == pb::ErasureState::Purged as i32 {
            return status;
        }
        assert_eq!(status.state, pb::ErasureState::LogicallyErased as i32, "{status:?}");
        assert!(std::time::Instant::now() < deadline, "purge {ticket} not done in 90 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What a raw byte scan of a directory found.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: usize,
    pub bytes: u64,
    /// Occurrences per needle, and the files each was found in.
    pub found: std::collections::BTreeMap<String, (usize, Vec<String>)>,
}

impl Scan {
    pub fn count(&self, needle: &str) -> usize {
        self.found.get(needle).map_or(0, |(n, _)| *n)
    }
}

/// Reads every regular file under `dir` as raw bytes (following no
/// symlinks) and counts each needle's occurrences.
pub fn byte_scan(dir: &std::path::Path, needles: &[String]) -> Scan {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), out);
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut scan = Scan { files: files.len(), ..Default::default() };
    for path in files {
        // A file may vanish between listing and reading (a segment being
        // replaced): then it holds nothing any more.
        let Ok(bytes) = std::fs::read(&path) else { continue };
        scan.bytes += bytes.len() as u64;
        for needle in needles {
            let n = bytes.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count();
            if n > 0 {
                let entry = scan.found.entry(needle.clone()).or_default();
                entry.0 += n;
                entry.1.push(path.strip_prefix(dir).unwrap_or(&path).display().to_string());
            }
        }
    }
    scan
}
