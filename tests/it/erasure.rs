//! Physical erasure, checked as an auditor would: every file under the data
//! directory read as raw bytes after EraseUser (and after a revocation
//! purge), looking for the person's id and for canary strings that only
//! their events carried. Other people's canaries and ids must still be
//! found, so the scan itself can fail.

use std::sync::Arc;

use context_engine::domain::Purpose;
use context_engine::pb;
use context_engine::pb::context_engine_client::ContextEngineClient;
use context_engine::pb::privacy_client::PrivacyClient;

use crate::common::{byte_scan, connect_to, free_port, grant_shop, ingest, spawn_server, wait_purged, TestServer};

/// A person's id and events whose untrusted fields (product name, search
/// string, URL, a custom property) carry canaries no one else's do.
struct Person {
    id: String,
    canaries: Vec<String>,
}

impl Person {
    fn new(name: &str) -> Self {
        Self { id: format!("person-{name}-{}", uuid::Uuid::new_v4().simple()), canaries: Vec::new() }
    }

    fn events(&mut self, source: &str, n: usize) -> Vec<pb::ActivityEvent> {
        (0..n)
            .map(|i| {
                let canary = format!("CANARY{}{}", i, uuid::Uuid::new_v4().simple());
                self.canaries.push(canary.clone());
                let id = format!("{}-{source}-{i}", self.id);
                let mut e = crate::common::ev(&self.id, source, &id, "Purchase", &canary);
                let data = e.custom_data.get_or_insert_with(Default::default);
                if i % 3 == 1 {
                    e.event_name = "Search".into();
                    data.search_string = format!("where to buy {canary}");
                }
                if i % 4 == 2 {
                    e.event_source_url = format!("https://shop.example/p/{canary}");
                }
                data.properties.insert("note".into(), format!("{canary} gift"));
                e
            })
            .collect()
    }

    fn needles(&self) -> Vec<String> {
        let mut all = self.canaries.clone();
        all.push(self.id.clone());
        all
    }
}

/// A chat request whose answer keeps lines the injection screen flags
/// (neutralised, not dropped): this test is about what erasure leaves, so
/// it must see every line a person's events can produce. (The canaries are
/// 32-hex-digit ids, which head v5 often reads as encoded payloads.)
fn chat(user: &str, query: &str, limit: u32) -> pb::GetContextRequest {
    pb::GetContextRequest {
        ranking: Some(pb::RankingOptions {
            injection_policy: pb::InjectionPolicy::Neutralize as i32,
            ..Default::default()
        }),
        ..crate::common::chat(user, query, limit)
    }
}

fn assert_gone(dir: &std::path::Path, gone: &Person, kept: &Person, when: &str) -> crate::common::Scan {
    let mut needles = gone.needles();
    needles.extend(kept.needles());
    let scan = byte_scan(dir, &needles);
    let left: Vec<_> =
        gone.needles().into_iter().filter(|n| scan.count(n) > 0).map(|n| (scan.found[&n].clone(), n)).collect();
    assert!(left.is_empty(), "{when}: {} of the erased person's strings still on disk: {left:?}", left.len());
    assert!(scan.count(&kept.id) > 0, "{when}: the scan finds the other person's id (else it proves nothing)");
    let kept_canaries = kept.canaries.iter().filter(|c| scan.count(c) > 0).count();
    assert!(kept_canaries > 0, "{when}: the scan finds the other person's canaries");
    println!(
        "{when}: scanned {} files, {} bytes; erased person's strings found: 0; other person's id {}x, canaries {}/{}",
        scan.files,
        scan.bytes,
        scan.count(&kept.id),
        kept_canaries,
        kept.canaries.len()
    );
    scan
}

#[tokio::test]
async fn erasure_leaves_no_byte_of_the_person_on_disk_and_nothing_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (mut alba, mut bruno) = (Person::new("alba"), Person::new("bruno"));
    for p in [&alba.id, &bruno.id] {
        server.grant(p, &["shop", "travel"], Purpose::ChatAssistant).await;
    }
    let mut client = server.client().await;
    let mut privacy = server.privacy(None).await;
    let mut events = alba.events("shop", 20);
    events.extend(alba.events("travel", 10));
    assert_eq!(ingest(&mut client, events).await.accepted, 30);
    assert_eq!(ingest(&mut client, bruno.events("shop", 10)).await.accepted, 10);
    for q in ["gift ideas", &alba.canaries[3], "what did I buy"] {
        let answer = client.get_context(chat(&alba.id, q, 5)).await.unwrap().into_inner();
        assert!(!answer.snippets.is_empty());
    }
    client.get_context(chat(&bruno.id, "gift ideas", 5)).await.unwrap();
    let mut export =
        privacy.export_user(pb::ExportUserRequest { user_id: alba.id.clone() }).await.unwrap().into_inner();
    while export.message().await.unwrap().is_some() {}
    let log = privacy.explain_access(pb::ExplainAccessRequest { user_id: alba.id.clone(), limit: 10 }).await.unwrap();
    assert_eq!(log.into_inner().records.len(), 3);
    let before = byte_scan(dir.path(), &alba.needles());
    assert!(before.count(&alba.id) > 0 && before.count(&alba.canaries[0]) > 0, "the canaries are on disk first");

    let started = std::time::Instant::now();
    let receipt = privacy.erase_user(pb::EraseUserRequest { user_id: alba.id.clone() }).await.unwrap().into_inner();
    assert_eq!((receipt.events_removed, receipt.consents_removed, receipt.access_records_removed), (30, 2, 3));
    assert_eq!((receipt.remaining_points, receipt.remaining_consents, receipt.remaining_access_records), (0, 0, 0));
    let status = wait_purged(&mut privacy, receipt.purge_ticket).await;
    println!("erase + purge took {:?} (purged_at {})", started.elapsed(), status.purged_at);
    assert_gone(dir.path(), &alba, &bruno, "after the purge");

    // After the erasure, a call for the person finds nothing and leaves no
    // record with their id.
    assert!(client.get_context(chat(&alba.id, "gift ideas", 5)).await.unwrap().into_inner().snippets.is_empty());
    assert_eq!(server.app.store.count_access(alba.id.clone()).await.unwrap(), 0);
    server.stop().await;
    assert_gone(dir.path(), &alba, &bruno, "after a clean shutdown");

    let server = TestServer::start(dir.path()).await;
    assert_eq!(server.app.store.count(context_engine::domain::Scope::whole_user(&alba.id)).await.unwrap(), 0);
    assert!(server.app.store.consents(vec![alba.id.clone()]).await.unwrap().is_empty());
    assert_eq!(server.app.store.count(context_engine::domain::Scope::whole_user(&bruno.id)).await.unwrap(), 10);
    server.stop().await;
    assert_gone(dir.path(), &alba, &bruno, "after a restart");
}

#[tokio::test]
async fn a_revocation_purge_removes_the_pairs_bytes_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (mut alba, mut alba_travel) = (Person::new("alba"), Person::new("unused"));
    alba_travel.id = alba.id.clone();
    server.grant(&alba.id, &["shop", "travel"], Purpose::ChatAssistant).await;
    let mut client = server.client().await;
    let mut privacy = server.privacy(None).await;
    assert_eq!(ingest(&mut client, alba.events("shop", 12)).await.accepted, 12);
    assert_eq!(ingest(&mut client, alba_travel.events("travel", 6)).await.accepted, 6);
    let change = privacy
        .set_consent(pb::SetConsentRequest {
            user_id: alba.id.clone(),
            source_id: "shop".into(),
            purpose: pb::Purpose::ChatAssistant as i32,
            state: pb::ConsentState::Revoked as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(change.purged_events, 12);
    assert!(change.purge_ticket > 0);
    wait_purged(&mut privacy, change.purge_ticket).await;
    let scan = byte_scan(dir.path(), &[alba.canaries.clone(), alba_travel.canaries.clone()].concat());
    let left: Vec<&String> = alba.canaries.iter().filter(|c| scan.count(c) > 0).collect();
    assert!(left.is_empty(), "the revoked pair's canaries are still on disk: {left:?}");
    let kept = alba_travel.canaries.iter().filter(|c| scan.count(c) > 0).count();
    assert!(kept > 0, "the other source's canaries are still found");
    println!(
        "revocation purge: scanned {} files, {} bytes; revoked pair's canaries found: 0; other source's {kept}/{}",
        scan.files,
        scan.bytes,
        alba_travel.canaries.len()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_erasure_racing_eight_callers_leaves_no_access_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(TestServer::start(dir.path()).await);
    let (mut alba, mut bruno) = (Person::new("alba"), Person::new("bruno"));
    server.grant(&alba.id, &["shop"], Purpose::ChatAssistant).await;
    server.grant(&bruno.id, &["shop"], Purpose::ChatAssistant).await;
    let mut client = server.client().await;
    ingest(&mut client, alba.events("shop", 20)).await;
    ingest(&mut client, bruno.events("shop", 5)).await;
    client.get_context(chat(&bruno.id, "gift", 3)).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for i in 0..8 {
        let (server, stop, user) = (server.clone(), stop.clone(), alba.id.clone());
        callers.push(tokio::spawn(async move {
            let mut client = server.client().await;
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let q = format!("gift idea {i} {calls}");
                client.get_context(chat(&user, &q, 3)).await.expect("every call answers");
                calls += 1;
            }
            calls
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let mut privacy = server.privacy(None).await;
    let receipt = privacy.erase_user(pb::EraseUserRequest { user_id: alba.id.clone() }).await.unwrap().into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut calls = 0;
    for caller in callers {
        calls += caller.await.expect("caller");
    }
    assert!(receipt.access_records_removed > 0, "calls ran before the erasure");
    let log = privacy.explain_access(pb::ExplainAccessRequest { user_id: alba.id.clone(), limit: 1000 }).await.unwrap();
    assert!(log.into_inner().records.is_empty(), "no access record written after the erasure began");
    assert_eq!(server.app.store.count_access(alba.id.clone()).await.unwrap(), 0);
    wait_purged(&mut privacy, receipt.purge_ticket).await;
    println!("{calls} racing calls; {} access records erased", receipt.access_records_removed);
    assert_gone(dir.path(), &alba, &bruno, "after a racing erasure");
    Arc::into_inner(server).expect("callers are done").stop().await;
}

#[tokio::test]
async fn a_kill_right_after_the_erasure_brings_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut process = spawn_server(dir.path(), addr, &[]);
    let channel = connect_to(&mut process, addr).await;
    let mut client =
        ContextEngineClient::with_interceptor(channel.clone(), context_engine::api::BearerKey::new(None).unwrap());
    let mut privacy =
        PrivacyClient::with_interceptor(channel.clone(), context_engine::api::BearerKey::new(None).unwrap());
    let (mut alba, mut bruno) = (Person::new("alba"), Person::new("bruno"));
    for p in [&alba.id, &bruno.id] {
        grant_shop(channel.clone(), p).await;
    }
    assert_eq!(ingest(&mut client, alba.events("shop", 25)).await.accepted, 25);
    assert_eq!(ingest(&mut client, bruno.events("shop", 5)).await.accepted, 5);
    client.get_context(chat(&alba.id, "gift", 3)).await.unwrap();
    let receipt = privacy.erase_user(pb::EraseUserRequest { user_id: alba.id.clone() }).await.unwrap().into_inner();
    assert_eq!(receipt.events_removed, 25);
    process.kill(); // SIGKILL, likely before the purge pass finished
    drop(process);

    let addr = free_port();
    let mut process = spawn_server(dir.path(), addr, &[]);
    let channel = connect_to(&mut process, addr).await;
    let mut client =
        ContextEngineClient::with_interceptor(channel.clone(), context_engine::api::BearerKey::new(None).unwrap());
    let mut privacy = PrivacyClient::with_interceptor(channel, context_engine::api::BearerKey::new(None).unwrap());
    // A store with an unfinished purge purges before it serves.
    let status = privacy
        .get_erasure_status(pb::GetErasureStatusRequest { purge_ticket: receipt.purge_ticket })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, pb::ErasureState::Purged as i32, "{status:?}");
    assert!(client.get_context(chat(&alba.id, "gift", 3)).await.unwrap().into_inner().snippets.is_empty());
    let consents = privacy.list_consents(pb::ListConsentsRequest { user_id: alba.id.clone() }).await.unwrap();
    assert!(consents.into_inner().grants.is_empty());
    let log = privacy.explain_access(pb::ExplainAccessRequest { user_id: alba.id.clone(), limit: 10 }).await.unwrap();
    assert!(log.into_inner().records.is_empty());
    process.kill();
    assert_gone(dir.path(), &alba, &bruno, "after kill -9 and a restart");
}
