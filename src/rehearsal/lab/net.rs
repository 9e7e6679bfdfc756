//! Listeners that can be closed and re-bound on the same port, with connections that can be
//! cut: a lost region refuses new connections and drops open ones; a fault drops one
//! connection without an answer.
use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Binds 127.0.0.1:`port` (0 = any free port) with SO_REUSEADDR so a closed port can be re-bound.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

/// A socket bound to `127.0.0.1:port` that does not listen: connecting to it is refused.
fn reserve(port: u16) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(socket)
}

/// Cuts one connection (used by the `drop` fault).
#[derive(Clone)]
pub struct ConnHandle {
    cut: Arc<watch::Sender<bool>>,
}

impl ConnHandle {
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

pub struct KillListener {
    inner: TcpListener,
    server_kill: watch::Receiver<bool>,
}

pub struct KillIo {
    inner: TcpStream,
    handle: ConnHandle,
    dead: AtomicBool,
    wake: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl KillIo {
    fn check(&mut self, cx: &mut Context<'_>) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return true;
        }
        if self.wake.as_mut().poll(cx).is_ready() {
            self.dead.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

impl AsyncRead for KillIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.check(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.check(cx) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.check(cx) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener for KillListener {
    type Io = KillIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let (tx, mut rx) = watch::channel(false);
                    let mut server = self.server_kill.clone();
                    let wake = Box::pin(async move {
                        tokio::select! {
                            _ = server.wait_for(|k| *k) => {}
                            _ = rx.wait_for(|k| *k) => {}
                        }
                    });
                    let io = KillIo {
                        inner: stream,
                        handle: ConnHandle { cut: Arc::new(tx) },
                        dead: AtomicBool::new(false),
                        wake,
                    };
                    return (io, addr);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "lab: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillListener>) -> Self {
        stream.io().handle.clone()
    }
}

/// One HTTP server that can be stopped (port closed, open connections cut) and restarted on
/// the same port.
pub struct Server {
    pub port: u16,
    running: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    /// While down: a socket bound to the port but not listening. Connections are refused (RST,
    /// as for a closed port), and the port stays ours: neither another server's `bind(0)` nor an
    /// outgoing connection's ephemeral port can take it before [`Server::up`] listens on it again
    /// (the cause of "cannot bind a port: Address already in use" in parallel rehearsal tests).
    reserved: Option<TcpSocket>,
}

impl Server {
    /// Serves on an already bound listener (no window in which another process takes the port).
    pub fn start(listener: TcpListener, router: Router) -> io::Result<Self> {
        let mut s = Self { port: listener.local_addr()?.port(), running: None, reserved: None };
        s.serve(listener, router);
        Ok(s)
    }

    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// Re-binds the same port and serves again (no-op when running).
    pub async fn up(&mut self, router: Router) -> io::Result<()> {
        if self.running.is_none() {
            let listener = match self.reserved.take() {
                Some(socket) => socket.listen(1024)?,
                None => bind(self.port)?,
            };
            self.serve(listener, router);
        }
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener, router: Router) {
        let (kill_tx, kill_rx) = watch::channel(false);
        let listener = KillListener { inner: listener, server_kill: kill_rx };
        let task = tokio::spawn(async move {
            let svc = router.into_make_service_with_connect_info::<ConnHandle>();
            if let Err(e) = axum::serve(listener, svc).await {
                tracing::warn!(error = %e, "lab server stopped");
            }
        });
        self.running = Some((task, kill_tx));
    }

    pub async fn down(&mut self) {
        if let Some((task, kill)) = self.running.take() {
            kill.send_replace(true);
            task.abort();
            let _ = task.await;
            // the listener is closed: keep the port bound (not listening) until `up`
            match reserve(self.port) {
                Ok(socket) => self.reserved = Some(socket),
                Err(e) => tracing::warn!(port = self.port, error = %e, "lab: cannot keep the port of a stopped server"),
            }
        }
    }
}
