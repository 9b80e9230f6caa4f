//! The `tongzheng` binary: parses the CLI, sets up logging, binds the listener and hands it
//! to `server::run`, or hands `admin` to `tongzheng::cli`. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::jwt::Alg;
use tongzheng::keys::Keys;

/// mimalloc instead of glibc malloc (issue 13): glibc's malloc and free were 10-15 % of the
/// server's CPU on a token request (`perf`), and mimalloc's per-thread free lists take most of
/// that away (README "Per-request work").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tongzheng", version, about = "Unified identity authentication server (OAuth 2.0 / OpenID Connect)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Development mode: HTTP on loopback, in-memory store, demo data from config/dev.toml.
        #[arg(long)]
        dev: bool,
        /// Configuration file (production mode unless --dev).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Drive the admin API of a running server (applications, clients, scopes, audit).
    #[command(after_help = tongzheng::cli::AFTER_HELP)]
    Admin(Box<tongzheng::cli::AdminArgs>),
    /// Measure the raw single-core ES256 signing rate (the benchmark baseline).
    BenchSign {
        /// How long to sign, in seconds.
        #[arg(long, default_value_t = 2)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Add a new active key per algorithm to the shared key set in the store; running servers use
    /// it within keys.refresh_secs, and old keys stay published until their tokens expire.
    Rotate {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Use the dev configuration.
        #[arg(long)]
        dev: bool,
    },
    /// Re-seal the key set in the store under the first configured key-encryption key (after
    /// putting a new KEK first in keys.kek or keys.kek_file, the old one still listed).
    RotateKek {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Use the dev configuration.
        #[arg(long)]
        dev: bool,
    },
}

fn load(config: Option<&PathBuf>, dev: bool) -> Result<Config, String> {
    Config::load(config.map(PathBuf::as_path), dev).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Admin(args) = cli.command {
        return admin(*args);
    }
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tongzheng: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tongzheng admin`: stdout is the command's output, so no logging there.
fn admin(args: tongzheng::cli::AdminArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tongzheng admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    ExitCode::from(rt.block_on(tongzheng::cli::execute(args, &mut out, &mut err)))
}

fn real_main(cli: Cli) -> Result<(), String> {
    match cli.command {
        // Dispatched by `main` before logging starts.
        Command::Admin(_) => Err("admin: dispatched before this point".into()),
        Command::Serve { dev, config, listen } => {
            // --listen wins over the file and the environment; in dev mode without a configured
            // issuer, the issuer follows it (discovery and every endpoint announce it).
            let cfg = Config::load_with_listen(config.as_deref(), dev, listen.as_deref()).map_err(|e| e.to_string())?;
            // Logging as configured (text or JSON, colour only on a terminal).
            tongzheng::logging::init(&cfg.logging);
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if cfg.server.workers > 0 {
                rt.worker_threads(cfg.server.workers);
            }
            let rt = rt.enable_all().build().map_err(|e| e.to_string())?;
            raise_open_file_limit();
            rt.block_on(serve(cfg))
        }
        Command::Keys { action } => {
            let (config, dev) = match &action {
                KeysAction::Rotate { config, dev } | KeysAction::RotateKek { config, dev } => (config, *dev),
            };
            let cfg = load(config.as_ref(), dev)?;
            tongzheng::logging::init(&cfg.logging);
            if cfg.store.backend == tongzheng::config::Backend::Memory {
                return Err("keys: the key set lives in the store, and the memory store lives inside the server \
                            process: use POST /admin/v1/keys/rotate on the running server"
                    .into());
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(keys(action, &cfg))
        }
        Command::BenchSign { seconds } => {
            let keys = Keys::ephemeral(0).map_err(|e| e.to_string())?;
            let msg = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9";
            let start = std::time::Instant::now();
            let mut n: u64 = 0;
            while start.elapsed().as_secs() < seconds {
                for _ in 0..100 {
                    keys.sign_raw(Alg::ES256, msg).map_err(|e| e.to_string())?;
                }
                n += 100;
            }
            println!("{:.0}", n as f64 / start.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

/// `tongzheng keys ...` on the shared store (inside a runtime: the Redis client needs one).
async fn keys(action: KeysAction, cfg: &Config) -> Result<(), String> {
    let store = tongzheng::server::open_store(cfg).map_err(|e| e.to_string())?;
    let now = Clock::system().now();
    match action {
        KeysAction::Rotate { .. } => {
            let kids = tongzheng::keys::shared::rotate_in_store(cfg, &store, now).await.map_err(|e| e.to_string())?;
            println!("new active keys: {}", kids.join(", "));
            println!("running servers use them within keys.refresh_secs ({} s)", cfg.keys.refresh_secs);
        }
        KeysAction::RotateKek { .. } => {
            let done =
                tongzheng::keys::shared::rotate_kek_in_store(cfg, &store, now).await.map_err(|e| e.to_string())?;
            println!("key set re-sealed: key-encryption key {} -> {}", done.from, done.to);
            println!("once every instance lists the new KEK first, remove the old one from their configuration");
        }
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard limit (every connection holds a descriptor;
/// the usual soft default of 1024 is soon reached), and logs what it did.
fn raise_open_file_limit() {
    let before = match rlimit::Resource::NOFILE.get() {
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "open-file limit unknown; not raised");
            return;
        }
    };
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(after) if after > before => tracing::info!("open-file limit raised from {before} to {after}"),
        Ok(after) => tracing::info!("open-file limit is {after} (already the hard limit)"),
        Err(e) => tracing::warn!(error = %e, "open-file limit not raised from {before}"),
    }
}

async fn serve(mut cfg: Config) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.server.listen))?;
    let issuer = cfg.issuer.clone();
    if cfg.server.dev {
        println!("tongzheng dev server (in-memory store, HTTP on loopback; not for production)");
        println!("  issuer:     {issuer}");
        println!("  discovery:  {issuer}/.well-known/openid-configuration");
        for c in &cfg.seed.clients {
            println!(
                "  client:     {} ({}) secret: {}",
                c.client_id,
                c.token_endpoint_auth_method,
                c.client_secret.as_deref().unwrap_or("none (public, PKCE)")
            );
        }
        for u in &cfg.seed.users {
            println!("  user:       {} / {}", u.username, u.password);
        }
        if !cfg.security.initial_access_token.is_empty() {
            println!("  RFC 7591 initial access token: {}", cfg.security.initial_access_token);
        }
        start_example_rp(&mut cfg).await;
    } else {
        tracing::info!(%issuer, listen = %cfg.server.listen, "tongzheng starting");
    }
    // Registered before the server answers anything: an early SIGTERM must not kill the process.
    let mut signals = StopSignals::register().map_err(|e| format!("signal handlers: {e}"))?;
    let shutdown = async move {
        signals.next().await;
        tracing::info!("stop signal: shutting down gracefully (a second signal exits at once)");
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second stop signal: exiting without finishing requests");
            std::process::exit(130);
        });
    };
    tongzheng::server::run(listener, cfg, shutdown).await.map_err(|e| e.to_string())
}

/// The address of the example application `serve --dev` runs (the demo client's redirect URI).
const EXAMPLE_RP: &str = "127.0.0.1:9000";

/// Dev mode: runs the integrator's reference application (`src/example_rp/`) as the demo client
/// `demo-web`, so the first login has somewhere to land, and registers its back-channel logout
/// receiver on that client. A busy port is a note in the banner, not a stop.
async fn start_example_rp(cfg: &mut Config) {
    let Some(demo) = cfg.seed.clients.iter_mut().find(|c| c.client_id == "demo-web") else { return };
    let Some(secret) = demo.client_secret.clone() else { return };
    let listener = match tokio::net::TcpListener::bind(EXAMPLE_RP).await {
        Ok(l) => l,
        Err(e) => {
            println!("  example app: not started ({EXAMPLE_RP}: {e})");
            return;
        }
    };
    println!(
        "  example app: http://{EXAMPLE_RP}/  (client demo-web; open /protected to log in; source: src/example_rp/)"
    );
    let settings = tongzheng::example_rp::Settings {
        issuer: cfg.issuer.clone(),
        client_id: demo.client_id.clone(),
        client_secret: secret,
        base: format!("http://{EXAMPLE_RP}"),
    };
    tokio::spawn(async move {
        if let Err(e) = tongzheng::example_rp::run(listener, settings, std::future::pending()).await {
            tracing::warn!(error = %e, "example application stopped");
        }
    });
}

/// SIGTERM (what systemd, container runtimes and orchestrators send) and SIGINT (Ctrl-C). Once
/// registered, neither kills the process by itself any more: the server drains first.
struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    #[cfg(not(unix))]
    fn register() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Resolves at the next stop signal.
    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    /// Resolves at the next Ctrl-C.
    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
