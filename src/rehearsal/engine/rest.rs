pub(super) async fn serve(_h: super::EngineHandle, _l: tokio::net::TcpListener) {}
