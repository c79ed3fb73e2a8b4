//! Shipping buffered batches to a collector over QUIC.
//!
//! One connection at a time, to the first collector address that answers; on failure
//! the next address is tried after a jittered backoff. Every batch travels on its own
//! stream and waits for its own result (see `garonne_common::wire`), with up to
//! `max_in_flight` batches under way. A batch leaves the disk buffer only when the
//! collector accepted it; after a reconnect, everything not accepted is sent again.
//! Each handshake also brings the monitors the collector assigns to this agent, handed
//! to [`AssignedMonitors`] (see [`crate::monitors`]).

use crate::backoff::{Backoff, jittered};
use crate::buffer::{DiskBuffer, StoredBatch};
use crate::metrics::AgentMetrics;
use crate::monitors::AssignedMonitors;
use garonne_common::probe::Assignment;
use garonne_common::wire::{self, BatchResult, FrameKind, Hello, Welcome, WireError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight batches may take to be acknowledged at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("cannot resolve collector address {address}: {reason}")]
    Resolve { address: String, reason: String },
    #[error("cannot connect to collector {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("connection to the collector failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream to the collector failed: {0}")]
    Stream(String),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
}

pub struct ShipperSettings {
    pub addresses: Vec<String>,
    pub server_name: String,
    pub tls: rustls::ClientConfig,
    pub max_in_flight: usize,
    pub hello: Hello,
    /// Where the monitors a collector assigns at each connection go.
    pub assigned: Arc<AssignedMonitors>,
}

pub struct Shipper {
    settings: ShipperSettings,
    client_config: quinn::ClientConfig,
    buffer: Arc<DiskBuffer>,
    new_batches: Arc<Notify>,
    metrics: Arc<AgentMetrics>,
}

impl Shipper {
    pub fn new(
        settings: ShipperSettings,
        buffer: Arc<DiskBuffer>,
        new_batches: Arc<Notify>,
        metrics: Arc<AgentMetrics>,
    ) -> Result<Shipper, ShipError> {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(settings.tls.clone())
            .map_err(|error| ShipError::Connect {
                address: String::new(),
                reason: error.to_string(),
            })?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(KEEP_ALIVE));
        transport.max_idle_timeout(Some(
            IDLE_TIMEOUT.try_into().unwrap_or(quinn::VarInt::MAX.into()),
        ));
        client_config.transport_config(Arc::new(transport));
        Ok(Shipper {
            settings,
            client_config,
            buffer,
            new_batches,
            metrics,
        })
    }

    /// Connects, ships, reconnects; returns when `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut attempt = 0usize;
        while !*shutdown.borrow() {
            let address = &self.settings.addresses[attempt % self.settings.addresses.len()];
            // A stop does not wait for a connection attempt to time out.
            let connected = tokio::select! {
                connected = self.connect(address) => connected,
                _ = shutdown.changed() => return,
            };
            match connected {
                Ok((endpoint, connection)) => {
                    backoff.reset();
                    AgentMetrics::add(&self.metrics.connections, 1);
                    self.metrics.connected.store(1, Ordering::Relaxed);
                    tracing::info!(collector = %address, "connected to collector");
                    let result = self.ship_on(&connection, &mut shutdown).await;
                    self.metrics.connected.store(0, Ordering::Relaxed);
                    connection.close(0u32.into(), b"agent closing");
                    endpoint.wait_idle().await;
                    match result {
                        Ok(()) => return,
                        Err(error) => {
                            tracing::warn!(
                                collector = %address,
                                %error,
                                "lost collector connection",
                            )
                        }
                    }
                }
                Err(error) => {
                    attempt += 1;
                    let delay = jittered(&mut backoff);
                    tracing::warn!(
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "collector unreachable",
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }

    async fn connect(
        &self,
        address: &str,
    ) -> Result<(quinn::Endpoint, quinn::Connection), ShipError> {
        let fail = |reason: String| ShipError::Connect {
            address: address.to_string(),
            reason,
        };
        let remote = resolve(address).await?;
        let local: SocketAddr = if remote.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let mut endpoint =
            quinn::Endpoint::client(local).map_err(|error| fail(error.to_string()))?;
        endpoint.set_default_client_config(self.client_config.clone());
        let connecting = endpoint
            .connect(remote, &self.settings.server_name)
            .map_err(|error| fail(error.to_string()))?;
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| fail(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|error| fail(error.to_string()))?;
        let (mut send, mut receive) = connection.open_bi().await?;
        wire::write_message(&mut send, FrameKind::Hello, &self.settings.hello).await?;
        let welcome: Welcome = wire::read_message(&mut receive, FrameKind::Welcome).await?;
        tracing::debug!(collector_version = %welcome.collector_version, "collector welcomed agent");
        match read_assignment(&mut receive).await {
            Ok(Some(assignment)) => {
                if let Err(error) = self.settings.assigned.replace(assignment) {
                    tracing::warn!(%error, "cannot save the monitor assignment, keeping the last one");
                }
            }
            Ok(None) => {
                tracing::debug!("collector assigns no monitors, keeping the last assignment")
            }
            Err(error) => {
                tracing::warn!(%error, "monitor assignment unreadable, keeping the last one")
            }
        }
        Ok((endpoint, connection))
    }

    /// Sends pending batches on one connection until it fails or shutdown is asked.
    async fn ship_on(
        &self,
        connection: &quinn::Connection,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ShipError> {
        let mut cursor: Option<u64> = None;
        let mut in_flight: JoinSet<(u64, Result<BatchResult, ShipError>)> = JoinSet::new();
        loop {
            while in_flight.len() < self.settings.max_in_flight {
                let Some(batch) = self.buffer.next_after(cursor)? else {
                    break;
                };
                cursor = Some(batch.sequence);
                in_flight.spawn(send_with_retries(connection.clone(), batch));
            }
            tokio::select! {
                _ = self.new_batches.notified(), if in_flight.len() < self.settings.max_in_flight => {}
                Some(joined) = in_flight.join_next() => {
                    let (sequence, result) = joined.map_err(|error| ShipError::Stream(error.to_string()))?;
                    self.settle(sequence, result?)?;
                }
                _ = shutdown.changed() => return self.drain(in_flight).await,
                error = connection.closed() => return Err(error.into()),
            }
        }
    }

    /// Records a batch's final result.
    fn settle(&self, sequence: u64, result: BatchResult) -> Result<(), ShipError> {
        match result {
            BatchResult::Accepted { events } => {
                tracing::trace!(sequence, events, "batch acknowledged");
                AgentMetrics::add(&self.metrics.batches_acknowledged, 1);
            }
            BatchResult::Rejected { reason } => {
                tracing::error!(
                    sequence,
                    %reason,
                    "collector refused a batch for good, dropping it",
                );
                AgentMetrics::add(&self.metrics.batches_rejected, 1);
            }
            BatchResult::RetryLater { .. } => return Ok(()),
        }
        self.buffer.acknowledge(sequence)?;
        Ok(())
    }

    async fn drain(
        &self,
        mut in_flight: JoinSet<(u64, Result<BatchResult, ShipError>)>,
    ) -> Result<(), ShipError> {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, in_flight.join_next()).await
        {
            if let Ok((sequence, Ok(result))) = joined {
                self.settle(sequence, result)?;
            }
        }
        Ok(())
    }
}

/// Sends one batch; while the collector answers "retry later", waits and sends again.
async fn send_with_retries(
    connection: quinn::Connection,
    batch: StoredBatch,
) -> (u64, Result<BatchResult, ShipError>) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
    loop {
        match send_batch(&connection, batch.payload.clone()).await {
            Ok(BatchResult::RetryLater { reason }) => {
                let delay = jittered(&mut backoff);
                tracing::debug!(
                    sequence = batch.sequence,
                    %reason,
                    "collector asked to retry batch",
                );
                tokio::time::sleep(delay).await;
            }
            other => return (batch.sequence, other),
        }
    }
}

async fn send_batch(
    connection: &quinn::Connection,
    payload: bytes::Bytes,
) -> Result<BatchResult, ShipError> {
    let header = wire::frame_header(FrameKind::Batch, payload.len())?;
    let (mut send, mut receive) = connection.open_bi().await?;
    // QUIC keeps the chunks until the collector has them, so the payload is shared
    // with the stream rather than copied into it.
    send.write_all_chunks(&mut [bytes::Bytes::copy_from_slice(&header), payload])
        .await
        .map_err(|error| ShipError::Stream(error.to_string()))?;
    send.finish()
        .map_err(|error| ShipError::Stream(error.to_string()))?;
    Ok(wire::read_message(&mut receive, FrameKind::BatchResult).await?)
}

/// The assignment that follows the welcome; `None` from a collector that predates
/// assignments and ends the control stream after its welcome.
async fn read_assignment(receive: &mut quinn::RecvStream) -> Result<Option<Assignment>, ShipError> {
    let read = tokio::time::timeout(CONNECT_TIMEOUT, wire::read_frame(receive)).await;
    let Ok(read) = read else {
        return Err(ShipError::Stream(format!(
            "no monitor assignment within {CONNECT_TIMEOUT:?}"
        )));
    };
    match read {
        Ok((FrameKind::Assignment, payload)) => Ok(Some(
            postcard::from_bytes(&payload).map_err(WireError::from)?,
        )),
        Ok((kind, _)) => Err(ShipError::Stream(format!(
            "expected a monitor assignment after the welcome, got a {kind:?} frame"
        ))),
        Err(WireError::Io(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn resolve(address: &str) -> Result<SocketAddr, ShipError> {
    let fail = |reason: String| ShipError::Resolve {
        address: address.to_string(),
        reason,
    };
    let mut addresses = tokio::net::lookup_host(address)
        .await
        .map_err(|error| fail(error.to_string()))?;
    addresses
        .next()
        .ok_or_else(|| fail("no address found".to_string()))
}
