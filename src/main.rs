//! `context-engine`: the server and its small command-line clients.

use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use context_engine::api::{self, event_to_pb, BearerKey};
use context_engine::config::{
    Cli, ClientArgs, Command, ConsentArgs, EmbedArgs, EraseArgs, IngestArgs, MigrateArgs, QueryArgs, ServeConfig,
};
use context_engine::domain::{ActivityEvent, ConsentState, Purpose};
use context_engine::embed::Embedder;
use context_engine::pb::{self, context_engine_client::ContextEngineClient, privacy_client::PrivacyClient};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing::info;

/// mimalloc instead of glibc's malloc: per-thread free lists, no arena
/// lock contention between the runtime's workers (measured in ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // qdrant-edge warns at every open that its server feature flags are
                // not initialised, which is expected in-process.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,qdrant_edge=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = |blocking_threads: Option<usize>| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = blocking_threads {
            builder.max_blocking_threads(n);
        }
        builder.enable_all().build()
    };
    if let Command::Serve(args) = cli.command {
        let config: ServeConfig = args.try_into()?;
        return runtime(Some(config.blocking_threads))?.block_on(serve(config));
    }
    let runtime = runtime(None)?;
    match cli.command {
        Command::Serve(_) => unreachable!("served above"),
        Command::Ingest(args) => runtime.block_on(ingest(args)),
        Command::Query(args) => runtime.block_on(query(args)),
        Command::Consent(args) => runtime.block_on(consent(args)),
        Command::Erase(args) => runtime.block_on(erase(args)),
        Command::Embed(args) => embed(args),
        Command::Migrate(args) => runtime.block_on(migrate(args)),
    }
}

async fn serve(config: ServeConfig) -> Result<()> {
    let started = Instant::now();
    let app_config = config.app.clone();
    let app = tokio::task::spawn_blocking(move || context_engine::app::build(&app_config))
        .await?
        .with_context(|| format!("cannot start the engine (model {})", config.app.model.model_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    if config.keys.is_empty() {
        tracing::warn!(
            "local development mode: no API keys configured, every caller has every role \
             (allowed on loopback only; set --api-keys-file for anything else)"
        );
    }
    info!(
        api_keys = config.keys.len(),
        address = %listener.local_addr()?,
        data_dir = %config.app.data_dir.display(),
        model = app.engine.embedder().model_id(),
        startup_ms = started.elapsed().as_millis() as u64,
        blocking_threads = config.blocking_threads,
        "context engine serving"
    );
    // SIGTERM/Ctrl-C: health turns NOT_SERVING, the listener closes, calls in
    // flight get `--shutdown-grace` to finish; then the store is flushed
    // either way and the process exits 0.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        info!(address = %listener.local_addr()?, "metrics served at /metrics");
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = context_engine::metrics::serve(listener, stopped).await {
                tracing::warn!(error = %e, "metrics endpoint stopped");
            }
        });
    }
    let signal = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let serve = api::serve_with(listener, app.engine.clone(), config.keys.clone(), config.serve, signal);
    let grace = config.shutdown_grace;
    let deadline = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = serve => served?,
        _ = deadline => tracing::warn!(grace_s = grace.as_secs(), "calls still in flight after the shutdown grace; stopping anyway"),
    }
    info!("shutting down: flushing the store");
    app.engine.flush().await?;
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.close()).await?;
    Ok(())
}

async fn migrate(args: MigrateArgs) -> Result<()> {
    use context_engine::migrate::{self, Endpoint, MigrateOptions};
    use context_engine::store::StoreManifest;
    let from: Endpoint = args.from.parse().map_err(anyhow::Error::msg).context("--from")?;
    let to: Endpoint = args.to.parse().map_err(anyhow::Error::msg).context("--to")?;
    if from == to {
        bail!("--from and --to name the same store");
    }
    // The URL of each side comes from its endpoint; the other server
    // settings (API key, prefix, shards, replicas, timeout) from the flags.
    let qdrant = args.qdrant.config(Some("http://endpoint-url")).map_err(anyhow::Error::msg)?;
    let source_manifest = migrate::read_manifest(&from, &qdrant).await.with_context(|| format!("reading {from}"))?;
    let (reembed, manifest) = if args.reembed {
        let options = args.model.options();
        let embedder = tokio::task::spawn_blocking(move || context_engine::app::load_embedder_with(&options)).await??;
        let manifest = StoreManifest::current(embedder.model_id(), embedder.dimension(), source_manifest.bm25_avg_len);
        let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), Default::default())?;
        (Some((handle, manifest.clone())), manifest)
    } else {
        (None, source_manifest.clone())
    };
    info!(from = %from, to = %to, source = %source_manifest.describe(), destination = %manifest.describe(), "migrating");
    let source = migrate::open(&from, &source_manifest, &qdrant).await.with_context(|| format!("opening {from}"))?;
    let destination = migrate::open(&to, &manifest, &qdrant).await.with_context(|| format!("opening {to}"))?;
    let started = Instant::now();
    let options = MigrateOptions { batch: args.batch, verify_sample: args.verify_sample, reembed, progress: true };
    let report = migrate::migrate(&*source, &*destination, &options).await?;
    for (name, copied, _, destination) in &report.collections {
        println!("{name}: {copied} points copied, destination holds {destination}");
    }
    println!(
        "verified: counts equal, {} sampled points identical{}; {:.1} s",
        report.verified_sample,
        if report.reembedded { " (events re-embedded)" } else { "" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

type Authed = InterceptedService<Channel, BearerKey>;

async fn channel(args: &ClientArgs) -> Result<(Channel, BearerKey)> {
    let key = BearerKey::new(args.api_key.as_deref()).map_err(anyhow::Error::msg)?;
    let channel = Channel::from_shared(args.server.clone())
        .with_context(|| format!("bad --server {}", args.server))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}; is `context-engine serve` running?", args.server))?;
    Ok((channel, key))
}

async fn connect(args: &ClientArgs) -> Result<ContextEngineClient<Authed>> {
    let (channel, key) = channel(args).await?;
    Ok(ContextEngineClient::with_interceptor(channel, key).max_decoding_message_size(api::MAX_MESSAGE_BYTES))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentLine {
    user_id: String,
    source_id: String,
    purpose: Purpose,
    state: ConsentState,
}

async fn consent(args: ConsentArgs) -> Result<()> {
    let lines: Vec<ConsentLine> = match (&args.file, &args.user, &args.source) {
        (Some(file), _, _) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", file.display(), n + 1)))
                .collect::<Result<_>>()?
        }
        (None, Some(user), Some(source)) => vec![ConsentLine {
            user_id: user.clone(),
            source_id: source.clone(),
            purpose: args.purpose,
            state: args.state,
        }],
        _ => bail!("give --file, or --user and --source"),
    };
    let (channel, key) = channel(&args.client).await?;
    let mut client = PrivacyClient::with_interceptor(channel, key);
    let (mut changed, mut purged) = (0, 0);
    for line in &lines {
        let response = client
            .set_consent(pb::SetConsentRequest {
                user_id: line.user_id.clone(),
                source_id: line.source_id.clone(),
                purpose: api::purpose_to_pb(line.purpose) as i32,
                state: api::state_to_pb(line.state) as i32,
            })
            .await?
            .into_inner();
        changed += usize::from(response.changed);
        purged += response.purged_events;
    }
    println!("{} consent records: {changed} changed, {purged} events purged", lines.len());
    Ok(())
}

async fn erase(args: EraseArgs) -> Result<()> {
    let (channel, key) = channel(&args.client).await?;
    let mut client = PrivacyClient::with_interceptor(channel, key);
    let started = Instant::now();
    let r = client.erase_user(pb::EraseUserRequest { user_id: args.user.clone() }).await?.into_inner();
    let erased_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "erased {}: {} events, {} consents, {} access records in {erased_ms:.0} ms; remaining {} / {} / {}; purge ticket {} \
         due by {}",
        r.user_id,
        r.events_removed,
        r.consents_removed,
        r.access_records_removed,
        r.remaining_points,
        r.remaining_consents,
        r.remaining_access_records,
        r.purge_ticket,
        r.purge_due_by
    );
    if !args.wait {
        return Ok(());
    }
    loop {
        let status =
            client.get_erasure_status(pb::GetErasureStatusRequest { purge_ticket: r.purge_ticket }).await?.into_inner();
        match pb::ErasureState::try_from(status.state) {
            Ok(pb::ErasureState::Purged) => {
                println!("purged {:.1} s after the erasure began", started.elapsed().as_secs_f64());
                return Ok(());
            }
            Ok(pb::ErasureState::PurgeNotSupported) => bail!("this store cannot purge on demand"),
            Ok(pb::ErasureState::SegmentsVacuumed) => {
                println!(
                    "Qdrant's segments vacuumed {:.1} s after the erasure began (its WAL keeps copies until Qdrant \
                     truncates it: docs/deployment.md)",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn ingest(args: IngestArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: ActivityEvent = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not an ActivityEvent", args.file.display(), n + 1))?;
        events.push(event_to_pb(event));
    }
    let mut client = connect(&args.client).await?;
    let (mut accepted, mut rejected) = (0u32, 0u32);
    let started = Instant::now();
    let total = events.len();
    for (chunk_no, chunk) in events.chunks(args.batch).enumerate() {
        let response = client.ingest(pb::IngestRequest { events: chunk.to_vec() }).await?.into_inner();
        accepted += response.accepted;
        rejected += response.rejected;
        for r in response.results.iter().filter(|r| r.status == pb::IngestStatus::Rejected as i32) {
            eprintln!(
                "rejected event #{} ({}): {}: {}",
                chunk_no * args.batch + r.index as usize,
                r.event_id,
                r.field,
                r.message
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} events: {accepted} accepted, {rejected} rejected in {secs:.2} s ({:.0} events/s)",
        total as f64 / secs
    );
    Ok(())
}

async fn query(args: QueryArgs) -> Result<()> {
    let mut client = connect(&args.client).await?;
    let request = pb::GetContextRequest {
        user_id: args.user,
        query: args.text,
        max_snippets: args.max_snippets,
        max_tokens: args.max_tokens,
        purpose: api::purpose_to_pb(args.purpose) as i32,
        ..Default::default()
    };
    let started = Instant::now();
    let response = client.get_context(request.clone()).await?.into_inner();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    for (i, s) in response.snippets.iter().enumerate() {
        let p = s.provenance.clone().unwrap_or_default();
        let when = chrono::DateTime::from_timestamp(p.event_time, 0).map(|t| t.format("%Y-%m-%d").to_string());
        println!(
            "{:>2}. [{}] ({:.3}) {}\n    {} · {} · {} · event {} · consent v{}",
            i + 1,
            s.citation_id,
            s.score,
            s.text,
            p.source_id,
            p.event_name,
            when.unwrap_or_default(),
            p.event_id,
            p.consent_version
        );
    }
    let stats = response.stats.unwrap_or_default();
    let lat = stats.latency.unwrap_or_default();
    println!(
        "{} snippets, {}/{} tokens in {ms:.1} ms (server {} µs: ledger {} µs, embed {} µs, search {} µs, rank {} µs, \
         render {} µs, access log {} µs); {} candidates, {} collapsed, {} removed by the consent post-check, {} \
         dropped as injection, {} over budget",
        response.snippets.len(),
        stats.tokens_used,
        stats.token_budget,
        lat.total_us,
        lat.ledger_us,
        lat.embed_us,
        lat.search_us,
        lat.rank_us,
        lat.render_us,
        lat.access_log_us,
        stats.candidates,
        stats.collapsed,
        stats.consent_removed,
        stats.dropped_injection,
        stats.dropped_budget
    );
    if args.show_rendered {
        println!("\n{}", response.rendered_context);
    }
    if args.repeat > 0 {
        let mut times = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat {
            let started = Instant::now();
            client.get_context(request.clone()).await?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        println!(
            "repeated {} times on one connection: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            times.len(),
            at(0.50),
            at(0.95),
            at(0.99),
            at(1.0)
        );
    }
    Ok(())
}

fn embed(args: EmbedArgs) -> Result<()> {
    let mut embedder = context_engine::app::load_embedder_with(&args.model.options())?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut batch: Vec<String> = Vec::new();
    let mut flush = |batch: &mut Vec<String>, out: &mut dyn Write| -> Result<()> {
        let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
        for vector in embedder.embed(&texts)? {
            serde_json::to_writer(&mut *out, &vector)?;
            out.write_all(b"\n")?;
        }
        batch.clear();
        Ok(())
    };
    for line in stdin.lock().lines() {
        batch.push(line?);
        if batch.len() == 64 {
            flush(&mut batch, &mut out)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut out)?;
    }
    out.flush()?;
    Ok(())
}
