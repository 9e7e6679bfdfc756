//! The Helm release as Helm itself records it: one Secret per revision,
//! `sh.helm.release.v1.<release>.v<N>` (labels `owner=helm`, `name=<release>`, `version=<N>`,
//! `status`). Its `data.release` is Kubernetes' base64 of Helm's base64 of gzip'd JSON (older
//! Helm versions wrote the JSON without gzip); the JSON holds `info.status`, `version` and
//! `chart.metadata.version`.
//!
//! A `helm` exit code is not trusted: after every Helm call the newest release secret decides
//! (see [`super::platform::KubePlatform`]).
use super::{api_error, release_secret_selector};
use crate::platform::{HelmRelease, PlatformError};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::io::Read;

/// The JSON of a release from the bytes of a release secret's `release` field (after
/// Kubernetes' own base64 layer, which k8s-openapi removes): Helm's base64, then gzip (when the
/// gzip magic is there), then JSON. The error never quotes the data (values may hold secrets).
pub fn decode_release(helm_base64: &[u8]) -> Result<Value, String> {
    let text: Vec<u8> = helm_base64.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| format!("its release field is not base64 ({e})"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("its release field is not valid gzip ({e})"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("its release field is not release JSON ({e})"))
}

/// Encodes a release JSON as Helm does (gzip, then base64): the inverse of [`decode_release`],
/// for tests and the lab.
pub fn encode_release(release: &Value) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // writing to a Vec cannot fail
    let _ = gz.write_all(release.to_string().as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Status, revision and chart version of a decoded release; `None` when it has no `info.status`.
pub fn release_of(v: &Value) -> Option<HelmRelease> {
    let status = v.pointer("/info/status")?.as_str()?.to_string();
    let revision = v.get("version").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    let chart_version = v.pointer("/chart/metadata/version").and_then(Value::as_str).map(str::to_string);
    Some(HelmRelease { revision, status, chart_version })
}

/// The revision a release secret names in its `version` label.
fn version_label(s: &Secret) -> Option<u32> {
    s.metadata.labels.as_ref()?.get("version")?.parse().ok()
}

/// The release's release secrets (every revision Helm keeps).
pub async fn release_secrets(client: &kube::Client, ns: &str, release: &str) -> Result<Vec<Secret>, PlatformError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let selector = release_secret_selector(release);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(&e, "list", &format!("secrets ({selector})"), ns))?;
    Ok(list.items)
}

/// The newest revision of `release` (highest `version` label), decoded; `None` when Helm has
/// no release secret for it (not installed, or uninstalled). A secret that cannot be decoded is
/// an error: unknown is never "absent".
pub async fn newest(client: &kube::Client, ns: &str, release: &str) -> Result<Option<HelmRelease>, PlatformError> {
    let secrets = release_secrets(client, ns, release).await?;
    newest_of(&secrets, ns)
}

/// [`newest`] over listed secrets.
pub fn newest_of(secrets: &[Secret], ns: &str) -> Result<Option<HelmRelease>, PlatformError> {
    let mut best: Option<(u32, &Secret)> = None;
    for s in secrets {
        let name = s.metadata.name.as_deref().unwrap_or("?");
        let v = version_label(s).ok_or_else(|| {
            PlatformError::Failed(format!(
                "release secret {name} in namespace {ns} has no numeric `version` label: it cannot be ordered"
            ))
        })?;
        if best.is_none_or(|(b, _)| v > b) {
            best = Some((v, s));
        }
    }
    let Some((version, secret)) = best else { return Ok(None) };
    let name = secret.metadata.name.as_deref().unwrap_or("?");
    let undecodable = |why: String| PlatformError::Failed(format!("release secret {name} in namespace {ns}: {why}"));
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| undecodable("it has no `release` field".into()))?;
    let json = decode_release(&data.0).map_err(undecodable)?;
    let mut rel = release_of(&json).ok_or_else(|| undecodable("its release JSON has no info.status".into()))?;
    if rel.revision == 0 {
        rel.revision = version;
    }
    Ok(Some(rel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn release_json(version: u32, status: &str) -> Value {
        json!({
            "name": "camunda",
            "version": version,
            "info": {"status": status},
            "chart": {"metadata": {"name": "camunda-platform", "version": "13.0.0"}},
            "config": {"orchestration": {"profiles": {"operate": false}}},
        })
    }

    fn secret(version: u32, status: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(format!("sh.helm.release.v1.camunda.v{version}"));
        s.metadata.labels = Some(
            [("owner", "helm"), ("name", "camunda"), ("version", &version.to_string()), ("status", status)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s.data = Some(
            [("release".to_string(), ByteString(encode_release(&release_json(version, status)).into_bytes()))]
                .into_iter()
                .collect(),
        );
        s
    }

    #[test]
    fn decodes_gzip_and_plain_releases() {
        let v = release_json(3, "deployed");
        assert_eq!(decode_release(encode_release(&v).as_bytes()).unwrap(), v);
        // Helm 2-era / uncompressed: base64 of the JSON
        let plain = base64::engine::general_purpose::STANDARD.encode(v.to_string());
        assert_eq!(decode_release(plain.as_bytes()).unwrap(), v);
        assert_eq!(
            release_of(&v),
            Some(HelmRelease { revision: 3, status: "deployed".into(), chart_version: Some("13.0.0".into()) })
        );
    }

    #[test]
    fn undecodable_releases_are_errors_without_their_content() {
        let e = decode_release(b"not base64 !!").unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let not_gzip_json = base64::engine::general_purpose::STANDARD.encode("password=hunter2");
        let e = decode_release(not_gzip_json.as_bytes()).unwrap_err();
        assert!(e.contains("not release JSON") && !e.contains("hunter2"), "{e}");
        let mut s = secret(1, "deployed");
        s.data = Some([("release".to_string(), ByteString(not_gzip_json.into_bytes()))].into_iter().collect());
        let e = newest_of(&[s], "ns").unwrap_err().to_string();
        assert!(e.contains("sh.helm.release.v1.camunda.v1") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_highest_version_label_is_the_newest() {
        // numeric order, not string order: v10 is newer than v9
        let got = newest_of(&[secret(9, "superseded"), secret(10, "failed"), secret(2, "superseded")], "ns").unwrap();
        assert_eq!(got.map(|r| (r.revision, r.status)), Some((10, "failed".into())));
        assert_eq!(newest_of(&[], "ns").unwrap(), None);
        let mut unlabelled = secret(1, "deployed");
        unlabelled.metadata.labels.as_mut().unwrap().remove("version");
        assert!(newest_of(&[unlabelled], "ns").is_err());
    }
}
