//! The deploy files agree with the docs (issue 11.1): the worker chart's RBAC template grants
//! exactly the rules docs/kubernetes.md lists (nothing broader by default), every `.Values`
//! reference of the templates exists in values.yaml, and the Dockerfile pins a checksum-verified
//! helm CLI.
//!
//! No `helm template` rendering here: helm is not installable from the registries this project
//! uses (not in Debian 12, not on PyPI or npm as a CLI), so the templates are read as text. They
//! are Go templates, not YAML, and are parsed line by line: RBAC rules are flow-style
//! (`verbs: ["get", "list"]`), one key per line, under plain `if .Values.x` / `if and ...`
//! blocks; anything else in rbac.yaml is refused so that a change cannot slip past unread.
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/c8dr-worker")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn values() -> Value {
    serde_yaml_ng::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml is valid YAML")
}

/// `a.b.c` in `v`, or None.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.as_mapping()?.get(key))
}

/// A template action `{{ ... }}` that makes up the whole (trimmed) line: its inside, trimmed of
/// `-` and spaces.
fn action(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("}}") {
        return None; // two actions on one line
    }
    Some(inner.trim_start_matches('-').trim_end_matches('-').trim())
}

/// `["a", "b"]` -> [a, b]
fn flow_list(s: &str) -> Vec<String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("expected a flow list like [\"get\", \"list\"], got {s:?}"));
    inner.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| x.trim_matches('"').to_string()).collect()
}

/// A `.Values` path of an `if` operand (`.Values.rbac.drills`, `$.Values.rbac.drills`).
fn values_path(token: &str) -> String {
    token
        .strip_prefix("$.Values.")
        .or_else(|| token.strip_prefix(".Values."))
        .unwrap_or_else(|| panic!("rbac.yaml: `if` on {token:?}: only .Values paths are understood"))
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    group: String,
    resource: String,
    verb: String,
    /// The `.Values` paths this rule is conditional on (all must hold).
    when: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct RbacTemplate {
    rules: BTreeSet<Rule>,
    /// Conditions of each `roleRef` to the ClusterRole `admin`.
    admin_bindings: Vec<BTreeSet<String>>,
    /// (resource, has resourceNames) of every rule in a ClusterRole.
    cluster_rules: Vec<(String, bool)>,
}

fn parse_rbac(text: &str) -> RbacTemplate {
    #[derive(Default)]
    struct Pending {
        groups: Vec<String>,
        resources: Vec<String>,
        verbs: Vec<String>,
        names: bool,
        when: BTreeSet<String>,
        cluster: bool,
    }
    let mut out = RbacTemplate::default();
    // one entry per open block: the paths its `if` requires (empty for range/with)
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut kind = String::new();
    let mut in_role_ref = false;
    let mut role_ref_kind = String::new();
    let mut pending: Option<Pending> = None;
    let mut in_comment = false;
    let flush = |p: Option<Pending>, out: &mut RbacTemplate| {
        let Some(p) = p else { return };
        assert!(
            !p.groups.is_empty() && !p.resources.is_empty() && !p.verbs.is_empty(),
            "rbac.yaml: incomplete rule (apiGroups {:?}, resources {:?}, verbs {:?})",
            p.groups,
            p.resources,
            p.verbs
        );
        for g in &p.groups {
            for r in &p.resources {
                if p.cluster {
                    out.cluster_rules.push((r.clone(), p.names));
                }
                for v in &p.verbs {
                    out.rules.insert(Rule {
                        group: g.clone(),
                        resource: r.clone(),
                        verb: v.clone(),
                        when: p.when.clone(),
                    });
                }
            }
        }
    };
    for line in text.lines() {
        if in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        let t = line.trim();
        if t.starts_with("{{") && t.contains("/*") {
            in_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(a) = action(line) {
            let mut words = a.split_whitespace();
            match words.next() {
                Some("if") => {
                    let rest: Vec<&str> = words.collect();
                    let paths = match rest.as_slice() {
                        ["and", ops @ ..] if !ops.is_empty() => ops.iter().map(|o| values_path(o)).collect(),
                        [single] => vec![values_path(single)],
                        other => {
                            panic!("rbac.yaml: unsupported condition {other:?} (use `if .Values.x` or `if and ...`)")
                        }
                    };
                    stack.push(paths);
                }
                Some("range" | "with") => stack.push(Vec::new()),
                Some("end") => {
                    flush(pending.take(), &mut out);
                    stack.pop().expect("rbac.yaml: `end` without a block");
                }
                Some(block @ ("else" | "define" | "block" | "template")) => {
                    panic!("rbac.yaml: unsupported template action {block:?}")
                }
                // include, toYaml, ...: output, not structure
                _ => {}
            }
            continue;
        }
        if t == "---" {
            flush(pending.take(), &mut out);
            continue;
        }
        if let Some(k) = line.strip_prefix("kind: ") {
            flush(pending.take(), &mut out);
            kind = k.trim().to_string();
            in_role_ref = false;
            continue;
        }
        if !line.starts_with(' ') {
            flush(pending.take(), &mut out);
            in_role_ref = t == "roleRef:";
            role_ref_kind.clear();
            continue;
        }
        if in_role_ref {
            if let Some(k) = t.strip_prefix("kind: ") {
                role_ref_kind = k.to_string();
            }
            if t == "name: admin" {
                assert_eq!(role_ref_kind, "ClusterRole", "roleRef name admin must be the ClusterRole");
                out.admin_bindings.push(stack.iter().flatten().cloned().collect());
            }
            continue;
        }
        if let Some(g) = t.strip_prefix("- apiGroups:") {
            flush(pending.take(), &mut out);
            pending = Some(Pending {
                groups: flow_list(g),
                when: stack.iter().flatten().cloned().collect(),
                cluster: kind == "ClusterRole",
                ..Default::default()
            });
        } else if let Some(p) = pending.as_mut() {
            if let Some(r) = t.strip_prefix("resources:") {
                p.resources = flow_list(r);
            } else if let Some(v) = t.strip_prefix("verbs:") {
                p.verbs = flow_list(v);
            } else if t.starts_with("resourceNames:") {
                p.names = true;
            } else {
                panic!("rbac.yaml: unexpected line in a rule: {t:?}");
            }
        }
    }
    flush(pending.take(), &mut out);
    assert!(stack.is_empty(), "rbac.yaml: unclosed block");
    out
}

/// Backticked words of a markdown cell.
fn ticks(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[derive(Debug)]
struct DocRow {
    group: String,
    resource: String,
    verbs: Vec<String>,
    switch: String,
    admin: bool,
}

/// The table under `## RBAC` of docs/kubernetes.md.
fn doc_rows(md: &str) -> Vec<DocRow> {
    let section = md.split("\n## RBAC\n").nth(1).expect("docs/kubernetes.md has a `## RBAC` section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "RBAC table row needs 4 cells (resource, verbs, why, feature): {line}");
        let switches: Vec<String> = ticks(cells[3]).into_iter().filter(|t| t.starts_with("rbac.")).collect();
        assert_eq!(switches.len(), 1, "feature cell names one chart switch (`rbac.x`): {line}");
        let admin = cells[0].starts_with("ClusterRole `admin`");
        let group = match cells[0].split_once("(`") {
            Some((_, rest)) if !admin => rest.split('`').next().unwrap().to_string(),
            _ => String::new(),
        };
        rows.push(DocRow {
            group,
            resource: ticks(cells[0]).first().cloned().expect("resource in backticks"),
            verbs: if admin { Vec::new() } else { ticks(cells[1]) },
            switch: switches[0].clone(),
            admin,
        });
    }
    assert!(!rows.is_empty(), "the RBAC table has rows");
    rows
}

fn bool_paths(values: &Value) -> impl Fn(&BTreeSet<String>) -> BTreeSet<String> + '_ {
    move |when| when.iter().filter(|p| lookup(values, p).is_some_and(Value::is_bool)).cloned().collect()
}

/// Template and docs agree rule by rule (with the switch each needs), and the rules active with
/// values.yaml's defaults are exactly the rows whose switch is on by default.
fn check_rbac(template: &str, md: &str, values: &Value) -> Result<(), String> {
    let t = parse_rbac(template);
    let rows = doc_rows(md);
    let bools = bool_paths(values);
    for r in &t.rules {
        for field in [&r.group, &r.resource, &r.verb] {
            if field.contains('*') {
                return Err(format!("wildcard in {r:?}"));
            }
        }
    }
    let from_template: BTreeSet<(String, String, String, BTreeSet<String>)> =
        t.rules.iter().map(|r| (r.group.clone(), r.resource.clone(), r.verb.clone(), bools(&r.when))).collect();
    let from_docs: BTreeSet<(String, String, String, BTreeSet<String>)> = rows
        .iter()
        .filter(|r| !r.admin)
        .flat_map(|r| {
            let when: BTreeSet<String> = ["rbac.create".to_string(), r.switch.clone()].into();
            r.verbs.iter().map(move |v| (r.group.clone(), r.resource.clone(), v.clone(), when.clone()))
        })
        .collect();
    if from_template != from_docs {
        let mut e = String::from("rbac.yaml and docs/kubernetes.md disagree (group, resource, verb, switches)");
        let only_t: Vec<_> = from_template.difference(&from_docs).collect();
        let only_d: Vec<_> = from_docs.difference(&from_template).collect();
        if !only_t.is_empty() {
            e += &format!("\nonly in the template: {only_t:?}");
        }
        if !only_d.is_empty() {
            e += &format!("\nonly in the docs: {only_d:?}");
        }
        return Err(e);
    }
    // the admin binding: documented, and only behind its switch
    let admin_rows: Vec<&DocRow> = rows.iter().filter(|r| r.admin).collect();
    let admin_when: Vec<BTreeSet<String>> = t.admin_bindings.iter().map(&bools).collect();
    let expected_admin: Vec<BTreeSet<String>> =
        admin_rows.iter().map(|r| ["rbac.create".to_string(), r.switch.clone()].into()).collect();
    if admin_when != expected_admin {
        return Err(format!("admin ClusterRole bindings {admin_when:?}, docs say {expected_admin:?}"));
    }
    // cluster-scoped rules are limited to named objects
    if let Some((r, _)) = t.cluster_rules.iter().find(|(_, names)| !names) {
        return Err(format!("ClusterRole rule on {r} without resourceNames"));
    }
    // nothing broader by default
    let on = |p: &String| lookup(values, p).and_then(Value::as_bool).unwrap_or(true);
    let default_rules: BTreeSet<(String, String, String)> = t
        .rules
        .iter()
        .filter(|r| r.when.iter().all(on))
        .map(|r| (r.group.clone(), r.resource.clone(), r.verb.clone()))
        .collect();
    let default_docs: BTreeSet<(String, String, String)> = rows
        .iter()
        .filter(|r| !r.admin && on(&r.switch))
        .flat_map(|r| r.verbs.iter().map(|v| (r.group.clone(), r.resource.clone(), v.clone())))
        .collect();
    if default_rules != default_docs {
        return Err(format!("default rules {default_rules:?} != documented defaults {default_docs:?}"));
    }
    if t.admin_bindings.iter().any(|w| w.iter().all(on)) {
        return Err("the admin ClusterRole is bound by default".into());
    }
    Ok(())
}

#[test]
fn rbac_template_grants_exactly_the_documented_rules() {
    let template = read(&chart().join("templates/rbac.yaml"));
    let md = read(&root().join("docs/kubernetes.md"));
    let values = values();
    check_rbac(&template, &md, &values).unwrap();

    // the switches the docs promise are off by default
    for off in ["rbac.drills", "rbac.helm"] {
        assert_eq!(lookup(&values, off).and_then(Value::as_bool), Some(false), "{off} must default to false");
    }
    for on in
        ["rbac.create", "rbac.namespaceRead", "serviceAccount.create", "serviceAccount.automountServiceAccountToken"]
    {
        assert_eq!(lookup(&values, on).and_then(Value::as_bool), Some(true), "{on} must default to true");
    }
    assert_eq!(lookup(&values, "serviceMonitor.enabled").and_then(Value::as_bool), Some(false));
    // the rules the issue names are all there (so an emptied table and template cannot agree)
    let rules = parse_rbac(&template).rules;
    for (group, resource, verb) in [
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods/log", "get"),
        ("apps", "statefulsets", "list"),
        ("", "persistentvolumeclaims", "list"),
        ("", "secrets", "list"),
        ("", "configmaps", "get"),
        ("", "services", "get"),
        ("", "endpoints", "get"),
        ("", "pods/portforward", "create"),
        ("", "pods/portforward", "get"),
        ("", "pods", "delete"),
        ("", "persistentvolumeclaims", "deletecollection"),
        ("", "namespaces", "get"),
    ] {
        assert!(
            rules.iter().any(|r| r.group == group && r.resource == resource && r.verb == verb),
            "missing rule {group}/{resource} {verb}"
        );
    }
}

#[test]
fn rbac_check_catches_an_undocumented_or_ungated_rule() {
    let template = read(&chart().join("templates/rbac.yaml"));
    let md = read(&root().join("docs/kubernetes.md"));
    let values = values();
    // an extra rule that the docs do not list
    let widened = template.replacen(
        "    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\"]",
        "    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\", \"update\"]",
        1,
    );
    assert_ne!(widened, template, "the test edit applies");
    let e = check_rbac(&widened, &md, &values).unwrap_err();
    assert!(e.contains("only in the template") && e.contains("update") && !e.contains("only in the docs"), "{e}");
    // the drill-only PVC delete taken out of its `if .Values.rbac.drills`
    let ungated = template.replacen("  {{- if $.Values.rbac.drills }}\n", "", 1).replacen(
        "    verbs: [\"delete\", \"deletecollection\"]\n  {{- end }}\n",
        "    verbs: [\"delete\", \"deletecollection\"]\n",
        1,
    );
    assert_ne!(ungated, template, "the test edit applies");
    assert!(check_rbac(&ungated, &md, &values).is_err());
    // the admin binding by default
    let mut on = values.clone();
    on["rbac"]["helm"] = Value::Bool(true);
    assert!(check_rbac(&template, &md, &on).unwrap_err().contains("admin"));
    // a documented rule missing from the template
    let narrowed = template.replacen("    resources: [\"pods/log\"]\n", "    resources: [\"pods/status\"]\n", 1);
    let e = check_rbac(&narrowed, &md, &values).unwrap_err();
    assert!(e.contains("only in the docs: [(\"\", \"pods/log\"") && e.contains("pods/status"), "{e}");
}

/// `.Values.a.b` references (also `$.Values.a.b`) of a template.
fn values_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(".Values.") {
        let after = &rest[i + ".Values.".len()..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(after.len());
        refs.push(after[..end].trim_end_matches('.').to_string());
        rest = &after[end..];
    }
    refs
}

#[test]
fn every_values_reference_of_the_templates_exists_in_values_yaml() {
    let values = values();
    let mut checked = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(chart().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = read(&path);
        // block actions and `end`s balance (a cheap guard, since nothing renders the chart here)
        let actions: Vec<&str> =
            text.split("{{").skip(1).map(|a| a.split("}}").next().unwrap().trim_start_matches('-').trim()).collect();
        let opens =
            actions.iter().filter(|a| ["if ", "range ", "with ", "define "].iter().any(|k| a.starts_with(k))).count();
        let ends = actions.iter().filter(|a| a.trim_end_matches('-').trim() == "end").count();
        assert_eq!(opens, ends, "{}: block actions and `end`s do not balance", path.display());
        assert_eq!(text.matches("{{").count(), text.matches("}}").count(), "{}", path.display());
        for r in values_refs(&text) {
            checked += 1;
            if lookup(&values, &r).is_none() {
                missing.push(format!("{}: .Values.{r}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(missing.is_empty(), "not in values.yaml: {missing:?}");
    assert!(checked > 20, "found {checked} references");
    // and the check itself sees a reference that is missing
    assert!(lookup(&values, "rbac.drill").is_none());
    assert_eq!(values_refs("{{ $.Values.rbac.drill }} x"), vec!["rbac.drill".to_string()]);
}

#[test]
fn chart_metadata_and_the_example_values_parse() {
    let chart_yaml: Value = serde_yaml_ng::from_str(&read(&chart().join("Chart.yaml"))).unwrap();
    assert_eq!(chart_yaml["apiVersion"].as_str(), Some("v2"));
    let v = values();
    // the values the existing install used are still there
    for key in ["image.repository", "management.grpcAddress", "config", "journal.size", "drill.enabled", "extraEnv"] {
        assert!(lookup(&v, key).is_some(), "values.yaml lost {key}");
    }
    assert!(lookup(&v, "rbac.regionNamespaces").is_some_and(Value::is_sequence));
    assert!(lookup(&v, "helmCli.repositories").is_some_and(Value::is_sequence));
    for key in [
        "serviceMonitor.labels",
        "serviceMonitor.interval",
        "serviceMonitor.scrapeTimeout",
        "kubeconfig.existingSecret",
    ] {
        assert!(lookup(&v, key).is_some(), "values.yaml misses {key}");
    }
}

/// The value of `ARG name=value` in the Dockerfile.
fn arg<'a>(dockerfile: &'a str, name: &str) -> Option<&'a str> {
    dockerfile.lines().find_map(|l| l.trim().strip_prefix("ARG ")?.strip_prefix(name)?.strip_prefix('=')).map(str::trim)
}

fn check_dockerfile(d: &str) -> Result<(), String> {
    let version = arg(d, "HELM_VERSION").ok_or("no ARG HELM_VERSION=...")?;
    let semver = version.strip_prefix('v').unwrap_or("");
    if semver.split('.').count() != 3
        || !semver.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("HELM_VERSION {version:?} is not an exact vX.Y.Z"));
    }
    let mut sums = BTreeSet::new();
    for arch in ["AMD64", "ARM64"] {
        let name = format!("HELM_SHA256_{arch}");
        let sum = arg(d, &name).ok_or(format!("no ARG {name}=..."))?;
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("{name} is not a lowercase 64-hex sha256"));
        }
        sums.insert(sum);
        let case = format!("{}) sum=\"${{{name}}}\"", arch.to_lowercase());
        if !d.contains(&case) {
            return Err(format!("TARGETARCH case `{case}` missing"));
        }
    }
    if sums.len() != 2 {
        return Err("the two architectures have the same checksum".into());
    }
    let url = "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz";
    let download = d.find(url).ok_or(format!("no download from {url}"))?;
    let verify = d.find("| sha256sum -c").ok_or("no `sha256sum -c`")?;
    let extract = d.find("tar -xzf").ok_or("no tar -xzf")?;
    if !(download < verify && verify < extract) {
        return Err("download, then sha256sum -c, then extract: in that order".into());
    }
    // the runtime stage copies only the binary from the helm stage
    let runtime = d.rsplit("\nFROM ").next().unwrap();
    if !runtime.contains("COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm") {
        return Err("the runtime stage does not copy /usr/local/bin/helm from the helm stage".into());
    }
    if runtime.contains("curl") || runtime.contains("get.helm.sh") {
        return Err("the runtime stage downloads something".into());
    }
    Ok(())
}

#[test]
fn dockerfile_ships_a_pinned_checksum_verified_helm() {
    let d = read(&root().join("deploy/Dockerfile"));
    check_dockerfile(&d).unwrap();
    assert!(d.contains("ARG TARGETARCH"));
    // the check refuses a floating version, a short checksum and a skipped verification
    let v = arg(&d, "HELM_VERSION").unwrap();
    assert!(check_dockerfile(&d.replacen(&format!("HELM_VERSION={v}"), "HELM_VERSION=latest", 1)).is_err());
    let sum = arg(&d, "HELM_SHA256_ARM64").unwrap();
    assert!(check_dockerfile(&d.replacen(sum, &sum[..40], 1)).is_err());
    assert!(check_dockerfile(&d.replacen("| sha256sum -c", "| cat", 1)).is_err());
}

#[test]
fn configuration_docs_cover_the_kubernetes_keys_and_no_lab_keys() {
    let md = read(&root().join("docs/configuration.md"));
    for key in [
        "`kube_context`",
        "`kubeconfig`",
        "`access`",
        "`stuck_after_secs`",
        "`pod_ready_timeout_secs`",
        "`request_timeout_secs`",
        "kubernetes.md",
    ] {
        assert!(md.contains(key), "docs/configuration.md does not document {key}");
    }
    assert!(!md.contains("lab_control_url"), "lab_control_url no longer exists");
    assert!(!md.contains("`lab`:"), "helm.mode = lab no longer exists");
    assert!(read(&root().join("README.md")).contains("docs/kubernetes.md"));
}
