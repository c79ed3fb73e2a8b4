//! The wire protocol between agent and collector.
//!
//! # Framing
//!
//! Every message is one frame:
//!
//! ```text
//! +---------+------+----------------+------------------+
//! | version | kind | length (u32 BE)| payload          |
//! | 1 byte  | 1 B  | 4 bytes        | `length` bytes   |
//! +---------+------+----------------+------------------+
//! ```
//!
//! `version` is [`PROTOCOL_VERSION`]; a peer refuses frames of another version rather
//! than guess at their layout. `length` is capped by [`MAX_FRAME_BYTES`].
//!
//! # Streams
//!
//! An agent opens one QUIC connection to a collector. Its first bidirectional stream is
//! the control stream: the agent sends [`Hello`], the collector answers [`Welcome`]
//! and then an `Assignment` frame: the monitors this agent runs (a postcard
//! `probe::Assignment`, see the `probes` feature). A collector that predates
//! assignments ends the stream after `Welcome`; the agent then keeps the monitors it
//! was last assigned.
//! Every batch then travels on a bidirectional stream of its own: one `Batch` frame from
//! the agent, one [`BatchResult`] frame back. QUIC multiplexes those streams, so many
//! batches are in flight at once without head-of-line blocking, and a result always
//! belongs to the batch sent on its stream.
//!
//! # Payloads
//!
//! Control payloads are postcard-encoded. A batch payload is a postcard-encoded
//! [`Batch`] compressed with zstd, produced once by the agent, stored as is in its disk
//! buffer and sent unchanged, so a replay costs no recompression. The collector refuses
//! payloads that decompress beyond [`MAX_BATCH_DECODED_BYTES`].

use crate::event::Batch;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Version byte at the start of every frame and of every batch stored on disk.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest frame either side accepts, header excluded.
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Largest size a batch may decompress to.
pub const MAX_BATCH_DECODED_BYTES: usize = 256 * 1024 * 1024;

/// ALPN protocol name negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"garonne/1";

/// zstd level used for batches: level 1 compresses Apache logs about 8:1 at several
/// hundred MiB/s per core; higher levels cost far more CPU for a few percent.
pub const ZSTD_LEVEL: i32 = 1;

const HEADER_BYTES: usize = 6;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Hello = 1,
    Welcome = 2,
    Batch = 3,
    BatchResult = 4,
    Assignment = 5,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            1 => FrameKind::Hello,
            2 => FrameKind::Welcome,
            3 => FrameKind::Batch,
            4 => FrameKind::BatchResult,
            5 => FrameKind::Assignment,
            _ => return None,
        })
    }
}

/// The agent's first message on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub agent_id: String,
    pub host_name: String,
    pub agent_version: String,
}

/// The collector's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub collector_version: String,
}

/// The collector's answer to one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchResult {
    /// Every event of the batch is durable on the collector's side.
    Accepted { events: u32 },
    /// The collector could not make the batch durable now; the agent keeps it and
    /// sends it again later.
    RetryLater { reason: String },
    /// The batch can never be accepted (it does not decode); retrying cannot help.
    Rejected { reason: String },
}

/// Errors of framing and payload decoding.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection i/o failed: {}", crate::with_causes(.0))]
    Io(#[from] std::io::Error),
    #[error("frame version {found} is not supported (this build speaks {PROTOCOL_VERSION})")]
    Version { found: u8 },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("expected a {expected:?} frame, got {found:?}")]
    UnexpectedKind {
        expected: FrameKind,
        found: FrameKind,
    },
    #[error("frame of {length} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    FrameTooLarge { length: usize },
    #[error(
        "batch decompresses beyond the limit of {MAX_BATCH_DECODED_BYTES} bytes or is corrupt: {0}"
    )]
    Decompress(std::io::Error),
    #[error("payload does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// Encodes and compresses a batch into the payload that is buffered and sent.
pub fn encode_batch(batch: &Batch) -> Result<Vec<u8>, WireError> {
    Ok(BatchEncoder::default().encode(batch)?.to_vec())
}

/// Encodes batch after batch, keeping its buffers and its zstd context from one batch
/// to the next: an agent shipping at full rate then allocates nothing per batch.
#[derive(Default)]
pub struct BatchEncoder {
    plain: Vec<u8>,
    compressed: Vec<u8>,
    /// Made by the first batch.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl BatchEncoder {
    /// The payload of `batch`, valid until the next call.
    pub fn encode(&mut self, batch: &Batch) -> Result<&[u8], WireError> {
        self.plain.clear();
        self.plain = postcard::to_extend(batch, std::mem::take(&mut self.plain))?;
        let compressor = match &mut self.compressor {
            Some(compressor) => compressor,
            None => self
                .compressor
                .insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(WireError::Io)?),
        };
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(self.plain.len()));
        compressor
            .compress_to_buffer(&self.plain, &mut self.compressed)
            .map_err(WireError::Io)?;
        Ok(&self.compressed)
    }

    /// Frees the buffers and the zstd context; the next batch makes them again.
    pub fn release(&mut self) {
        *self = BatchEncoder::default();
    }

    /// Whether it keeps buffers or a zstd context from an earlier batch.
    pub fn holds_memory(&self) -> bool {
        self.compressor.is_some() || self.plain.capacity() > 0 || self.compressed.capacity() > 0
    }
}

/// Decompresses and decodes a batch payload, refusing oversized output.
pub fn decode_batch(payload: &[u8]) -> Result<Batch, WireError> {
    let plain =
        zstd::bulk::decompress(payload, MAX_BATCH_DECODED_BYTES).map_err(WireError::Decompress)?;
    Ok(postcard::from_bytes(&plain)?)
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    kind: FrameKind,
    payload: &[u8],
) -> Result<(), WireError> {
    writer
        .write_all(&frame_header(kind, payload.len())?)
        .await?;
    writer.write_all(payload).await?;
    Ok(())
}

/// The header of a frame whose payload is `length` bytes, for writers that send the
/// payload themselves (the agent hands its batches to QUIC without copying them).
pub fn frame_header(kind: FrameKind, length: usize) -> Result<[u8; HEADER_BYTES], WireError> {
    if length > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { length });
    }
    let mut header = [0u8; HEADER_BYTES];
    header[0] = PROTOCOL_VERSION;
    header[1] = kind as u8;
    header[2..].copy_from_slice(&(length as u32).to_be_bytes());
    Ok(header)
}

/// Reads one frame, checking its version and size before reading the payload.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(FrameKind, Vec<u8>), WireError> {
    let mut header = [0u8; HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    if header[0] != PROTOCOL_VERSION {
        return Err(WireError::Version { found: header[0] });
    }
    let kind = FrameKind::from_byte(header[1]).ok_or(WireError::UnknownKind(header[1]))?;
    let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { length });
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    Ok((kind, payload))
}

/// Writes a postcard-encoded control message.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    kind: FrameKind,
    message: &T,
) -> Result<(), WireError> {
    let payload = postcard::to_stdvec(message)?;
    write_frame(writer, kind, &payload).await
}

/// Reads a control message of the expected kind.
pub async fn read_message<R: AsyncRead + Unpin, T: DeserializeOwned>(
    reader: &mut R,
    expected: FrameKind,
) -> Result<T, WireError> {
    let (kind, payload) = read_frame(reader).await?;
    if kind != expected {
        return Err(WireError::UnexpectedKind {
            expected,
            found: kind,
        });
    }
    Ok(postcard::from_bytes(&payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_is_reported_with_its_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection lost")]
        struct Lost(#[source] std::io::Error);
        let cause = std::io::Error::other("closed by peer: certificate unknown");
        let error = WireError::from(std::io::Error::other(Lost(cause)));
        assert_eq!(
            error.to_string(),
            "connection i/o failed: connection lost: closed by peer: certificate unknown"
        );
    }
    use crate::event::{FileChunk, FileIdentity, LineFlags, Module};

    fn sample_batch() -> Batch {
        let mut chunk = FileChunk::new(
            "/var/log/apache2/access.log".into(),
            FileIdentity {
                device: 1,
                inode: 2,
                fingerprint: 3,
            },
            Module::ApacheAccess,
            1_700_000_000_000,
        );
        for index in 0..100u64 {
            let text = format!("line number {index:07}");
            chunk.push(index * 20, 20, text.as_bytes(), LineFlags::default());
        }
        Batch {
            agent_id: "web1".into(),
            host_name: "web1.example.org".into(),
            chunks: vec![chunk],
        }
    }

    #[test]
    fn an_encoder_reused_across_batches_encodes_each_like_a_fresh_one() {
        let mut encoder = BatchEncoder::default();
        for lines in [3u64, 500, 0, 1] {
            let mut chunk = FileChunk::new(
                "/var/log/app.log".into(),
                FileIdentity {
                    device: 1,
                    inode: lines,
                    fingerprint: 7,
                },
                Module::Plain,
                0,
            );
            for offset in 0..lines {
                chunk.push(offset * 9, 9, b"line text", LineFlags::default());
            }
            let batch = Batch {
                agent_id: "web1".into(),
                host_name: "web1".into(),
                chunks: vec![chunk],
            };
            let payload = encoder.encode(&batch).unwrap().to_vec();
            assert_eq!(payload, encode_batch(&batch).unwrap());
            assert_eq!(decode_batch(&payload).unwrap(), batch);
        }
    }

    #[test]
    fn batch_round_trips_through_compression() {
        let batch = sample_batch();
        let payload = encode_batch(&batch).unwrap();
        assert_eq!(decode_batch(&payload).unwrap(), batch);
    }

    #[test]
    fn corrupt_payload_is_an_error() {
        let mut payload = encode_batch(&sample_batch()).unwrap();
        let middle = payload.len() / 2;
        payload[middle] ^= 0xff;
        payload.truncate(middle + 1);
        assert!(decode_batch(&payload).is_err());
    }

    #[tokio::test]
    async fn frames_round_trip_and_check_version() {
        let mut buffer = Vec::new();
        let hello = Hello {
            agent_id: "a".into(),
            host_name: "h".into(),
            agent_version: "1".into(),
        };
        write_message(&mut buffer, FrameKind::Hello, &hello)
            .await
            .unwrap();
        let decoded: Hello = read_message(&mut buffer.as_slice(), FrameKind::Hello)
            .await
            .unwrap();
        assert_eq!(decoded, hello);

        let wrong_kind =
            read_message::<_, Welcome>(&mut buffer.as_slice(), FrameKind::Welcome).await;
        assert!(matches!(wrong_kind, Err(WireError::UnexpectedKind { .. })));

        buffer[0] = 9;
        let result = read_frame(&mut buffer.as_slice()).await;
        assert!(matches!(result, Err(WireError::Version { found: 9 })));
    }

    #[tokio::test]
    async fn every_frame_kind_round_trips_and_unknown_kinds_are_refused() {
        let kinds = [
            FrameKind::Hello,
            FrameKind::Welcome,
            FrameKind::Batch,
            FrameKind::BatchResult,
            FrameKind::Assignment,
        ];
        for kind in kinds {
            let mut buffer = Vec::new();
            write_frame(&mut buffer, kind, b"payload").await.unwrap();
            assert_eq!(buffer[..2], [PROTOCOL_VERSION, kind as u8]);
            let (read_kind, payload) = read_frame(&mut buffer.as_slice()).await.unwrap();
            assert_eq!((read_kind, payload.as_slice()), (kind, &b"payload"[..]));
        }
        let unknown = [PROTOCOL_VERSION, 6, 0, 0, 0, 0];
        let result = read_frame(&mut unknown.as_slice()).await;
        assert!(matches!(result, Err(WireError::UnknownKind(6))));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let mut header = vec![PROTOCOL_VERSION, FrameKind::Batch as u8];
        header.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_be_bytes());
        let result = read_frame(&mut header.as_slice()).await;
        assert!(matches!(result, Err(WireError::FrameTooLarge { .. })));
    }
}
