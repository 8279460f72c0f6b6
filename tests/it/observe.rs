//! Observability of the real binary: the Prometheus endpoint counts calls by
//! RPC and code, ingest outcomes by reason, consent denials, embedding
//! batches and store latency; every response carries a request id; and at
//! the default log level nothing personal (user ids, activity text) reaches
//! the log.

use std::collections::HashMap;
use std::net::SocketAddr;

use context_engine::api::BearerKey;
use context_engine::pb;
use context_engine::pb::context_engine_client::ContextEngineClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{chat, connect_to, ev, free_ports, grant_shop, spawn_server_with, Client};

/// `GET /metrics` over plain HTTP/1.0; series name with labels → value.
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("metrics endpoint listens");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(series, value)| (series.to_string(), value.parse().unwrap())))
        .collect()
}

fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    metrics.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_request_ids_and_no_personal_data_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (addr, metrics_addr) = free_ports();
    let metrics_flag = metrics_addr.to_string();
    // The binary's default log filter (no RUST_LOG), as an operator runs it.
    let mut server = spawn_server_with(&data, addr, &["--metrics-listen", &metrics_flag], None, log.into());
    let channel = connect_to(&mut server, addr).await;

    let user = "obs-user-5831";
    let secret = "Quillfeather umbrella";
    grant_shop(channel.clone(), user).await;
    let mut client: Client = ContextEngineClient::with_interceptor(channel, BearerKey::new(None).unwrap());

    // Two accepted, one invalid (no event_name), one without consent.
    let mut invalid = ev(user, "shop", "o3", "Purchase", "Widget");
    invalid.event_name.clear();
    let events = vec![
        ev(user, "shop", "o1", "Purchase", secret),
        ev(user, "shop", "o2", "ViewContent", "Lantern with a brass handle"),
        invalid,
        ev("obs-nobody-9920", "shop", "o4", "Purchase", "Nothing allowed"),
    ];
    let answer = client.ingest(pb::IngestRequest { events }).await.unwrap().into_inner();
    assert_eq!((answer.accepted, answer.rejected), (2, 2));

    // A client-chosen request id comes back; a fresh one is made otherwise.
    let mut request = tonic::Request::new(chat(user, "what umbrella did I buy?", 3));
    request.metadata_mut().insert("x-request-id", "turn-77.a".parse().unwrap());
    let response = client.get_context(request).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "turn-77.a");
    assert!(response.get_ref().snippets.iter().any(|s| s.text.contains("Quillfeather")));
    let response = client.get_context(chat(user, "umbrella", 3)).await.unwrap();
    let generated = response.metadata().get("x-request-id").expect("a request id").to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    // Errors carry one too.
    let error = client.get_context(chat(user, "", 3)).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.metadata().get("x-request-id").is_some());
    // A person who permitted nothing gets an empty answer and a denial count.
    let empty = client.get_context(chat("obs-nobody-9920", "umbrella", 3)).await.unwrap().into_inner();
    assert!(empty.snippets.is_empty());

    let m = scrape(metrics_addr).await;
    assert_eq!(value(&m, r#"context_engine_rpc_requests_total{code="OK",rpc="Ingest"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_rpc_requests_total{code="OK",rpc="GetContext"}"#), 3.0);
    assert_eq!(value(&m, r#"context_engine_rpc_requests_total{code="INVALID_ARGUMENT",rpc="GetContext"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_rpc_requests_total{code="OK",rpc="SetConsent"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_rpc_duration_seconds_count{code="OK",rpc="GetContext"}"#), 3.0);
    assert_eq!(value(&m, r#"context_engine_ingest_events_total{outcome="accepted",reason="none"}"#), 2.0);
    assert_eq!(value(&m, r#"context_engine_ingest_events_total{outcome="rejected",reason="invalid_field"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_ingest_events_total{outcome="rejected",reason="no_consent"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_consent_denials_total{stage="ingest"}"#), 1.0);
    assert_eq!(value(&m, r#"context_engine_consent_denials_total{stage="get_context"}"#), 1.0);
    assert!(value(&m, r#"context_engine_snippets_total{fate="returned"}"#) >= 1.0);
    assert_eq!(value(&m, "context_engine_consent_post_check_removed_total"), 0.0);
    // The ingest's forward pass and both distinct queries (the repeated
    // person+text is served from the cache on neither: texts differ).
    assert!(value(&m, "context_engine_embed_batch_texts_count") >= 3.0);
    assert!(value(&m, "context_engine_embed_batch_texts_sum") >= 4.0);
    assert_eq!(value(&m, r#"context_engine_query_cache_total{result="miss"}"#), 2.0);
    assert!(
        value(&m, r#"context_engine_store_operation_duration_seconds_count{operation="search",outcome="ok"}"#) >= 2.0
    );
    assert!(
        value(&m, r#"context_engine_store_operation_duration_seconds_count{operation="upsert",outcome="ok"}"#) >= 1.0
    );
    assert_eq!(value(&m, "context_engine_rpc_in_flight"), 0.0);
    assert!(value(&m, "context_engine_process_resident_memory_bytes") > 50e6);
    // Loading the model and serving took CPU time; not more than wall time
    // on every core since the process started.
    let cpu = value(&m, "context_engine_process_cpu_seconds");
    assert!(cpu > 0.1 && cpu < 600.0, "process CPU {cpu} s");
    // No label carries a user id.
    assert!(m.keys().all(|series| !series.contains("obs-")), "a metric label holds a user id");

    let exit = {
        server.signal_term();
        server.wait_exit().await
    };
    assert!(exit.success(), "{exit:?}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("context engine serving"), "the log is captured: {log}");
    assert!(log.contains("metrics served at /metrics"), "{log}");
    for personal in [user, "obs-nobody-9920", "Quillfeather", "umbrella", "Lantern"] {
        assert!(!log.contains(personal), "{personal:?} reached the default-level log:\n{log}");
    }
}

/// Requests whose caller gave up (deadline, disconnect) before the model got
/// to them are skipped, not embedded.
#[tokio::test(flavor = "multi_thread")]
async fn abandoned_embedding_requests_cost_no_model_time() {
    use context_engine::metrics::metrics;
    let embedder = tokio::task::spawn_blocking(|| {
        context_engine::app::load_embedder(&crate::common::model_dir(), context_engine::embed::DeviceChoice::Cpu)
            .unwrap()
    })
    .await
    .unwrap();
    let config = context_engine::embed::BatchConfig { queue_capacity: 64, max_batch_texts: 1 };
    let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), config).unwrap();
    let abandoned_before = metrics().embed_abandoned.get();
    // Keeps the model busy for a while (one long batch).
    let busy = handle.clone();
    let long: Vec<String> =
        (0..150).map(|i| format!("A long activity text about hiking gear number {i} ").repeat(6)).collect();
    let first = tokio::spawn(async move { busy.embed(long).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // Five callers that give up after 1 ms, while the model is busy.
    for i in 0..5 {
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(1), handle.embed_one(format!("query {i}"))).await;
        assert!(gave_up.is_err(), "the model was busy; the call should time out");
    }
    first.await.unwrap().unwrap();
    // A later caller is served normally.
    assert_eq!(handle.embed_one("hello".into()).await.unwrap().len(), 384);
    assert!(metrics().embed_abandoned.get() - abandoned_before >= 5, "abandoned requests were embedded anyway");
}
