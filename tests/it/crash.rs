//! Durability under `kill -9`: the server runs as a child process, a client
//! ingests events with unique ids and records each id only after its OK, the
//! server is SIGKILLed at random moments and restarted, and at the end every
//! acknowledged event is in the store, once.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use context_engine::api::BearerKey;
use context_engine::domain::Scope;
use context_engine::pb;
use context_engine::pb::context_engine_client::ContextEngineClient;
use context_engine::store::{AccessLog, EdgeOptions, EdgeStore, EventStore, DEFAULT_BM25_AVG_LEN};
use rand::{Rng, SeedableRng};

use crate::common::{connect_to, ev, free_port, grant_shop, spawn_server, Client};

/// Opens the stopped server's store directly.
fn reopen(data: &Path) -> Result<EdgeStore, context_engine::store::StoreError> {
    EdgeStore::open(&EdgeOptions {
        data_dir: data.to_path_buf(),
        dimension: 384,
        model_id: "all-MiniLM-L6-v2".into(),
        bm25_avg_len: DEFAULT_BM25_AVG_LEN,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_port();
    let mut child = spawn_server(&data, addr, &[]);
    let channel = connect_to(&mut child, addr).await;
    grant_shop(channel, "crash-user").await;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0usize;
    let kills = 4;
    for round in 0..=kills {
        let channel = connect_to(&mut child, addr).await;
        for lane in 0..4 {
            crate::common::grant_shop(channel.clone(), &format!("reader-{round}-{lane}")).await;
        }
        let mut client: Client = ContextEngineClient::with_interceptor(channel, BearerKey::new(None).unwrap());
        // Ingest in small batches until the kill lands (the last round ends
        // with a clean stop instead).
        let kill_after = Duration::from_millis(rng.random_range(300..1500));
        let started = Instant::now();
        let ingest = async {
            loop {
                let batch: Vec<pb::ActivityEvent> = (0..rng.random_range(1..6))
                    .map(|_| {
                        next += 1;
                        ev("crash-user", "shop", &format!("e{next}"), "Purchase", &format!("Item number {next}"))
                    })
                    .collect();
                let ids: Vec<String> = batch.iter().map(|e| e.event_id.clone()).collect();
                match client.ingest(pb::IngestRequest { events: batch }).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        assert_eq!(r.accepted as usize, ids.len(), "every event of the batch is valid");
                        acked.extend(ids);
                    }
                    // The connection died with the server: unacknowledged.
                    Err(_) => return,
                }
                if round == kills && started.elapsed() > kill_after {
                    return;
                }
            }
        };
        if round < kills {
            let killer = async {
                tokio::time::sleep(kill_after).await;
                // SIGKILL: no shutdown hook, no flush.
                child.kill();
            };
            tokio::join!(ingest, killer);
            child = spawn_server(&data, addr, &[]);
        } else {
            ingest.await;
            // SIGKILL at the end too: nothing may depend on a clean stop.
            child.kill();
        }
    }
    assert!(acked.len() > 20, "the test acknowledged only {} events", acked.len());

    let store = reopen(&data).expect("store reopens after kill -9");
    let mut stored = Vec::new();
    let mut from = None;
    loop {
        let page = store.scroll(Scope::whole_user("crash-user"), from, 500).await.unwrap();
        stored.extend(page.records.into_iter().map(|(_, r)| r.event.event_id));
        match page.next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    store.close();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no event is stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "kill -9 durability: {kills} kills + 1 final kill, {} acknowledged, all {} stored ({} unacknowledged also landed)",
        acked.len(),
        acked.len(),
        stored.len() - acked.len()
    );
}

/// SIGTERM: a call in flight when the signal arrives still completes, the
/// process exits 0, and the store holds what was acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_calls_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_port();
    let mut server = spawn_server(&data, addr, &[]);
    let channel = connect_to(&mut server, addr).await;
    grant_shop(channel.clone(), "term-user").await;
    let mut client: Client = ContextEngineClient::with_interceptor(channel, BearerKey::new(None).unwrap());
    // Several hundred milliseconds of embedding: in flight when SIGTERM lands.
    let events: Vec<pb::ActivityEvent> =
        (0..400).map(|i| ev("term-user", "shop", &format!("t{i}"), "Purchase", &format!("Tent model {i}"))).collect();
    let call = tokio::spawn(async move { client.ingest(pb::IngestRequest { events }).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.signal_term();
    let answer = call.await.unwrap().expect("the call in flight completes after SIGTERM").into_inner();
    assert_eq!(answer.accepted, 400);
    let exit = server.wait_exit().await;
    assert!(exit.success(), "exit status {exit:?}");
    let store = reopen(&data).expect("store reopens");
    let n = store.count(Scope::whole_user("term-user")).await.unwrap();
    store.close();
    assert_eq!(n, 400);
}

/// Every answered GetContext has its access record after `kill -9`. The
/// record is made durable by the access journal, not by a shard flush, so
/// this is the test that catches a journal that is not replayed (a missing
/// `fdatasync` needs a machine crash to show, which kill -9 is not). Each
/// lane of each round asks for its own (consenting) person, so the records
/// of a person count that lane's calls: at least every acknowledged one,
/// and at most one more (a call logged when the kill cut off its answer).
/// People without any ledger entry are not logged, so the test grants.
#[tokio::test(flavor = "multi_thread")]
async fn answered_get_context_calls_keep_their_access_records_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_port();
    let mut child = spawn_server(&data, addr, &[]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0usize;
    let kills = 3;
    for round in 0..=kills {
        let channel = connect_to(&mut child, addr).await;
        for lane in 0..4 {
            crate::common::grant_shop(channel.clone(), &format!("reader-{round}-{lane}")).await;
        }
        let kill_after = Duration::from_millis(rng.random_range(300..1200));
        let started = Instant::now();
        // Four concurrent callers, so that journal syncs are shared.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        let callers: Vec<_> = (0..4)
            .map(|lane| {
                let mut client: Client =
                    ContextEngineClient::with_interceptor(channel.clone(), BearerKey::new(None).unwrap());
                let sender = sender.clone();
                let first = next + lane;
                tokio::spawn(async move {
                    let mut n = first;
                    let user = format!("reader-{round}-{lane}");
                    loop {
                        match client.get_context(crate::common::chat(&user, "camping gear", 5)).await {
                            Ok(_) => sender.send(user.clone()).unwrap(),
                            Err(_) => return n,
                        }
                        n += 4;
                        if round == kills && started.elapsed() > kill_after {
                            return n;
                        }
                    }
                })
            })
            .collect();
        drop(sender);
        if round < kills {
            tokio::time::sleep(kill_after).await;
            child.kill();
        }
        let mut highest = next;
        for caller in callers {
            highest = highest.max(caller.await.unwrap());
        }
        while let Some(user) = receiver.recv().await {
            acked.push(user);
        }
        next = highest + 4;
        if round < kills {
            child = spawn_server(&data, addr, &[]);
        } else {
            child.kill();
        }
    }
    assert!(acked.len() > 100, "the test acknowledged only {} calls", acked.len());

    let store = reopen(&data).expect("store reopens after kill -9");
    let mut per_user: std::collections::BTreeMap<String, usize> = Default::default();
    for user in &acked {
        *per_user.entry(user.clone()).or_default() += 1;
    }
    let mut missing = Vec::new();
    for (user, answered) in &per_user {
        let logged = store.access_log(user.clone(), 10_000_000).await.unwrap().len();
        assert!(logged <= answered + 1, "{user}: {logged} access records for {answered} answered calls");
        if logged < *answered {
            missing.push((user.clone(), answered - logged));
        }
    }
    store.close();
    assert!(missing.is_empty(), "answered calls lost their access records: {missing:?}");
    println!("kill -9 access log: {kills} kills + 1 final kill, {} answered calls, every one logged", acked.len());
}
