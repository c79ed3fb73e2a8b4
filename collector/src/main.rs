use anyhow::Context;
use clap::{Parser, Subcommand};
use garonne_collector::parse::{Format, ParseContext};
use garonne_collector::semantic::{self, Semantic};
use garonne_collector::server::{self, Collector, CollectorMetrics};
use garonne_collector::store::{Store, elastic::ElasticStore, embedded::EmbeddedStore};
use garonne_collector::{alerts, api, certs, pipeline, probes};
use garonne_common::config::{CollectorConfig, Sink};
use garonne_common::process::{Request, Signals};
use garonne_common::units::HumanDuration;
use garonne_common::wire::ALPN;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Batches are parsed on blocking threads and their documents freed elsewhere; glibc's
/// allocator spends much of the collector's time consolidating such cross-thread frees
/// (see BENCHMARKS.md), which mimalloc handles without contention.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Garonne collector: receives logs from Garonne agents, parses and indexes them.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const DEFAULT_CONFIG: &str = "/etc/garonne/collector.toml";

#[derive(Subcommand)]
enum Command {
    /// Serve agents until stopped.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a configuration file and the files it names, then exit.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Availability monitors: status and import.
    Monitors {
        #[command(subcommand)]
        command: MonitorsCommand,
    },
    /// Certificates for mutual TLS between agents and collectors.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Parse raw lines (from FILE or standard input) and print one ECS document per line,
    /// through the same code the server uses.
    Parse {
        /// apache.access, apache.error, syslog, json or plain.
        #[arg(long)]
        module: String,
        /// IANA zone for timestamps without one (default: this host's zone).
        #[arg(long)]
        timezone: Option<String>,
        file: Option<PathBuf>,
    },
    /// Log templates: mine a file, or list the collector's.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Templates nearest in meaning to free TEXT or to the event `--event ID`, with
    /// scores, counts, hosts and example events; one JSON object per result.
    Similar {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Id of a stored event (`_id`) to find templates like it.
        #[arg(long, conflicts_with = "text", required_unless_present = "text")]
        event: Option<String>,
        text: Option<String>,
    },
    /// Alerts raised by the `[[alert]]` rules.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Search the store the configuration selects. QUERY is free text and field:value
    /// terms; `*` matches everything. A query may start with `-` (an exclusion), so help
    /// is `--help` only.
    #[command(disable_help_flag = true)]
    Search {
        /// Print help.
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print only the number of matching documents.
        #[arg(long)]
        count: bool,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print only these fields (comma-separated dotted paths) of each document.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Only documents from this time on: a duration ago (15m, 2h, 7d) or a time
        /// (2026-12-04, 2026-12-04T10:00:00Z; UTC without an offset).
        #[arg(long)]
        since: Option<String>,
        /// Only documents before this time, in the same forms as --since.
        #[arg(long)]
        until: Option<String>,
        #[arg(allow_hyphen_values = true)]
        query: String,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Learn templates from lines (FILE or standard input) and print one JSON object per
    /// line with `template_id` and `template` (the template's final text).
    Mine {
        /// Loghub-style header layout, e.g. `<Date> <Time> <Level> <Component>: <Content>`;
        /// `<Content>` is the message mined. Lines that do not fit are mined whole.
        #[arg(long)]
        header_format: Option<String>,
        file: Option<PathBuf>,
    },
    /// The collector's saved templates with counts, first and last seen, most
    /// frequent first.
    List {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Alerts firing or pending, then the recently resolved ones, from the state the
    /// collector keeps in its data_dir.
    List {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// One JSON object per alert.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MonitorsCommand {
    /// Each monitor's state, since when, and uptime over 24 h, 7 d and 30 d, from the
    /// state the collector keeps in its data_dir.
    Status {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// One JSON object per monitor.
        #[arg(long)]
        json: bool,
    },
    /// Convert an Uptime Kuma backup's HTTP, keyword, JSON-query and TCP monitors into
    /// [[monitor]] tables (standard output); what cannot be converted is listed on
    /// standard error.
    ImportUptimeKuma { backup: PathBuf },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write ca.pem, collector.pem/.key (for the given names) and agent.pem/.key.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Names (DNS or IP) agents use to reach the collector.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Name in the agent certificate.
        #[arg(long, default_value = "garonne-agent")]
        agent_name: String,
    },
}

fn main() -> std::process::ExitCode {
    garonne_common::process::exit_status(run_command())
}

fn run_command() -> anyhow::Result<()> {
    garonne_common::tls::install_crypto_provider();
    garonne_common::process::init_logging();
    match Cli::parse().command {
        Command::CheckConfig { config } => {
            check_configuration(&config)?;
            println!("{}: configuration is valid", config.display());
            Ok(())
        }
        Command::Certs {
            command:
                CertsCommand::Init {
                    dir,
                    names,
                    agent_name,
                },
        } => {
            certs::init(&dir, &names, &agent_name)?;
            println!("wrote {} in {}", certs::FILES.join(", "), dir.display());
            Ok(())
        }
        Command::Parse {
            module,
            timezone,
            file,
        } => parse_command(&module, timezone.as_deref(), file.as_deref()),
        Command::Run { config } => runtime()?.block_on(run_until_stopped(&config)),
        Command::Alerts {
            command: AlertsCommand::List { config, json },
        } => {
            let loaded = CollectorConfig::load(&config)?;
            alerts::print_list(&loaded, json, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Templates { command } => templates_command(command),
        Command::Monitors { command } => monitors_command(command),
        Command::Similar {
            config,
            limit,
            event,
            text,
        } => {
            let query = match (event, text) {
                (Some(id), _) => semantic::cli::SimilarQuery::Event(id),
                (None, text) => semantic::cli::SimilarQuery::Text(text.unwrap_or_default()),
            };
            runtime()?.block_on(similar(&config, query, limit))
        }
        Command::Search {
            help: _,
            config,
            count,
            limit,
            fields,
            since,
            until,
            query,
        } => {
            let query = with_time_range(&query, since.as_deref(), until.as_deref())?;
            runtime()?.block_on(search(&config, count, limit, &fields, &query))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn parse_context(timezone: Option<&str>) -> anyhow::Result<ParseContext> {
    let zone = match timezone {
        Some(name) => jiff::tz::TimeZone::get(name).with_context(|| {
            format!("collector.timezone (or --timezone): unknown time zone {name:?}")
        })?,
        None => jiff::tz::TimeZone::system(),
    };
    Ok(ParseContext::new(zone))
}

fn parse_command(module: &str, timezone: Option<&str>, file: Option<&Path>) -> anyhow::Result<()> {
    let format = Format::from_module(module).with_context(|| {
        let known: Vec<&str> = Format::ALL.iter().map(|f| f.dataset()).collect();
        format!(
            "unknown module {module:?}; expected one of {}",
            known.join(", ")
        )
    })?;
    let module = garonne_common::Module::from_name(format.dataset())
        .unwrap_or(garonne_common::Module::Plain);
    let context = parse_context(timezone)?;
    let input: Box<dyn BufRead> = match file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let path = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "-".into());
    let identity = garonne_common::FileIdentity {
        device: 0,
        inode: 0,
        fingerprint: 0,
    };
    let mut chunk = garonne_common::FileChunk::new(
        path,
        identity,
        module,
        jiff::Timestamp::now().as_millisecond(),
    );
    let mut offset = 0u64;
    for line in input.split(b'\n') {
        let line = line?;
        let length = line.len() as u64 + 1;
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        chunk.push(offset, length, text, garonne_common::LineFlags::default());
        offset += length;
    }
    let host = garonne_common::process::host_name();
    let batch = garonne_common::Batch {
        agent_id: host.clone(),
        host_name: host,
        chunks: vec![chunk],
    };
    let (documents, _) = pipeline::build_documents(&batch, &context);
    let mut stdout = std::io::stdout().lock();
    for document in documents {
        serde_json::to_writer(&mut stdout, &document.body)?;
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

fn open_store(config: &CollectorConfig, read_only: bool) -> anyhow::Result<Store> {
    if config.collector.sink == Sink::Discard && !read_only {
        return Ok(Store::Discard);
    }
    Ok(match &config.elasticsearch {
        Some(elasticsearch) => Store::Elastic(ElasticStore::connect(elasticsearch)?),
        None => {
            let path = config.collector.data_dir.join("index");
            Store::Embedded(if read_only {
                EmbeddedStore::open_read_only(&path)?
            } else {
                EmbeddedStore::open(&path)?
            })
        }
    })
}

/// Serves until SIGTERM or SIGINT. SIGHUP re-reads the configuration: a valid one is
/// applied by stopping gracefully and serving again with it (agents reconnect and
/// resend what was not acknowledged, so nothing is lost); an invalid one is reported
/// and the running configuration kept.
async fn run_until_stopped(path: &Path) -> anyhow::Result<()> {
    while run(path).await? == Ending::Reload {
        tracing::info!(config = %path.display(), "configuration reloaded");
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Stop,
    Reload,
}

async fn run(path: &Path) -> anyhow::Result<Ending> {
    let config = CollectorConfig::load(path)?;
    config.check_files(path)?;
    let section = &config.collector;
    let (Some(cert), Some(key), Some(client_ca)) =
        (&section.cert, &section.key, &section.client_ca)
    else {
        anyhow::bail!("collector.cert, collector.key and collector.client_ca are required");
    };
    std::fs::create_dir_all(&section.data_dir)
        .with_context(|| format!("cannot create data_dir {}", section.data_dir.display()))?;
    let store = open_store(&config, false)?;
    if let Store::Elastic(elastic) = &store {
        elastic.install_template().await?;
    }
    let tls = garonne_common::tls::server_config(cert, key, client_ca, ALPN)?;
    let (endpoint, bound) = server::bind(section.listen, tls)?;
    tracing::info!(listen = %bound, store = %store.describe(), "collector listening");
    let semantic = start_semantic(&config)?;
    // The template observer comes first: later observers see `log.template.*`.
    let mut observers: Vec<Arc<dyn garonne_collector::observe::DocumentObserver>> = Vec::new();
    if let Some(semantic) = &semantic {
        observers.push(semantic.observer());
    }
    let context = parse_context(section.timezone.as_deref())?;
    let (notifier, monitors) = probes_config(&config, path)?;
    let monitors = Arc::new(probes::Registry::load(monitors, &section.data_dir));
    // No novelty scorer yet: `novelty` rules are reported inactive at start.
    let alerting = alerts::start(
        &config,
        path,
        context.local_zone.clone(),
        Arc::new(notifier.clone()),
        semantic.as_ref().map(|semantic| semantic.novelty_scorer()),
    )?;
    observers.push(alerting.importance.clone());
    observers.push(alerting.service.observer());
    let collector = Arc::new(Collector {
        store,
        context,
        metrics: CollectorMetrics::default(),
        observers,
        continuity: Default::default(),
        gap_listener: Some(Box::new({
            let service = alerting.service.clone();
            move |gap: &garonne_collector::continuity::Gap| {
                service.report_gap(&gap.agent_id, &gap.path, gap.start..gap.end);
            }
        })),
        agent_monitors: Arc::new(probes::agents::AgentResults::new(
            monitors.clone(),
            notifier.clone(),
        )),
        batch_slots: server::batch_slots(),
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let api = api::ApiState {
        collector: collector.clone(),
        semantic: semantic.clone(),
    };
    let api_listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("cannot listen on api.listen {}", config.api.listen))?;
    tracing::info!(listen = %api_listener.local_addr()?, "api listening");
    let router = api::router(api).merge(probes::api::routes(monitors.clone()));
    let api_task = tokio::spawn(api::serve(api_listener, router, shutdown.clone()));
    let probes_task = tokio::spawn(probes::run_monitors(
        monitors,
        collector.clone(),
        notifier,
        shutdown.clone(),
    ));
    let alerts_task = tokio::spawn(alerting.service.run(collector.clone(), shutdown.clone()));
    let serving = tokio::spawn(server::serve(
        endpoint,
        collector.clone(),
        section.max_connections,
        shutdown,
    ));
    let ending = wait_for_ending(path).await;
    tracing::info!("collector stopping");
    let _ = stop.send(true);
    let _ = serving.await;
    let _ = api_task.await;
    let _ = alerts_task.await;
    if let Ok(Err(error)) = probes_task.await {
        tracing::error!(%error, "monitors failed");
    }
    if let Some(semantic) = &semantic {
        semantic.shutdown().await;
    }
    tracing::info!("collector stopped");
    Ok(ending)
}

/// `[[notify]]` and `[[monitor]]`, checked together.
fn probes_config(
    config: &CollectorConfig,
    path: &Path,
) -> anyhow::Result<(
    garonne_collector::notify::Notifier,
    Vec<probes::MonitorConfig>,
)> {
    probes::check_config(config).map_err(|problems| {
        garonne_common::config::ConfigError {
            path: path.to_path_buf(),
            problems,
        }
        .into()
    })
}

fn monitors_command(command: MonitorsCommand) -> anyhow::Result<()> {
    match command {
        MonitorsCommand::Status { config: path, json } => {
            let config = CollectorConfig::load(&path)?;
            let (_, monitors) = probes_config(&config, &path)?;
            let registry = probes::Registry::load(monitors, &config.collector.data_dir);
            let now = jiff::Timestamp::now();
            let views = registry.views(now);
            let mut stdout = std::io::stdout().lock();
            if json {
                for view in &views {
                    serde_json::to_writer(&mut stdout, view)?;
                    stdout.write_all(b"\n")?;
                }
            } else {
                stdout.write_all(probes::status_table(&views, now).as_bytes())?;
            }
            Ok(())
        }
        MonitorsCommand::ImportUptimeKuma { backup } => {
            let text = std::fs::read_to_string(&backup)
                .with_context(|| format!("cannot read {}", backup.display()))?;
            let report = probes::import::import_uptime_kuma(&text).map_err(|reason| {
                anyhow::anyhow!("cannot import {}: {reason}", backup.display())
            })?;
            print!("{}", report.toml);
            eprintln!("{} monitors converted", report.converted);
            for skipped in &report.skipped {
                eprintln!("not converted: {skipped}");
            }
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            Ok(())
        }
    }
}

/// The query with `--since` and `--until` added as `@timestamp` range terms; a
/// duration counts back from now.
fn with_time_range(
    query: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> anyhow::Result<String> {
    let time = |option: &str, text: &str| -> anyhow::Result<String> {
        if HumanDuration::parse(text).is_ok() {
            return Ok(format!("now-{text}"));
        }
        garonne_collector::query::parse_time(text, jiff::Timestamp::now())
            .map_err(|reason| anyhow::anyhow!("{option}: {reason}, or a duration such as 15m"))?;
        Ok(text.to_string())
    };
    let mut query = query.to_string();
    if let Some(since) = since {
        query.push_str(&format!(" @timestamp:>={}", time("--since", since)?));
    }
    if let Some(until) = until {
        query.push_str(&format!(" @timestamp:<{}", time("--until", until)?));
    }
    Ok(query)
}

async fn search(
    path: &Path,
    count: bool,
    limit: usize,
    fields: &[String],
    query: &str,
) -> anyhow::Result<()> {
    let config = CollectorConfig::load(path)?;
    let store = open_store(&config, true)?;
    if let Store::Elastic(elastic) = &store {
        elastic.refresh().await?;
    }
    if count {
        println!("{}", store.count(query).await?);
        return Ok(());
    }
    let result = store.search(query, limit).await?;
    let mut stdout = std::io::stdout().lock();
    for document in &result.documents {
        if fields.is_empty() {
            serde_json::to_writer(&mut stdout, document)?;
        } else {
            serde_json::to_writer(&mut stdout, &select_fields(document, fields))?;
        }
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    eprintln!(
        "{} of {} matching documents shown",
        result.documents.len(),
        result.total
    );
    Ok(())
}

/// Loads the template miner's state and starts its tasks, unless `[templates]` turns
/// them off.
fn start_semantic(config: &CollectorConfig) -> anyhow::Result<Option<Arc<Semantic>>> {
    let semantic_config = semantic::cli::semantic_config(config)?;
    if !semantic_config.enabled {
        return Ok(None);
    }
    let semantic = Semantic::open(semantic_config)?;
    semantic.start()?;
    Ok(Some(Arc::new(semantic)))
}

fn templates_command(command: TemplatesCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        TemplatesCommand::Mine {
            header_format,
            file,
        } => {
            let input: Box<dyn BufRead> = match &file {
                Some(path) => Box::new(std::io::BufReader::new(
                    std::fs::File::open(path)
                        .with_context(|| format!("cannot open {}", path.display()))?,
                )),
                None => Box::new(std::io::stdin().lock()),
            };
            semantic::cli::mine(header_format.as_deref(), input, &mut stdout)
        }
        TemplatesCommand::List { config, limit } => {
            let config = CollectorConfig::load(&config)?;
            semantic::cli::list(&config, limit, &mut stdout)
        }
    }
}

async fn similar(
    path: &Path,
    query: semantic::cli::SimilarQuery,
    limit: usize,
) -> anyhow::Result<()> {
    let config = CollectorConfig::load(path)?;
    let store = open_store(&config, true)?;
    if let Store::Elastic(elastic) = &store {
        elastic.refresh().await?;
    }
    let mut stdout = std::io::stdout().lock();
    semantic::cli::similar(&config, &store, query, limit, &mut stdout).await
}

/// The named dotted-path fields of a document, as a flat object.
fn select_fields(document: &serde_json::Value, fields: &[String]) -> serde_json::Value {
    let mut selected = serde_json::Map::new();
    for field in fields {
        let value = field
            .split('.')
            .try_fold(document, |value, key| value.get(key));
        if let Some(value) = value {
            selected.insert(field.clone(), value.clone());
        }
    }
    serde_json::Value::Object(selected)
}

/// Waits for SIGTERM or SIGINT, or for SIGHUP with a configuration that checks out.
async fn wait_for_ending(path: &Path) -> Ending {
    let Ok(mut signals) = Signals::register() else {
        tracing::error!("cannot listen for signals; stop the collector with SIGKILL");
        std::future::pending::<()>().await;
        return Ending::Stop;
    };
    loop {
        if signals.next().await == Request::Stop {
            return Ending::Stop;
        }
        match check_configuration(path) {
            Ok(()) => return Ending::Reload,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"),
                    "configuration not reloaded, keeping the running one");
            }
        }
    }
}

/// Everything `check-config` checks; a reload is refused unless it all passes.
fn check_configuration(path: &Path) -> anyhow::Result<()> {
    let config = CollectorConfig::load(path)?;
    alerts::validate(&config, path)?;
    parse_context(config.collector.timezone.as_deref())?;
    config.check_files(path)?;
    probes_config(&config, path)?;
    Ok(())
}
