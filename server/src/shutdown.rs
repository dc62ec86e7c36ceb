//! The process's one shutdown trigger: SIGTERM (what `docker stop` sends)
//! or SIGINT (Ctrl-C), whichever comes first.

use std::future::Future;

/// Starts listening for SIGTERM and SIGINT now, so that a signal arriving
/// while the server is still starting (opening the database, importing
/// the seed data) is not lost: the returned future completes at once when
/// it is first awaited, and the server stops cleanly as soon as it is up.
pub fn listen() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
                _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!(signal = "Ctrl-C", "stop requested");
        })
    }
}
