//! Shared test fixtures: model and reference paths, a server on an ephemeral
//! port, and event builders.

use std::path::PathBuf;
use std::sync::Arc;

use context_engine::app::{self, App};
use context_engine::embed::candle::DeviceChoice;
use context_engine::embed::BatchConfig;
use context_engine::engine::Engine;
use context_engine::pb;
use context_engine::pb::context_engine_client::ContextEngineClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("CONTEXT_ENGINE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2")
        });
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
        println!(
            "skipped: {what} not found under {}; set CONTEXT_ENGINE_SHARED_DIR (see README, \"Test data\")",
            dir.display()
        );
        None
    }
}

pub fn build_app(data_dir: &std::path::Path) -> App {
    app::build(
        &model_dir(),
        DeviceChoice::Cpu,
        data_dir,
        BatchConfig::default(),
    )
    .expect("engine builds")
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
        let app = tokio::task::spawn_blocking(move || build_app(&data_dir))
            .await
            .unwrap();
        Self::serve(app).await
    }

    pub async fn serve(app: App) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let engine: Arc<Engine> = app.engine.clone();
        let task = tokio::spawn(async move {
            context_engine::api::serve(listener, engine, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            addr,
            app,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> ContextEngineClient<Channel> {
        ContextEngineClient::connect(format!("http://{}", self.addr))
            .await
            .expect("client connects")
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
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
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
        custom_data: Some(pb::CustomData {
            content_name: content.into(),
            ..Default::default()
        }),
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

pub async fn ingest(
    client: &mut ContextEngineClient<Channel>,
    events: Vec<pb::ActivityEvent>,
) -> pb::IngestResponse {
    client
        .ingest(pb::IngestRequest { events })
        .await
        .expect("ingest succeeds")
        .into_inner()
}

pub async fn context(
    client: &mut ContextEngineClient<Channel>,
    user: &str,
    query: &str,
    limit: u32,
) -> Vec<pb::Snippet> {
    client
        .get_context(pb::GetContextRequest {
            user_id: user.into(),
            query: query.into(),
            limit,
            ..Default::default()
        })
        .await
        .expect("get_context succeeds")
        .into_inner()
        .snippets
}
