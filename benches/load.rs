//! `context-load`: a gRPC load generator. Drives a running server with N
//! concurrent clients (one connection each) for a bounded time and a mix of
//! GetContext and Ingest calls, and prints throughput, latency percentiles
//! and errors by status code as JSON. Optionally seeds the server first
//! (consents, then events) so a run starts from a known store size.
//!
//! Not a test: numbers depend on the machine; see benches/README.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use context_engine::api::BearerKey;
use context_engine::pb::{self, context_engine_client::ContextEngineClient, privacy_client::PrivacyClient};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(name = "context-load", about = "gRPC load generator for the context engine")]
struct Args {
    #[arg(long, env = "CONTEXT_ENGINE_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Key with the roles the mix needs (or none against a local dev server).
    #[arg(long, env = "CONTEXT_ENGINE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Share of calls that are Ingest (one event each); the rest GetContext.
    #[arg(long, default_value_t = 0.1)]
    ingest_share: f64,
    /// People the calls spread over.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Events to ingest before the run (spread over the users); 0: none.
    #[arg(long, default_value_t = 0)]
    seed_events: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seed through IngestStream (streams of up to 100,000 events in
    /// messages of 500) instead of unary Ingest calls of 500: the bulk path.
    /// The report's `seed` gives events/s either way.
    #[arg(long)]
    seed_stream: bool,
    /// The server's metrics endpoint (`--metrics-listen`), e.g.
    /// `127.0.0.1:9464`: its resident memory is sampled during the run and
    /// reported with the server's own call counts (a soak run).
    #[arg(long)]
    metrics: Option<String>,
    /// Seconds between memory samples, and the length of the windows the
    /// report gives latency percentiles for.
    #[arg(long, default_value_t = 30)]
    window: u64,
}

/// `GET /metrics` over HTTP/1.0 from `addr` (host:port); series → value.
async fn scrape(addr: &str) -> Result<BTreeMap<String, f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("metrics at {addr}"))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect())
}

fn rss_mb(metrics: &BTreeMap<String, f64>) -> f64 {
    metrics.get("context_engine_process_resident_memory_bytes").copied().unwrap_or(0.0) / 1e6
}

const SOURCE: &str = "loadshop";
const ITEMS: [&str; 12] = [
    "trail running shoes",
    "waterproof hiking jacket",
    "espresso machine",
    "noise cancelling headphones",
    "camping tent",
    "yoga mat",
    "mechanical keyboard",
    "smart fitness watch",
    "cast iron pan",
    "city break in Lisbon",
    "language course",
    "strategy game",
];
const QUERIES: [&str; 6] = [
    "what should I pack for my trip?",
    "recommend something for my morning coffee",
    "what was I looking at this week?",
    "which running gear did I buy?",
    "any good games like the one I played?",
    "gift ideas based on what I like",
];

type Client = ContextEngineClient<tonic::service::interceptor::InterceptedService<Channel, BearerKey>>;

async fn client(args: &Args) -> Result<(Client, Channel)> {
    let channel = Channel::from_shared(args.server.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.server))?;
    let key = BearerKey::new(args.api_key.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((ContextEngineClient::with_interceptor(channel.clone(), key), channel))
}

fn event(rng: &mut ChaCha8Rng, user: usize, id: String, now: i64) -> pb::ActivityEvent {
    let item = ITEMS[rng.random_range(0..ITEMS.len())];
    let name = ["Purchase", "ViewContent", "AddToCart"][rng.random_range(0..3)];
    pb::ActivityEvent {
        event_id: id,
        user_id: format!("load-u{user}"),
        source_id: SOURCE.into(),
        source_name: "Load Shop".into(),
        event_name: name.into(),
        event_time: now - rng.random_range(0..180 * 86_400),
        action_source: "website".into(),
        custom_data: Some(pb::CustomData { content_name: item.into(), ..Default::default() }),
        ..Default::default()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Grants consent for every user, then ingests `seed_events` events;
/// returns the ingest's seconds (consent grants not counted).
async fn seed(args: &Args) -> Result<f64> {
    let (mut engine, channel) = client(args).await?;
    let key = BearerKey::new(args.api_key.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut privacy = PrivacyClient::with_interceptor(channel, key);
    for user in 0..args.users {
        privacy
            .set_consent(pb::SetConsentRequest {
                user_id: format!("load-u{user}"),
                source_id: SOURCE.into(),
                purpose: pb::Purpose::ChatAssistant as i32,
                state: pb::ConsentState::Granted as i32,
            })
            .await?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let now = unix_now();
    let started = Instant::now();
    let mut sent = 0;
    let mut batch = |sent: usize, n: usize| -> Vec<pb::ActivityEvent> {
        (sent..sent + n)
            .map(|i| {
                let user = rng.random_range(0..args.users);
                event(&mut rng, user, format!("seed-{i}"), now)
            })
            .collect()
    };
    while sent < args.seed_events {
        if args.seed_stream {
            // One stream per 100,000 events (the server holds a stream until
            // it ends, up to that many).
            let n = (args.seed_events - sent).min(100_000);
            let messages: Vec<pb::IngestRequest> =
                (0..n).step_by(500).map(|o| pb::IngestRequest { events: batch(sent + o, 500.min(n - o)) }).collect();
            let response = engine.ingest_stream(tokio_stream::iter(messages)).await?.into_inner();
            anyhow::ensure!(
                response.rejected == 0,
                "the seed stream had rejected events: {:?}",
                response.results.first()
            );
            sent += n;
        } else {
            let n = (args.seed_events - sent).min(500);
            engine.ingest(pb::IngestRequest { events: batch(sent, n) }).await?;
            sent += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("seeded {} users, {sent} events in {seconds:.1} s", args.users);
    Ok(seconds)
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    /// Seconds since the run started, per entry of `latencies_ms`.
    at_s: Vec<f64>,
    errors: BTreeMap<String, usize>,
    /// Server stage sums (µs): ledger, embed, search, rank, render, access
    /// log, total.
    stages_us: [u64; 7],
}

/// Throughput and percentiles per window of `window` seconds.
fn windows(t: &Tally, window: f64) -> Vec<serde_json::Value> {
    let mut by_window: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (ms, at) in t.latencies_ms.iter().zip(&t.at_s) {
        by_window.entry((at / window) as u64).or_default().push(*ms);
    }
    by_window
        .into_iter()
        .map(|(w, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let at = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
            json!({"from_s": w as f64 * window, "ok": n, "per_second": n as f64 / window,
                   "p50_ms": at(0.5), "p99_ms": at(0.99)})
        })
        .collect()
}

fn summary(t: &mut Tally, seconds: f64) -> serde_json::Value {
    t.latencies_ms.sort_by(f64::total_cmp);
    let n = t.latencies_ms.len();
    let at = |p: f64| if n == 0 { 0.0 } else { t.latencies_ms[((p * n as f64).ceil() as usize).clamp(1, n) - 1] };
    json!({
        "ok": n,
        "errors": t.errors,
        "per_second": n as f64 / seconds,
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let seeded = if args.seed_events > 0 {
        let seconds = seed(&args).await?;
        json!({
            "events": args.seed_events,
            "via": if args.seed_stream { "IngestStream, messages of 500" } else { "Ingest, calls of 500" },
            "seconds": seconds,
            "events_per_second": args.seed_events as f64 / seconds,
        })
    } else {
        Value::Null
    };
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let run_started = Instant::now();
    let before = match &args.metrics {
        Some(addr) => Some(scrape(addr).await?),
        None => None,
    };
    // Memory samples while the run goes on.
    let sampler = args.metrics.clone().map(|addr| {
        let every = Duration::from_secs(args.window.max(1));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                tokio::time::sleep(every.min(deadline.saturating_duration_since(Instant::now()))).await;
                if let Ok(m) = scrape(&addr).await {
                    samples.push(json!({"at_s": run_started.elapsed().as_secs_f64().round(), "rss_mb": rss_mb(&m)}));
                }
            }
            samples
        })
    });
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (mut engine, _) = client(&args).await?;
        let (users, share, seed) = (args.users, args.ingest_share, args.seed);
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (c as u64 + 1) << 32);
            let (mut get, mut put) = (Tally::default(), Tally::default());
            let mut i = 0u64;
            while Instant::now() < deadline {
                let user = rng.random_range(0..users);
                let started = Instant::now();
                if rng.random_bool(share) {
                    i += 1;
                    let e = event(&mut rng, user, format!("load-{c}-{i}-{}", unix_now()), unix_now());
                    let result = engine.ingest(pb::IngestRequest { events: vec![e] }).await;
                    record(&mut put, started, run_started, result.map(drop));
                } else {
                    let request = pb::GetContextRequest {
                        user_id: format!("load-u{user}"),
                        query: QUERIES[rng.random_range(0..QUERIES.len())].into(),
                        purpose: pb::Purpose::ChatAssistant as i32,
                        ..Default::default()
                    };
                    let result = engine.get_context(request).await;
                    if let Ok(response) = &result {
                        if let Some(l) = response.get_ref().stats.as_ref().and_then(|s| s.latency.as_ref()) {
                            let stages = [
                                l.ledger_us,
                                l.embed_us,
                                l.search_us,
                                l.rank_us,
                                l.render_us,
                                l.access_log_us,
                                l.total_us,
                            ];
                            for (sum, v) in get.stages_us.iter_mut().zip(stages) {
                                *sum += v;
                            }
                        }
                    }
                    record(&mut get, started, run_started, result.map(drop));
                }
            }
            (get, put)
        }));
    }
    let started = Instant::now();
    let (mut get, mut put) = (Tally::default(), Tally::default());
    for task in tasks {
        let (g, p) = task.await?;
        get.latencies_ms.extend(g.latencies_ms);
        get.at_s.extend(g.at_s);
        for (sum, v) in get.stages_us.iter_mut().zip(g.stages_us) {
            *sum += v;
        }
        put.latencies_ms.extend(p.latencies_ms);
        put.at_s.extend(p.at_s);
        for (code, n) in g.errors {
            *get.errors.entry(code).or_default() += n;
        }
        for (code, n) in p.errors {
            *put.errors.entry(code).or_default() += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let get_windows = windows(&get, args.window.max(1) as f64);
    let mut server = serde_json::Value::Null;
    if let (Some(addr), Some(before)) = (&args.metrics, before) {
        let after = scrape(addr).await?;
        let samples = match sampler {
            Some(task) => task.await?,
            None => Vec::new(),
        };
        let delta =
            |series: &str| after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0);
        let calls: BTreeMap<String, f64> = after
            .keys()
            .filter(|k| k.starts_with("context_engine_rpc_requests_total{"))
            .map(|k| (k.trim_start_matches("context_engine_rpc_requests_total").to_string(), delta(k)))
            .filter(|(_, n)| *n > 0.0)
            .collect();
        server = json!({
            "rss_mb_start": rss_mb(&before),
            "rss_mb_end": rss_mb(&after),
            "rss_samples": samples,
            "calls_by_code": calls,
            "shed": delta("context_engine_rpc_shed_total{rpc=\"GetContext\"}") + delta("context_engine_rpc_shed_total{rpc=\"Ingest\"}"),
            "embed_overloaded": delta("context_engine_embed_overloaded_total"),
            "consent_post_check_removed": delta("context_engine_consent_post_check_removed_total"),
            // Server CPU (user + system) per call served, from the process
            // counter: the cost figure that decides how many machines a
            // load needs, independent of how the calls queued.
            "cpu_seconds": delta("context_engine_process_cpu_seconds"),
            "cpu_ms_per_call": 1e3 * delta("context_engine_process_cpu_seconds")
                / calls.values().sum::<f64>().max(1.0),
        });
    }
    // Mean server time per GetContext by stage (the engine's own
    // breakdown; `other` is what lies between the stages).
    let server_us = {
        let n = get.latencies_ms.len().max(1) as f64;
        let [ledger, embed, search, rank, render, access_log, total] = get.stages_us.map(|v| v as f64 / n);
        json!({
            "ledger": ledger, "embed": embed, "search": search, "rank": rank, "render": render,
            "access_log": access_log, "total": total,
            "other": total - ledger - embed - search - rank - render - access_log,
        })
    };
    let report = json!({
        "server": args.server,
        "clients": args.clients,
        "seconds": seconds,
        "ingest_share": args.ingest_share,
        "users": args.users,
        "seed": seeded,
        "get_context_server_us": server_us,
        "get_context": summary(&mut get, seconds),
        "ingest": summary(&mut put, seconds),
        "get_context_windows": get_windows,
        "server": server,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn record(t: &mut Tally, started: Instant, run_started: Instant, result: Result<(), tonic::Status>) {
    match result {
        Ok(()) => {
            t.latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
            t.at_s.push(run_started.elapsed().as_secs_f64());
        }
        Err(status) => *t.errors.entry(format!("{:?}", status.code())).or_default() += 1,
    }
}
