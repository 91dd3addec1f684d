//! `kubelift-kubelet-emulator`: a stand-in kubelet (`run`), the per-node supervisor that plays
//! the kubelet service (`supervise`), its control client (`ctl`), and a simulated CRI runtime
//! (`simulate-cri`). Per-node settings of `run` come from `KUBELIFT_*` environment variables set
//! by the supervisor; the version comes from the stand-in kubelet script
//! (`exec kubelift-kubelet-emulator run --version vX.Y.Z "$@"`), so `<kubelet> --version` prints
//! `Kubernetes vX.Y.Z` like the real one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};
use kubelet_hash::KubeletVersion;
use kubelift_testbed::cri_sim::CriSimServer;
use kubelift_testbed::emulator::{self, EmulatorConfig, Fault};
use kubelift_testbed::supervisor::{self, SupervisorConfig};

#[derive(Parser)]
#[command(
    name = "kubelift-kubelet-emulator",
    about = "A kubelet emulator and its supervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the kubelet emulator (or print its version).
    Run(Box<RunArgs>),
    /// Run a program as a service controlled over a unix socket.
    Supervise(SuperviseArgs),
    /// Send a command to a supervisor.
    Ctl(CtlArgs),
    /// Serve a simulated CRI runtime on a unix socket.
    SimulateCri(SimulateCriArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// This kubelet's version; given a second time without a value, print it and exit.
    #[arg(long, num_args = 0..=1, default_missing_value = "", action = ArgAction::Append)]
    version: Vec<String>,
    /// The Node's name.
    #[arg(long, env = "KUBELIFT_NODE_NAME")]
    node_name: Option<String>,
    /// Kubeconfig of the API server.
    #[arg(long, env = "KUBELIFT_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The node's CRI socket.
    #[arg(long, env = "KUBELIFT_CRI_SOCKET")]
    cri_socket: Option<PathBuf>,
    /// `/healthz` port on 127.0.0.1.
    #[arg(long, env = "KUBELIFT_HEALTHZ_PORT", default_value_t = 10248)]
    healthz_port: u16,
    /// Host root prefix (the snapshot is `<root>/var/lib/kubelift/snapshot.json`).
    #[arg(long, env = "KUBELIFT_HOST_ROOT", default_value = "/")]
    host_root: PathBuf,
    /// `topology.kubernetes.io/zone` of the Node.
    #[arg(long, env = "KUBELIFT_ZONE")]
    zone: Option<String>,
    /// Skip hash-triggered restarts of containers listed in the snapshot.
    #[arg(long)]
    snapshot_aware: bool,
    /// Inject a failure.
    #[arg(long, value_enum)]
    fault: Option<Fault>,
    /// Milliseconds between pod syncs.
    #[arg(long, env = "KUBELIFT_SYNC_INTERVAL_MS", default_value_t = 500)]
    sync_interval_ms: u64,
    /// Milliseconds between Node and Lease heartbeats.
    #[arg(long, env = "KUBELIFT_HEARTBEAT_INTERVAL_MS", default_value_t = 10_000)]
    heartbeat_interval_ms: u64,
    /// The image every container really runs.
    #[arg(long, env = "KUBELIFT_RUNTIME_IMAGE", default_value = emulator::DEFAULT_RUNTIME_IMAGE)]
    runtime_image: String,
    /// Milliseconds the kubelet takes to start before registering and serving `/healthz`.
    #[arg(long, env = "KUBELIFT_STARTUP_DELAY_MS", default_value_t = 0)]
    startup_delay_ms: u64,
}

#[derive(clap::Args)]
struct SuperviseArgs {
    /// Control socket.
    #[arg(long, env = "KUBELIFT_SUPERVISOR_SOCKET")]
    socket: PathBuf,
    /// The program to run (the node's kubelet path), resolved at every start.
    #[arg(long)]
    program: PathBuf,
    /// Extra environment for the program, `KEY=VALUE`.
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Append the program's output to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Do not start the program again when it exits on its own.
    #[arg(long)]
    no_restart_on_exit: bool,
    /// Milliseconds before restarting a program that exited.
    #[arg(long, default_value_t = 1000)]
    restart_delay_ms: u64,
    /// Arguments of the program.
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(clap::Args)]
struct CtlArgs {
    /// The supervisor's control socket.
    #[arg(long, env = "KUBELIFT_SUPERVISOR_SOCKET")]
    socket: PathBuf,
    /// The command.
    #[arg(value_parser = ["restart", "stop", "start", "status"])]
    command: String,
}

#[derive(clap::Args)]
struct SimulateCriArgs {
    /// The socket to serve on.
    #[arg(long, env = "KUBELIFT_CRI_SOCKET")]
    socket: PathBuf,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// An error for the command line: the full chain, printed once.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error.into()),
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &BoxError) -> ExitCode {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

async fn dispatch(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Run(args) => run(*args).await,
        Command::Supervise(args) => Ok(supervisor::run(supervisor_config(args)).await?),
        Command::Ctl(args) => {
            let report = supervisor::control(&args.socket, &args.command).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::SimulateCri(args) => simulate_cri(&args.socket).await,
    }
}

async fn run(args: RunArgs) -> Result<(), BoxError> {
    let Some(version) = args.version.iter().find(|v| !v.is_empty()) else {
        return Err("failed to start: --version vX.Y.Z is required".into());
    };
    let version: KubeletVersion = version.parse()?;
    if args.version.iter().any(String::is_empty) {
        println!("{}", emulator::version_line(&version));
        return Ok(());
    }
    let config = emulator_config(&args, version)?;
    let kubeconfig = args
        .kubeconfig
        .ok_or("failed to start: --kubeconfig is required")?;
    let client = client_from(&kubeconfig, &config).await?;
    Ok(emulator::run(config, client).await?)
}

fn emulator_config(args: &RunArgs, version: KubeletVersion) -> Result<EmulatorConfig, BoxError> {
    let node_name = args
        .node_name
        .clone()
        .ok_or("failed to start: --node-name is required")?;
    let cri_socket = args
        .cri_socket
        .clone()
        .ok_or("failed to start: --cri-socket is required")?;
    let mut config = EmulatorConfig::new(&node_name, version, cri_socket);
    config.healthz_port = args.healthz_port;
    config.host_root.clone_from(&args.host_root);
    config.zone.clone_from(&args.zone);
    config.snapshot_aware = args.snapshot_aware;
    config.fault = args.fault;
    config.sync_interval = Duration::from_millis(args.sync_interval_ms.max(10));
    config.heartbeat_interval = Duration::from_millis(args.heartbeat_interval_ms.max(100));
    config.runtime_image.clone_from(&args.runtime_image);
    config.startup_delay = Duration::from_millis(args.startup_delay_ms);
    Ok(config)
}

async fn client_from(
    path: &std::path::Path,
    config: &EmulatorConfig,
) -> Result<kube::Client, BoxError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let options = kube::config::KubeConfigOptions::default();
    let mut client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    let agent = format!(
        "kubelet/{} (linux/{}) kubelift-kubelet-emulator",
        config.version, config.arch
    );
    client_config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent)?,
    ));
    Ok(kube::Client::try_from(client_config)?)
}

fn supervisor_config(args: SuperviseArgs) -> SupervisorConfig {
    let mut config = SupervisorConfig::new(args.socket, args.program);
    config.args = args.args;
    config.env = args.env;
    config.log = args.log;
    config.restart_on_exit = !args.no_restart_on_exit;
    config.restart_delay = Duration::from_millis(args.restart_delay_ms);
    config
}

async fn simulate_cri(socket: &std::path::Path) -> Result<(), BoxError> {
    use tokio::signal::unix::{SignalKind, signal};
    let server = CriSimServer::start(socket)?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    server.shutdown().await?;
    Ok(())
}
