//! `sales-server`: parses settings, sets up logging, runs the application
//! until SIGTERM or Ctrl-C, and maps the outcome to an exit code.

use clap::Parser;
use sales_server::{shutdown, telemetry, Application, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::parse();
    telemetry::init(settings.log_format);

    let outcome = async {
        let stop = shutdown::listen()?;
        let application = Application::build(settings).await?;
        application.run_until(stop).await
    };
    match outcome.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("sales-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
