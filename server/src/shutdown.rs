//! The process's one shutdown trigger: SIGTERM (what `docker stop` sends)
//! or SIGINT (Ctrl-C), whichever comes first.

/// Completes when the process is asked to stop. If a handler cannot be
/// installed the server still runs, and says so.
pub async fn signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "stop requested"),
        () = terminate => tracing::info!(signal = "SIGTERM", "stop requested"),
    }
}
