//! `kubelift-bench`: bounded benchmarks of the testbed. `apiserver` loads the embedded API
//! server with concurrent writers and watchers over loopback HTTP and reports throughput and
//! watch fan-out latency.

use clap::{Parser, Subcommand};
use kubelift_testbed::apiserver::bench::{self, BenchError, LoadSpec};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(version, about = "Bounded benchmarks of the kubelift testbed")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N watchers and M writers against the embedded API server over loopback HTTP.
    Apiserver {
        /// Concurrent watch streams.
        #[arg(long, default_value_t = 50)]
        watchers: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Writes per writer.
        #[arg(long, default_value_t = 500)]
        writes_per_writer: usize,
    },
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Command::Apiserver {
            watchers,
            writers,
            writes_per_writer,
        } => {
            let spec = LoadSpec {
                watchers,
                writers,
                writes_per_writer,
            };
            let report = bench::run(spec).await?;
            let [p50, p90, p99, max] = report.latency;
            println!(
                "apiserver: {watchers} watchers, {writers} writers, \
                 {} writes in {:.2?} = {:.0} writes/s; \
                 {} watch events; fan-out latency \
                 p50 {p50:.2?} p90 {p90:.2?} p99 {p99:.2?} max {max:.2?}",
                report.writes,
                report.write_time,
                report.writes_per_second(),
                report.events,
            );
        }
    }
    Ok(())
}
