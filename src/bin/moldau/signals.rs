//! Ctrl-C and SIGTERM: the broker's shutdown future, and a flag for the
//! blocking commands (`consume` polls it between short polls, then commits
//! and closes the log cleanly).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Completes on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM ({e}); stopping on Ctrl-C only");
            // An error here means Ctrl-C cannot be watched either: stop now.
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::warn!("cannot watch Ctrl-C ({e})");
            }
        }
    }
}

/// A flag raised by Ctrl-C or SIGTERM, watched from a background thread.
#[derive(Debug, Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Starts watching; `Err` with a message if the signal handlers cannot
    /// be installed.
    pub fn install() -> Result<StopFlag, String> {
        let flag = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| format!("cannot watch signals: {e}"))?;
        // Registering inside the runtime before returning means a signal
        // that arrives right after `install` is not missed.
        let mut term = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            })
            .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        let mut int = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            })
            .map_err(|e| format!("cannot watch SIGINT: {e}"))?;
        let raised = Arc::clone(&flag);
        std::thread::Builder::new()
            .name("moldau-signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                });
                raised.store(true, Ordering::Release);
            })
            .map_err(|e| format!("cannot watch signals: {e}"))?;
        Ok(StopFlag(flag))
    }

    /// Whether a stop was asked for.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
