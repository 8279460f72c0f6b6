//! The HTTP endpoint of the process's Prometheus metrics
//! (`--metrics-listen`); the registry itself is `ce-metrics`.

use std::future::Future;

pub use ce_metrics::{metrics, resident_bytes, Metrics};

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/metrics",
        get(|| async {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics().render())
        }),
    );
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
