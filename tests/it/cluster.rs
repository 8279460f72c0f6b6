//! Two engine replicas on a 3-peer Qdrant cluster on loopback (the shared
//! Qdrant 1.18.3 in distributed mode): collections with 3 shards and
//! replication factor 2, the consent ledger with 3 replicas and write
//! consistency 3. Shows (a) a revocation through replica A is respected by
//! every GetContext through replica B that starts after A answered; (b)
//! with one peer killed, GetContext keeps working and a ledger write fails
//! closed (UNAVAILABLE) instead of reaching only some replicas; (c) after
//! the peer comes back and the cluster heals, nothing acknowledged is lost.
//!
//! The cluster is started from `../shared/tools/qdrant/start.sh` on free
//! loopback ports (the test skips, with a line saying so, where it is
//! absent); the whole test takes ~25 s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use context_engine::domain::{ActivityEvent, ConsentState, CustomData, Purpose};
use context_engine::engine::{ContextRequest, Engine, EngineConfig, EngineError};
use context_engine::store::{QdrantOptions, QdrantStore, StoreError, StoreManifest};

use crate::common::{free_port, model_dir, now, shared_dir};

struct Peer {
    dir: PathBuf,
    http: u16,
    grpc: u16,
    p2p: u16,
    pid: Option<u32>,
}

impl Peer {
    fn new(root: &Path, n: usize) -> Self {
        Self {
            dir: root.join(format!("peer{n}")),
            http: free_port().port(),
            grpc: free_port().port(),
            p2p: free_port().port(),
            pid: None,
        }
    }

    fn start(&mut self, start_sh: &Path, bootstrap: Option<u16>) {
        let mut command = Command::new("bash");
        command
            .arg(start_sh)
            .arg(&self.dir)
            .arg(self.http.to_string())
            .arg(self.grpc.to_string())
            .args(["--uri", &format!("http://127.0.0.1:{}", self.p2p)])
            .env("QDRANT__CLUSTER__ENABLED", "true")
            .env("QDRANT__CLUSTER__P2P__PORT", self.p2p.to_string());
        if let Some(port) = bootstrap {
            command.args(["--bootstrap", &format!("http://127.0.0.1:{port}")]);
        }
        let out = command.output().expect("start.sh runs");
        assert!(out.status.success(), "peer did not start: {}", String::from_utf8_lossy(&out.stderr));
        self.pid = Some(String::from_utf8_lossy(&out.stdout).trim().parse().expect("start.sh prints the pid"));
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET` on a peer's REST API, as JSON.
fn rest(peer: &Peer, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "5", &format!("http://127.0.0.1:{}{path}", peer.http)])
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `POST` of `body` on a peer's REST API, as JSON.
fn rest_post(peer: &Peer, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", "-X", "POST", "-H", "content-type: application/json", "-d"])
        .arg(body.to_string())
        .arg(format!("http://127.0.0.1:{}{path}", peer.http))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Whether every replica of every shard of `collection` is active.
fn healed(peer: &Peer, collection: &str) -> bool {
    let info = rest(peer, &format!("/collections/{collection}/cluster"));
    let result = &info["result"];
    let local = result["local_shards"].as_array().cloned().unwrap_or_default();
    let remote = result["remote_shards"].as_array().cloned().unwrap_or_default();
    let all: Vec<_> = local.iter().chain(&remote).collect();
    !all.is_empty() && all.iter().all(|s| s["state"] == "Active")
}

fn event(user: &str, id: &str) -> ActivityEvent {
    ActivityEvent {
        event_id: id.into(),
        user_id: user.into(),
        source_id: "shop".into(),
        event_name: "Purchase".into(),
        event_time: now() - 3600,
        action_source: "website".into(),
        custom_data: CustomData { content_name: format!("trail running shoes {id}"), ..Default::default() },
        ..Default::default()
    }
}

fn ask(user: &str) -> ContextRequest {
    ContextRequest {
        user_id: user.into(),
        purpose: Some(Purpose::ChatAssistant),
        caller: "cluster-test".into(),
        query: "trail running shoes".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_a_three_peer_cluster_agree_on_consent_and_survive_a_peer() {
    let Some(shared) = shared_dir("tools/qdrant/start.sh") else { return };
    let start_sh = shared.join("tools/qdrant/start.sh");
    let root = tempfile::tempdir().unwrap();
    let mut peers: Vec<Peer> = (1..=3).map(|n| Peer::new(root.path(), n)).collect();
    let first_p2p = peers[0].p2p;
    peers[0].start(&start_sh, None);
    peers[1].start(&start_sh, Some(first_p2p));
    peers[2].start(&start_sh, Some(first_p2p));
    let deadline = Instant::now() + Duration::from_secs(60);
    while rest(&peers[0], "/cluster")["result"]["peers"].as_object().map_or(0, |p| p.len()) < 3 {
        assert!(Instant::now() < deadline, "the three peers did not form a cluster");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let manifest = StoreManifest::current("all-MiniLM-L6-v2", 384, context_engine::store::DEFAULT_BM25_AVG_LEN);
    let prefix = format!("ce_cluster_{}", uuid::Uuid::new_v4().simple());
    let options = |peer: &Peer| {
        let mut o = QdrantOptions::new(peer.url());
        o.collection_prefix = prefix.clone();
        o.shard_number = Some(3);
        o.replication_factor = Some(2);
        o.consent_replication_factor = Some(3);
        o.timeout = Duration::from_secs(5);
        o.retries = 1;
        o
    };
    let embedder = context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), Default::default()).unwrap();
    let counter: Arc<dyn context_engine::rank::CountTokens> =
        Arc::new(context_engine::tokens::HfTokenCounter::load(&model_dir().join("tokenizer.json")).unwrap());
    let replica =
        |store: QdrantStore| Engine::new(handle.clone(), Arc::new(store), counter.clone(), EngineConfig::default());
    let a = replica(QdrantStore::connect(&options(&peers[0]), &manifest).await.expect("replica A connects"));
    let b = replica(QdrantStore::connect(&options(&peers[1]), &manifest).await.expect("replica B connects"));

    // (a) Revocations through A, context through B.
    let (user, rounds) = ("cluster-ann", 30);
    let (mut leaks, mut seen_while_granted) = (0, 0);
    for round in 0..rounds {
        a.set_consent(user, "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now()).await.unwrap();
        let out = a.ingest(vec![event(user, &format!("r{round}"))], now()).await.unwrap();
        assert!(out[0].is_accepted(), "{out:?}");
        if !b.get_context(ask(user), now()).await.unwrap().snippets.is_empty() {
            seen_while_granted += 1;
        }
        a.set_consent(user, "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Revoked), now()).await.unwrap();
        let answer = b.get_context(ask(user), now()).await.unwrap();
        leaks += answer.snippets.len();
    }
    println!("cluster (a): {rounds} revoke rounds through A, {leaks} snippets leaked through B, seen while granted {seen_while_granted}");
    assert_eq!(leaks, 0, "a revoked source reached a GetContext through the other replica");
    assert!(seen_while_granted > rounds / 2, "B saw the granted events (the check can fail)");

    // Data that must survive the peer's loss.
    a.set_consent("cluster-bo", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now())
        .await
        .unwrap();
    let kept: Vec<ActivityEvent> = (0..20).map(|i| event("cluster-bo", &format!("k{i}"))).collect();
    assert!(a.ingest(kept, now()).await.unwrap().iter().all(|o| o.is_accepted()));

    // (b) One peer down.
    peers[2].kill();
    let mut answered = 0;
    for _ in 0..10 {
        if !b.get_context(ask("cluster-bo"), now()).await.expect("GetContext with a peer down").snippets.is_empty() {
            answered += 1;
        }
    }
    assert_eq!(answered, 10, "every call found bo's events with a peer down");
    let write =
        a.set_consent("cluster-bo", "games", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now()).await;
    println!("cluster (b): ledger write with a peer down: {write:?}");
    // Qdrant either refuses the write (the dead peer still counts as a
    // replica: write consistency 3 cannot be met) or, once it has marked
    // that replica dead, applies it to the live ones; a dead replica serves
    // nothing until it has recovered the shard, so no replica that lacks an
    // acknowledged write can answer a read. Never anything else.
    match &write {
        Ok(change) => assert_eq!(change.grant.state, ConsentState::Granted),
        Err(EngineError::Store(StoreError::Unavailable { .. })) => {}
        other => panic!("a ledger write with a peer down must succeed or fail closed with UNAVAILABLE: {other:?}"),
    }
    let more: Vec<ActivityEvent> = (0..5).map(|i| event("cluster-bo", &format!("d{i}"))).collect();
    let during = a.ingest(more, now()).await;
    let acked_during = during.map(|o| o.iter().filter(|o| o.is_accepted()).count()).unwrap_or(0);

    // (c) The peer comes back; the cluster heals; nothing acknowledged is lost.
    peers[2].start(&start_sh, None);
    let deadline = Instant::now() + Duration::from_secs(90);
    let collections = ["activity", "consent", "access"].map(|c| format!("{prefix}_{c}"));
    while !collections.iter().all(|c| healed(&peers[0], c)) {
        assert!(Instant::now() < deadline, "the cluster did not heal in 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    a.set_consent("cluster-bo", "games", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now())
        .await
        .expect("ledger writes work again");
    let grants = b.list_consents("cluster-bo").await.unwrap();
    assert_eq!(grants.len(), 2, "{grants:?}");
    // Every replica of the ledger holds both entries (consistency=all returns
    // only points present on all replicas): a write that failed closed during
    // the loss may have reached only the live replicas, and the engine's
    // rewrite of the unchanged entry above completes it on the third.
    let deadline = Instant::now() + Duration::from_secs(20);
    let on_all = loop {
        let all = rest_post(
            &peers[2],
            &format!("/collections/{prefix}_consent/points/scroll?consistency=all"),
            &serde_json::json!({"filter": {"must": [{"key": "user_id", "match": {"value": "cluster-bo"}}]}, "limit": 10, "with_payload": true}),
        );
        let n = all["result"]["points"].as_array().map_or(0, |p| p.len());
        if n == 2 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("cluster (c): ledger entries present on every replica (consistency=all): {on_all} of 2");
    assert_eq!(on_all, 2, "both ledger entries are on every replica after healing");
    let mut from = None;
    let mut stored = 0;
    loop {
        let page = b.export_page("cluster-bo", from, 1000).await.unwrap();
        stored += page.records.len();
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    println!(
        "cluster (c): healed; bo has {stored} events (20 before the loss + {acked_during} acknowledged during it)"
    );
    assert_eq!(stored, 20 + acked_during, "every acknowledged event is stored after healing");
}
