//! The server side of the Kubernetes port-forward WebSocket protocol, as kube-rs's
//! `Api::<Pod>::portforward` speaks it (kube-client `api/portforward.rs`, `client/upgrade.rs`):
//!
//! - subprotocol: the client offers `v5.channel.k8s.io, v4.channel.k8s.io`; this server picks
//!   `v4.channel.k8s.io` (or `portforward.k8s.io`) and refuses a request offering neither;
//! - port `i` of the `ports` query uses data channel `2*i` and error channel `2*i+1`; the first
//!   frame on each channel is the channel byte followed by the port number, 2 bytes
//!   little-endian; every later frame is the channel byte followed by the data;
//! - the error channel carries one UTF-8 message when the port cannot be used;
//! - there is no half-close in v4: the client sends a Close frame once it has no more to send
//!   (all its ports closed), and this server sends one when every target connection has ended,
//!   which the client turns into end-of-stream on every port.
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Subprotocols this server speaks, in its order of preference.
pub const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "portforward.k8s.io"];

/// The most ports one request may forward (as kube-rs and the API server allow).
pub const MAX_PORTS: usize = 128;

/// Data channel of the `index`-th port.
pub fn data_channel(index: usize) -> u8 {
    (2 * index) as u8
}

/// Error channel of the `index`-th port.
pub fn error_channel(index: usize) -> u8 {
    (2 * index + 1) as u8
}

/// The first frame of a channel: the channel byte, then the port, little-endian.
pub fn port_frame(channel: u8, port: u16) -> Bytes {
    let [lo, hi] = port.to_le_bytes();
    Bytes::from(vec![channel, lo, hi])
}

/// A data frame: the channel byte, then the data.
pub fn data_frame(channel: u8, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    Bytes::from(frame)
}

/// Splits a received frame into channel and payload; `None` for an empty frame.
pub fn decode(frame: &[u8]) -> Option<(u8, &[u8])> {
    frame.split_first().map(|(ch, rest)| (*ch, rest))
}

/// A `metav1.Status` failure, as the API server answers a request it refuses.
fn refuse(code: StatusCode, message: String) -> Response {
    let reason = if code == StatusCode::BAD_REQUEST { "BadRequest" } else { "Invalid" };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// Upgrades `GET .../pods/{name}/portforward?ports=...` and bridges port `ports[i]` to the TCP
/// address `targets[ports[i]]`. A port without a target gets a message on its error channel.
pub fn serve(ws: WebSocketUpgrade, ports: Vec<u16>, targets: BTreeMap<u16, SocketAddr>) -> Response {
    let offered = ws.requested_protocols().any(|p| PROTOCOLS.iter().any(|s| p.as_bytes() == s.as_bytes()));
    if !offered {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("port-forward needs one of the WebSocket subprotocols {}", PROTOCOLS.join(", ")),
        );
    }
    if ports.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "query parameter \"ports\" is required".into());
    }
    if ports.len() > MAX_PORTS {
        return refuse(StatusCode::BAD_REQUEST, format!("at most {MAX_PORTS} ports may be forwarded at once"));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = ports.iter().find(|p| !seen.insert(**p)) {
        return refuse(StatusCode::BAD_REQUEST, format!("port {dup} is requested twice"));
    }
    if ports.contains(&0) {
        return refuse(StatusCode::BAD_REQUEST, "port 0 cannot be forwarded".into());
    }
    ws.protocols(PROTOCOLS).on_upgrade(move |socket| bridge(socket, ports, targets))
}

async fn bridge(socket: WebSocket, ports: Vec<u16>, targets: BTreeMap<u16, SocketAddr>) {
    let (mut sink, mut stream) = socket.split();
    for (i, port) in ports.iter().enumerate() {
        for channel in [data_channel(i), error_channel(i)] {
            if sink.send(Message::Binary(port_frame(channel, *port))).await.is_err() {
                return;
            }
        }
    }
    let (out, mut outgoing) = mpsc::channel::<Bytes>(16);
    // Dropping this set (the bridge ends) closes every target connection.
    let mut pumps = JoinSet::new();
    let mut writers: Vec<Option<OwnedWriteHalf>> = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().enumerate() {
        let connected = match targets.get(port) {
            None => Err(format!("the pod does not listen on port {port}")),
            Some(addr) => TcpStream::connect(addr).await.map_err(|e| format!("failed to connect to port {port}: {e}")),
        };
        match connected {
            Ok(tcp) => {
                let (reader, writer) = tcp.into_split();
                writers.push(Some(writer));
                pumps.spawn(pump(data_channel(i), reader, out.clone()));
            }
            Err(reason) => {
                writers.push(None);
                let message = format!("error forwarding port {port} to pod: {reason}");
                tracing::debug!(port, %message, "lab port-forward");
                if sink.send(Message::Binary(data_frame(error_channel(i), message.as_bytes()))).await.is_err() {
                    return;
                }
            }
        }
    }
    drop(out);
    loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                None => {
                    // Every target connection has ended: tell the client.
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    let Some((channel, data)) = decode(&frame) else { continue };
                    let index = usize::from(channel / 2);
                    if channel % 2 != 0 || data.is_empty() {
                        continue;
                    }
                    if let Some(slot) = writers.get_mut(index)
                        && let Some(writer) = slot
                        && writer.write_all(data).await.is_err()
                    {
                        *slot = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Copies what the target sends to the client on `channel`, until the target closes.
async fn pump(channel: u8, mut reader: OwnedReadHalf, out: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(data_frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_of_ports() {
        assert_eq!((data_channel(0), error_channel(0)), (0, 1));
        assert_eq!((data_channel(2), error_channel(2)), (4, 5));
    }

    #[test]
    fn first_frame_is_channel_then_port_little_endian() {
        assert_eq!(port_frame(0, 9600).as_ref(), &[0, 0x80, 0x25]);
        assert_eq!(port_frame(3, 0x1234).as_ref(), &[3, 0x34, 0x12]);
    }

    #[test]
    fn data_frames_round_trip() {
        let frame = data_frame(2, b"GET / HTTP/1.1\r\n");
        assert_eq!(frame[0], 2);
        assert_eq!(decode(&frame), Some((2, &b"GET / HTTP/1.1\r\n"[..])));
        assert_eq!(decode(&[7]), Some((7, &[][..])));
        assert_eq!(decode(&[]), None);
    }
}
