//! The engine as the evaluation drives it: built in process by the library's
//! composition root (the same embedding model, Qdrant Edge store, ranking and
//! rendering as the service), plus the run metadata every report carries.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use context_engine::app::{self, App, AppConfig, HeadChoice};
use context_engine::embed::ModelOptions;
use context_engine::engine::Engine;
use context_engine::rank::RankingOptions;
use indicatif::{ProgressBar, ProgressStyle};

/// Options shared by every run.
#[derive(Debug, Clone)]
pub struct EngineArgs {
    /// The embedding model and how it runs.
    pub model: ModelOptions,
    /// Server-side ranking defaults the run uses (the service's unless set).
    pub ranking: RankingOptions,
    /// The learned injection head (the shipped one unless set).
    pub injection_head: HeadChoice,
}

/// An engine on a data directory; closes the store when dropped.
pub struct EvalEngine {
    pub app: App,
}

impl EvalEngine {
    /// Builds the engine on `data_dir`. `bm25_avg_len` is the typical length
    /// of the indexed texts; `max_tokens` the largest budget a run asks for.
    pub async fn open(
        args: &EngineArgs,
        data_dir: &Path,
        bm25_avg_len: f64,
        max_tokens: usize,
    ) -> anyhow::Result<Self> {
        let mut config = AppConfig::new(&args.model.model_dir, data_dir);
        config.model = args.model.clone();
        config.bm25_avg_len = bm25_avg_len;
        config.engine.limits.max_tokens = max_tokens.max(config.engine.limits.max_tokens);
        config.engine.ranking = args.ranking;
        config.injection_head = args.injection_head.clone();
        let app = tokio::task::spawn_blocking(move || app::build(&config))
            .await?
            .with_context(|| format!("cannot build the engine on {}", data_dir.display()))?;
        Ok(Self { app })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.app.engine
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.app.engine.flush().await?;
        let store = self.app.store.clone();
        tokio::task::spawn_blocking(move || store.close()).await?;
        Ok(())
    }
}

/// The current commit (with `-dirty` for uncommitted changes), or "unknown".
pub fn commit() -> String {
    let run =
        |args: &[&str]| Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| o.stdout);
    match run(&["rev-parse", "--short=10", "HEAD"]) {
        Some(out) => {
            let mut commit = String::from_utf8_lossy(&out).trim().to_string();
            if run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.is_empty()) {
                commit.push_str("-dirty");
            }
            commit
        }
        None => "unknown".into(),
    }
}

/// CPU model and core count, for the report header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A progress bar on stderr (hidden when stderr is not a terminal, e.g. in CI).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
