//! Short-lived port-forwards through the Kubernetes API (`access = "port-forward"`).
//!
//! [`Forwarder::open`] resolves a Service to a **Ready** pod behind it (its selector, or its
//! Endpoints when it has none), maps the service port to the pod's container port (`targetPort`
//! as a number or as the name of a container port) and binds a listener on `127.0.0.1:0`. Every
//! connection accepted there gets its own `pods/portforward` WebSocket (kube's
//! `Api::<Pod>::portforward`) and the bytes are copied both ways. The [`Tunnel`] closes the
//! listener and every forward when dropped: callers open one per call and drop it after the
//! answer is read, since a long-lived forward dies with the pod it goes to (a broker restart).
use super::K8sError;
use crate::config::RegionConfig;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OnceCell;
use tokio::task::{JoinHandle, JoinSet};

/// A port-forward cannot be opened or broke. The message names service, namespace and, once
/// chosen, the pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port-forward to service {service} in namespace {namespace} failed: {message}")]
pub struct ForwardError {
    pub service: String,
    pub namespace: String,
    /// The pod chosen behind the service, when one was.
    pub pod: Option<String>,
    pub message: String,
    transient: bool,
}

impl ForwardError {
    fn transient(service: &str, namespace: &str, pod: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            service: service.to_string(),
            namespace: namespace.to_string(),
            pod: pod.map(str::to_string),
            message: message.into(),
            transient: true,
        }
    }

    fn permanent(service: &str, namespace: &str, message: impl Into<String>) -> Self {
        Self { transient: false, ..Self::transient(service, namespace, None, message) }
    }

    /// Worth retrying (no Ready pod yet, the forward was refused, the API server was
    /// unreachable); false for configuration faults (an unusable kubeconfig, a URL port the
    /// Service does not have) that a retry cannot fix.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// Opens port-forwards into one region. The Kubernetes client is built on first use.
pub struct Forwarder {
    target: String,
    index: u8,
    region: RegionConfig,
    timeout: Duration,
    client: OnceCell<kube::Client>,
    live: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("target", &self.target)
            .field("region", &self.index)
            .field("namespace", &self.region.namespace)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// For region `index` of target `target_name`; `timeout` bounds every Kubernetes request.
    pub fn new(target_name: &str, index: u8, region: &RegionConfig, timeout: Duration) -> Self {
        Self {
            target: target_name.to_string(),
            index,
            region: region.clone(),
            timeout,
            client: OnceCell::new(),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Tunnels of this forwarder whose listener is still open (dropped tunnels leave this count
    /// once their tasks have ended; [`Tunnel::close`] waits for that).
    pub fn open_tunnels(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    async fn client(&self) -> Result<&kube::Client, K8sError> {
        install_crypto_provider();
        self.client.get_or_try_init(|| super::client(&self.target, self.index, &self.region, self.timeout)).await
    }

    /// Opens a tunnel to port `port` of Service `service` in the region's namespace.
    pub async fn open(&self, service: &str, port: u16) -> Result<Tunnel, ForwardError> {
        let client = match self.client().await {
            Ok(c) => c.clone(),
            Err(e) => return Err(ForwardError::permanent(service, &self.region.namespace, e.to_string())),
        };
        let namespace = if self.region.namespace.is_empty() {
            client.default_namespace().to_string()
        } else {
            self.region.namespace.clone()
        };
        let ns = namespace.as_str();
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let svc = services
            .get(service)
            .await
            .map_err(|e| ForwardError::transient(service, ns, None, format!("cannot read the Service: {e}")))?;
        let spec = svc.spec.unwrap_or_default();
        let ports = spec.ports.unwrap_or_default();
        let Some(service_port) = ports.iter().find(|p| p.port == i32::from(port)).cloned() else {
            let known: Vec<String> = ports.iter().map(|p| p.port.to_string()).collect();
            return Err(ForwardError::permanent(
                service,
                ns,
                format!(
                    "the Service has no port {port} (it has {}); fix the port in the region's URL",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            ));
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let selector = spec.selector.filter(|s| !s.is_empty());
        let (candidates, source) = match &selector {
            Some(selector) => {
                let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let labels = labels.join(",");
                let list = pods
                    .list(&ListParams::default().labels(&labels))
                    .await
                    .map_err(|e| ForwardError::transient(service, ns, None, format!("cannot list its pods: {e}")))?;
                (list.items, format!("selector {labels}"))
            }
            None => (endpoint_pods(&client, service, ns, &pods).await?, "Endpoints".to_string()),
        };
        let mut ready: Vec<Pod> = candidates.into_iter().filter(is_ready).collect();
        ready.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let Some(pod) = ready.into_iter().next() else {
            return Err(ForwardError::transient(
                service,
                ns,
                None,
                format!("no Ready pod behind it ({source}); the pods are starting, restarting or gone"),
            ));
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_port = container_port(&service_port, &pod)
            .map_err(|m| ForwardError::transient(service, ns, Some(&pod_name), format!("pod {pod_name}: {m}")))?;
        // The first forward is opened now, so that a refused forward is this call's error.
        let first = pods.portforward(&pod_name, &[pod_port]).await.map_err(|e| {
            ForwardError::transient(service, ns, Some(&pod_name), format!("pod {pod_name} port {pod_port}: {e}"))
        })?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(|e| {
            ForwardError::transient(service, ns, Some(&pod_name), format!("cannot listen on 127.0.0.1: {e}"))
        })?;
        let local = listener.local_addr().map_err(|e| {
            ForwardError::transient(service, ns, Some(&pod_name), format!("cannot listen on 127.0.0.1: {e}"))
        })?;
        tracing::debug!(service, namespace = ns, pod = %pod_name, pod_port, %local, "port-forward opened");
        let failure = Arc::new(Mutex::new(None));
        let live = Live::new(&self.live);
        let forward = Forward { pods, pod: pod_name.clone(), port: pod_port, failure: failure.clone() };
        let accept = tokio::spawn(accept_loop(listener, forward, first, live));
        Ok(Tunnel {
            local,
            service: service.to_string(),
            namespace: namespace.clone(),
            pod: pod_name,
            failure,
            accept: Some(accept),
        })
    }
}

/// The Ready pods a selector-less Service's Endpoints name.
async fn endpoint_pods(
    client: &kube::Client,
    service: &str,
    ns: &str,
    pods: &Api<Pod>,
) -> Result<Vec<Pod>, ForwardError> {
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let ep = endpoints
        .get(service)
        .await
        .map_err(|e| ForwardError::transient(service, ns, None, format!("cannot read its Endpoints: {e}")))?;
    let mut names: Vec<String> = ep
        .subsets
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.addresses.unwrap_or_default())
        .filter_map(|a| a.target_ref.filter(|r| r.kind.as_deref() == Some("Pod")).and_then(|r| r.name))
        .collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        match pods.get_opt(&name).await {
            Ok(Some(pod)) => out.push(pod),
            Ok(None) => {}
            Err(e) => {
                return Err(ForwardError::transient(service, ns, Some(&name), format!("cannot read pod {name}: {e}")));
            }
        }
    }
    Ok(out)
}

/// Installs rustls's `ring` provider as the process default unless one is installed already.
/// kube's rustls client asks for the process default. The shipped binary has only `ring`
/// (reqwest is built with `rustls-no-provider`, and `c8dr` installs ring at start), but test
/// builds also link reqwest's `aws-lc-rs`, and with two providers rustls cannot choose one:
/// building a kube client without this panics there.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread installed one meanwhile, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Running, condition Ready = True, not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else { return false };
    status.phase.as_deref() == Some("Running")
        && status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The container port a service port goes to on `pod`: `targetPort` as a number, as the name of
/// a container port, or (absent) the service port itself.
pub fn container_port(service_port: &ServicePort, pod: &Pod) -> Result<u16, String> {
    let number = |n: i32| u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(|| format!("invalid port {n}"));
    match &service_port.target_port {
        None => number(service_port.port),
        Some(IntOrString::Int(n)) => number(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return number(n);
            }
            let found = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port);
            match found {
                Some(n) => number(n),
                None => Err(format!("no container declares a port named {name:?} (the Service's targetPort)")),
            }
        }
    }
}

/// Counts a tunnel as live until its accept task has ended (and its listener is closed).
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Forward {
    pods: Api<Pod>,
    pod: String,
    port: u16,
    failure: Arc<Mutex<Option<String>>>,
}

impl Forward {
    fn record(&self, message: String) {
        tracing::debug!(pod = %self.pod, port = self.port, %message, "port-forward connection failed");
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(message);
    }
}

async fn accept_loop(listener: TcpListener, forward: Forward, first: kube::api::Portforwarder, _live: Live) {
    let mut first = Some(first);
    // Dropping this set (the tunnel is closed) aborts every connection's task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    connections.spawn(connection(socket, forward.clone(), first.take()));
                }
                Err(e) => {
                    forward.record(format!("local listener failed: {e}"));
                    break;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(mut socket: TcpStream, forward: Forward, pre: Option<kube::api::Portforwarder>) {
    let pod = &forward.pod;
    let port = forward.port;
    let mut pf = match pre {
        Some(pf) => pf,
        None => match forward.pods.portforward(pod, &[port]).await {
            Ok(pf) => pf,
            Err(e) => return forward.record(format!("pod {pod} port {port}: {e}")),
        },
    };
    let Some(mut upstream) = pf.take_stream(port) else {
        pf.abort();
        return forward.record(format!("pod {pod} port {port}: no stream for the port"));
    };
    let mut errors: Pin<Box<dyn Future<Output = Option<String>> + Send>> = match pf.take_error(port) {
        Some(f) => Box::pin(f),
        None => Box::pin(std::future::pending()),
    };
    let mut errors_done = false;
    let copy = tokio::io::copy_bidirectional(&mut socket, &mut upstream);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            // The pod's error arrives before its stream ends: record it before the local side
            // sees the end, so that the caller's error names it.
            biased;
            message = &mut errors, if !errors_done => {
                errors_done = true;
                if let Some(message) = message {
                    forward.record(format!("pod {pod} port {port}: {message}"));
                }
            }
            result = &mut copy => {
                if let Err(e) = result {
                    forward.record(format!("pod {pod} port {port}: {e}"));
                }
                break;
            }
        }
    }
    pf.abort();
}

/// A local endpoint `127.0.0.1:<port>` forwarded to a pod. Dropping it closes the listener and
/// aborts every forward; [`close`](Tunnel::close) also waits until they have ended.
#[derive(Debug)]
pub struct Tunnel {
    local: SocketAddr,
    service: String,
    namespace: String,
    pod: String,
    failure: Arc<Mutex<Option<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl Tunnel {
    /// Where to connect: `127.0.0.1:<port>`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The pod the tunnel goes to.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// The first failure of a connection through this tunnel (the pod's error channel, a
    /// refused forward), as a [`ForwardError`].
    pub fn failure(&self) -> Option<ForwardError> {
        let message = self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        Some(ForwardError::transient(&self.service, &self.namespace, Some(&self.pod), message))
    }

    /// Closes the listener and every forward, and waits until their tasks have ended.
    pub async fn close(mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(task) = &self.accept {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};

    fn pod(ready: &str, ports: &[(&str, i32)]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "zeebe".into(),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(n, p)| ContainerPort {
                                name: Some(n.to_string()),
                                container_port: *p,
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readiness_needs_running_ready_and_not_deleting() {
        assert!(is_ready(&pod("True", &[])));
        assert!(!is_ready(&pod("False", &[])));
        let mut p = pod("True", &[]);
        p.status.as_mut().unwrap().phase = Some("Pending".into());
        assert!(!is_ready(&p));
        let mut p = pod("True", &[]);
        p.metadata.deletion_timestamp = serde_json::from_value(serde_json::json!("2026-01-01T00:00:00Z")).unwrap();
        assert!(!is_ready(&p));
        assert!(!is_ready(&Pod::default()));
    }

    #[test]
    fn target_port_number_name_or_absent() {
        let p = pod("True", &[("management", 9600), ("http", 8080)]);
        let sp = |target: Option<IntOrString>| ServicePort { port: 9600, target_port: target, ..Default::default() };
        assert_eq!(container_port(&sp(None), &p), Ok(9600));
        assert_eq!(container_port(&sp(Some(IntOrString::Int(19600))), &p), Ok(19600));
        assert_eq!(container_port(&sp(Some(IntOrString::String("http".into()))), &p), Ok(8080));
        let err = container_port(&sp(Some(IntOrString::String("grpc".into()))), &p).unwrap_err();
        assert!(err.contains("\"grpc\""), "{err}");
        assert!(container_port(&sp(Some(IntOrString::Int(0))), &p).is_err());
    }

    #[test]
    fn errors_name_service_namespace_and_say_if_transient() {
        let e = ForwardError::transient("camunda-zeebe-gateway", "ns1", None, "no Ready pod behind it");
        assert!(e.is_transient());
        assert_eq!(
            e.to_string(),
            "port-forward to service camunda-zeebe-gateway in namespace ns1 failed: no Ready pod behind it"
        );
        assert!(!ForwardError::permanent("s", "n", "bad port").is_transient());
    }
}
