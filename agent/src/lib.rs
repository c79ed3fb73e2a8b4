//! The Garonne agent: follows log files, keeps what it read in a disk buffer, and
//! ships it to a collector.
//!
//! ```text
//!  files --(notify, rescan)--> Tailer --(batch + checkpoints, atomic)--> DiskBuffer
//!                                                                        |
//!                                   collector <--(QUIC, mTLS)-- Shipper <-+
//!                                             --(acknowledgements)------> delete batch
//! ```
//!
//! The tailer runs on a thread of its own (file reads and buffer writes block); the
//! shipper runs on tokio. They meet only at the [`buffer::DiskBuffer`]. The monitors a
//! collector assigns ([`monitors`]) run on tokio too and put their results into the
//! same buffer, so they travel like log lines.

pub mod backoff;
pub mod buffer;
pub mod identity;
mod memory;
pub mod metrics;
pub mod monitors;
pub mod reader;
pub mod shipper;
pub mod status;
pub mod tailer;
mod watch;

/// One line per input pattern whose directory does not exist (see
/// `watch::missing_directories`).
pub fn input_warnings(config: &AgentConfig) -> Vec<String> {
    watch::missing_directories(&config.inputs)
        .into_iter()
        .map(|(pattern, directory)| {
            format!(
                "input path {pattern:?}: directory {} does not exist; nothing is read from \
                 it until it is created",
                directory.display()
            )
        })
        .collect()
}

use anyhow::Context;
use buffer::DiskBuffer;
use garonne_common::config::AgentConfig;
use garonne_common::process::{Request, Signals};
use garonne_common::wire::{ALPN, Hello};
use metrics::AgentMetrics;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tailer::{Tailer, TailerSettings};

/// How one run of the agent ended.
enum Ending {
    Stop,
    Reload(Box<AgentConfig>),
}

/// Runs the agent until SIGTERM or SIGINT. SIGHUP re-reads the configuration from
/// `path`: a valid one is applied by stopping and restarting the reading and shipping
/// with it, reading on from the checkpoints, so nothing is lost or read twice; an
/// invalid one is reported and the running configuration is kept.
pub async fn run(path: &Path, config: AgentConfig) -> anyhow::Result<()> {
    let data_dir = config.agent.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
    let buffer = Arc::new(
        DiskBuffer::open(&data_dir.join("buffer"), config.buffer.max_bytes.0)
            .with_context(|| format!("cannot open the disk buffer in {}", data_dir.display()))?,
    );
    let metrics = Arc::new(AgentMetrics::default());
    let mut config = config;
    loop {
        match run_once(path, &config, &buffer, &metrics).await? {
            Ending::Stop => return Ok(()),
            Ending::Reload(new) => {
                buffer.set_capacity(new.buffer.max_bytes.0);
                config = *new;
                tracing::info!(config = %path.display(), "configuration reloaded");
            }
        }
    }
}

async fn run_once(
    path: &Path,
    config: &AgentConfig,
    buffer: &Arc<DiskBuffer>,
    metrics: &Arc<AgentMetrics>,
) -> anyhow::Result<Ending> {
    let host = config
        .agent
        .host_name
        .clone()
        .unwrap_or_else(garonne_common::process::host_name);
    let agent_id = config.agent.id.clone().unwrap_or_else(|| host.clone());
    let data_dir = &config.agent.data_dir;
    let new_batch = Arc::new(tokio::sync::Notify::new());
    buffer.reopen();
    tracing::info!(
        agent_id,
        pending_batches = buffer.pending_batches(),
        pending_bytes = buffer.pending_bytes(),
        "agent starting"
    );
    for warning in input_warnings(config) {
        tracing::warn!("{warning}");
    }

    let tls = garonne_common::tls::client_config(
        &config.collector.ca,
        &config.collector.cert,
        &config.collector.key,
        ALPN,
    )?;
    let assigned = Arc::new(monitors::AssignedMonitors::load(data_dir));
    let shipper = shipper::Shipper::new(
        shipper::ShipperSettings {
            addresses: config.collector.addresses.clone(),
            server_name: config.collector.server_name.clone(),
            tls,
            max_in_flight: config.collector.max_in_flight,
            hello: Hello {
                agent_id: agent_id.clone(),
                host_name: host.clone(),
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            assigned: assigned.clone(),
        },
        buffer.clone(),
        new_batch.clone(),
        metrics.clone(),
    )?;

    let results = Arc::new(monitors::ResultSink {
        agent_id: agent_id.clone(),
        host_name: host.clone(),
        buffer: buffer.clone(),
        new_batch: new_batch.clone(),
        metrics: metrics.clone(),
    });
    let settings = TailerSettings {
        agent_id,
        host_name: host,
        inputs: config.inputs.clone(),
        batch: config.batch.clone(),
        scan_interval: config.agent.scan_interval.0,
        poll_interval: config.agent.poll_interval.0,
        close_inactive: config.agent.close_inactive.0,
        max_open_files: config.agent.max_open_files,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, wakeups) = std::sync::mpsc::channel();
    let _watcher = watch::watch_inputs(&config.inputs, wake.clone());
    let tailer_thread = {
        let (buffer, stop, metrics) = (buffer.clone(), stop.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("tailer".into())
            .spawn(move || Tailer::new(settings, buffer, new_batch, metrics).run(&wakeups, &stop))?
    };
    let sync_thread = spawn_sync(buffer.clone(), config.buffer.sync_interval.0, stop.clone());
    let status_writer = tokio::spawn(status::write_periodically(
        data_dir.join(status::STATUS_FILE),
        buffer.clone(),
        metrics.clone(),
    ));
    let (shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let checking = tokio::spawn(monitors::run_monitors(
        assigned.subscribe(),
        results,
        shutdown.clone(),
    ));
    let shipping = tokio::spawn(shipper.run(shutdown));

    let ending = wait_for_ending(path, config).await;
    tracing::info!("agent stopping");
    stop.store(true, Ordering::Relaxed);
    buffer.close();
    let _ = wake.send(tailer::Wake::Lines);
    let tailer_result = tokio::task::spawn_blocking(move || tailer_thread.join()).await;
    let _ = shutdown_sender.send(true);
    let _ = checking.await;
    let _ = shipping.await;
    let _ = sync_thread.join();
    buffer.sync()?;
    status_writer.abort();
    status::write(&data_dir.join(status::STATUS_FILE), buffer, metrics, false);
    tracing::info!(
        lines_read = AgentMetrics::get(&metrics.lines_read),
        batches_acknowledged = AgentMetrics::get(&metrics.batches_acknowledged),
        pending_batches = buffer.pending_batches(),
        "agent stopped"
    );
    match tailer_result {
        Ok(Ok(Ok(()))) => Ok(ending),
        Ok(Ok(Err(error))) => Err(error.into()),
        _ => anyhow::bail!("the tailer thread panicked"),
    }
}

fn spawn_sync(
    buffer: Arc<DiskBuffer>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(interval);
            if let Err(error) = buffer.sync() {
                tracing::error!(%error, "disk buffer sync failed");
            }
        }
    })
}

/// Waits for SIGTERM or SIGINT (stop) or for SIGHUP with a valid new configuration.
async fn wait_for_ending(path: &Path, current: &AgentConfig) -> Ending {
    let Ok(mut signals) = Signals::register() else {
        tracing::error!("cannot listen for signals; stop the agent with SIGKILL");
        std::future::pending::<()>().await;
        return Ending::Stop;
    };
    loop {
        if signals.next().await == Request::Stop {
            return Ending::Stop;
        }
        match reload(path, current) {
            Ok(config) => return Ending::Reload(Box::new(config)),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"),
                    "configuration not reloaded, keeping the running one");
            }
        }
    }
}

fn reload(path: &Path, current: &AgentConfig) -> anyhow::Result<AgentConfig> {
    let config = AgentConfig::load(path)?;
    config.check_files(path)?;
    if config.agent.data_dir != current.agent.data_dir {
        anyhow::bail!(
            "agent.data_dir changed from {} to {}: that needs a restart",
            current.agent.data_dir.display(),
            config.agent.data_dir.display()
        );
    }
    Ok(config)
}
