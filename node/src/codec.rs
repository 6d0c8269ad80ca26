//! The `/deltanode/sync/1` request-response codec: each request and response is one frame,
//! a big-endian u32 length then that many bytes. A length over the limit is refused before
//! anything is allocated. Frames stay opaque here; `protocol::wire` decodes them in the event loop,
//! so a malformed frame is counted and dropped there without failing the stream.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/deltanode/sync/1");

/// Length-prefixed frames of at most `max_frame` bytes.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    /// The largest frame read or written.
    pub max_frame: usize,
    /// Incoming frames refused for their announced length. Counted here because libp2p drops a
    /// failed `read_request` without an event.
    pub oversized: Arc<AtomicU64>,
}

impl FrameCodec {
    /// A codec for frames up to `max_frame` bytes, with a fresh refusal counter.
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            max_frame,
            oversized: Arc::default(),
        }
    }

    async fn read<T: AsyncRead + Unpin + Send>(&self, io: &mut T) -> io::Result<Vec<u8>> {
        let frame = read_frame(io, self.max_frame).await;
        if frame
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::InvalidData)
        {
            self.oversized.fetch_add(1, Ordering::Relaxed);
        }
        frame
    }
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: &[u8],
    max: usize,
) -> io::Result<()> {
    if frame.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {max}", frame.len()),
        ));
    }
    io.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.close().await
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        self.read(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, self.max_frame).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req, self.max_frame).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res, self.max_frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused_before_reading() {
        futures::executor::block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_frame(&mut buf, b"hello", 16).await.unwrap();
            let mut rd = Cursor::new(buf.into_inner());
            assert_eq!(read_frame(&mut rd, 16).await.unwrap(), b"hello");
            let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
            assert_eq!(
                read_frame(&mut huge, 16).await.unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
            let mut short = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
            assert!(read_frame(&mut short, 16).await.is_err());
            assert!(write_frame(&mut Cursor::new(Vec::new()), &[0; 17], 16)
                .await
                .is_err());
        });
    }
}
