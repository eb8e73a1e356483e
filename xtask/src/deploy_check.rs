//! `cargo xtask check-deploy` (also a step of `cargo xtask test`): the files under deploy/
//! parse, and the fields zero-downtime deploys depend on are present and consistent.
//!
//! Two layers. In Rust, what a schema cannot say: the rollout rules (maxUnavailable 0,
//! probes, preStop, grace period longer than preStop plus the shutdown timeout), that
//! selectors, Secret keys and the autoscaler's target agree, and that every manifest is
//! listed in kustomization.yaml; that the Alertmanager example reaches Flagpole's webhook
//! with a token from a file, for every project the example rules name. Then the Kubernetes
//! manifests against the API's own
//! schemas with `kubernetes-validate` (PyPI; it ships the schemas, so it validates
//! offline once installed) in strict mode, which rejects misspelt fields. Rejected:
//! kubeconform/kubeval, Go binaries downloaded from GitHub, which CI cannot reach.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use serde::Deserialize as _;
use serde_json::Value;

use flagpole_tests::workspace_root as root;

/// Checks everything under deploy/; one error lists every problem found.
pub(crate) fn run() -> Result<()> {
    check(true)
}

/// The checks, with or without the (installed on first use) schema validator.
fn check(schemas: bool) -> Result<()> {
    let deploy = root().join("deploy");
    let mut problems = Problems::default();
    let mut docs = Vec::new();
    for path in yaml_files(&deploy)? {
        match parse_all(&path) {
            Ok(parsed) => docs.extend(parsed.into_iter().map(|d| (path.clone(), d))),
            Err(e) => problems.add(&path, format!("{e:#}")),
        }
    }
    let k8s_dir = deploy.join("kubernetes");
    let k8s: Vec<&(PathBuf, Value)> = docs
        .iter()
        .filter(|(p, _)| p.starts_with(&k8s_dir))
        .collect();
    check_kubernetes(&k8s_dir, &k8s, &mut problems);
    match docs
        .iter()
        .find(|(p, _)| p.file_name().is_some_and(|n| n == "docker-compose.yml"))
    {
        Some((path, compose)) => check_compose(path, compose, &mut problems),
        None => problems.add(&deploy, "docker-compose.yml is missing".into()),
    }
    check_dockerfile(&deploy.join("Dockerfile"), &mut problems);
    check_nginx(&deploy.join("nginx/flagpole.conf"), &mut problems);
    check_alerting(&deploy, &docs, &mut problems);
    if problems.0.is_empty() {
        if schemas {
            validate_schemas(&k8s)?;
        }
        eprintln!("deploy check: {} YAML documents OK", docs.len());
        Ok(())
    } else {
        bail!("deploy check failed:\n  {}", problems.0.join("\n  "))
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, path: &Path, message: String) {
        let shown = path.strip_prefix(root()).unwrap_or(path);
        self.0.push(format!("{}: {message}", shown.display()));
    }

    fn require(&mut self, path: &Path, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.add(path, message());
        }
    }
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(yaml_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Every document of a (possibly multi-document) YAML file, as JSON values.
fn parse_all(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = serde_norway::Value::deserialize(doc).context("invalid YAML")?;
        if value.is_null() {
            continue;
        }
        // Merge keys (`<<: *anchor`, used by docker-compose.yml) resolved like compose does.
        let mut value = value;
        value.apply_merge().context("YAML merge keys")?;
        docs.push(serde_json::to_value(value).context("YAML that is not JSON-compatible")?);
    }
    ensure!(!docs.is_empty(), "no YAML document");
    Ok(docs)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn check_kubernetes(dir: &Path, docs: &[&(PathBuf, Value)], problems: &mut Problems) {
    let mut kinds = BTreeSet::new();
    for (path, doc) in docs {
        let kind = str_at(doc, "/kind").unwrap_or_default();
        problems.require(path, str_at(doc, "/apiVersion").is_some(), || {
            "apiVersion missing".into()
        });
        problems.require(path, !kind.is_empty(), || "kind missing".into());
        if kind != "Kustomization" {
            problems.require(path, str_at(doc, "/metadata/name").is_some(), || {
                format!("{kind}: metadata.name missing")
            });
        }
        kinds.insert(kind.to_owned());
    }
    for required in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "Kustomization",
    ] {
        problems.require(dir, kinds.contains(required), || {
            format!("no {required} manifest")
        });
    }
    let find = |kind: &str| docs.iter().find(|(_, d)| str_at(d, "/kind") == Some(kind));

    // The Deployment: rollout, probes, shutdown timing, migration step, Secrets.
    let Some((dpath, deployment)) = find("Deployment") else {
        return;
    };
    let name = str_at(deployment, "/metadata/name").unwrap_or_default();
    let labels = deployment
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(Value::Null);
    let selector = deployment
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(Value::Null);
    problems.require(
        dpath,
        selector.is_object() && subset(&selector, &labels),
        || "spec.selector.matchLabels must match the pod template's labels".into(),
    );
    problems.require(
        dpath,
        str_at(deployment, "/spec/strategy/type") == Some("RollingUpdate"),
        || "spec.strategy.type must be RollingUpdate".into(),
    );
    let max_unavailable = deployment.pointer("/spec/strategy/rollingUpdate/maxUnavailable");
    problems.require(
        dpath,
        max_unavailable == Some(&Value::from(0)) || max_unavailable == Some(&Value::from("0%")),
        || "spec.strategy.rollingUpdate.maxUnavailable must be 0".into(),
    );
    let pod = deployment
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(Value::Null);
    let grace = pod
        .pointer("/terminationGracePeriodSeconds")
        .and_then(Value::as_u64);
    problems.require(dpath, grace.is_some(), || {
        "terminationGracePeriodSeconds missing".into()
    });
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    let Some(server) = containers
        .iter()
        .find(|c| args_of(c).first().map(String::as_str) == Some("serve"))
    else {
        problems.add(dpath, "no container runs `flagpole serve`".into());
        return;
    };
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        problems.require(
            dpath,
            server.get(probe).is_some_and(Value::is_object),
            || format!("the server container has no {probe}"),
        );
    }
    problems.require(
        dpath,
        str_at(server, "/readinessProbe/httpGet/path") == Some("/readyz"),
        || "readinessProbe must GET /readyz".into(),
    );
    problems.require(
        dpath,
        str_at(server, "/livenessProbe/httpGet/path") == Some("/healthz"),
        || "livenessProbe must GET /healthz (never the database)".into(),
    );
    let pre_stop = server.pointer("/lifecycle/preStop");
    problems.require(dpath, pre_stop.is_some(), || "no preStop hook".into());
    let pre_stop_secs = pre_stop
        .and_then(|p| {
            p.pointer("/sleep/seconds")
                .and_then(Value::as_u64)
                .or_else(|| {
                    let cmd = p.pointer("/exec/command")?.as_array()?;
                    (cmd.first()?.as_str()? == "sleep")
                        .then(|| cmd.get(1)?.as_str()?.parse().ok())
                        .flatten()
                })
        })
        .unwrap_or(0);
    let env = |name: &str| {
        server["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .cloned()
    };
    let shutdown_timeout = env("FLAGPOLE_SHUTDOWN_TIMEOUT_SECS")
        .and_then(|e| e["value"].as_str().and_then(|v| v.parse::<u64>().ok()));
    problems.require(dpath, shutdown_timeout.is_some(), || {
        "FLAGPOLE_SHUTDOWN_TIMEOUT_SECS must be set explicitly".into()
    });
    if let (Some(grace), Some(timeout)) = (grace, shutdown_timeout) {
        problems.require(dpath, grace > pre_stop_secs + timeout, || {
            format!(
                "terminationGracePeriodSeconds ({grace}) must exceed preStop ({pre_stop_secs} s) + \
                 FLAGPOLE_SHUTDOWN_TIMEOUT_SECS ({timeout}), or pods are killed mid-drain"
            )
        });
    }
    problems.require(
        dpath,
        env("FLAGPOLE_DATABASE_URL")
            .is_some_and(|e| e.pointer("/valueFrom/secretKeyRef").is_some()),
        || "FLAGPOLE_DATABASE_URL must come from a Secret".into(),
    );
    let migrates = pod["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| args_of(c).first().map(String::as_str) == Some("migrate"));
    problems.require(dpath, migrates, || {
        "no migration step (an initContainer running `flagpole migrate`)".into()
    });
    problems.require(
        dpath,
        pod.pointer("/securityContext/runAsNonRoot") == Some(&Value::Bool(true)),
        || "pods must run as non-root".into(),
    );

    // Every secretKeyRef names a key of the Secret manifest.
    if let Some((spath, secret)) = find("Secret") {
        let secret_name = str_at(secret, "/metadata/name").unwrap_or_default();
        let keys: BTreeSet<String> = ["/stringData", "/data"]
            .iter()
            .filter_map(|p| secret.pointer(p)?.as_object())
            .flat_map(|o| o.keys().cloned())
            .collect();
        let mut refs = Vec::new();
        collect_secret_refs(&pod, &mut refs);
        for (sname, key) in refs {
            problems.require(spath, sname == secret_name && keys.contains(&key), || {
                format!(
                    "the Deployment reads secret {sname}/{key}, which this Secret does not define"
                )
            });
        }
    }
    // The Service, the PDB and the autoscaler point at the Deployment's pods.
    if let Some((path, service)) = find("Service") {
        let sel = service
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(Value::Null);
        problems.require(path, sel.is_object() && subset(&sel, &labels), || {
            "Service selector does not match the Deployment's pods".into()
        });
        problems.require(path, service.pointer("/spec/ports/0").is_some(), || {
            "Service has no ports".into()
        });
    }
    if let Some((path, pdb)) = find("PodDisruptionBudget") {
        let sel = pdb
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or(Value::Null);
        problems.require(path, sel.is_object() && subset(&sel, &labels), || {
            "PodDisruptionBudget selector does not match the Deployment's pods".into()
        });
        problems.require(
            path,
            pdb.pointer("/spec/minAvailable").is_some()
                || pdb.pointer("/spec/maxUnavailable").is_some(),
            || "PodDisruptionBudget needs minAvailable or maxUnavailable".into(),
        );
    }
    if let Some((path, hpa)) = find("HorizontalPodAutoscaler") {
        problems.require(
            path,
            str_at(hpa, "/spec/scaleTargetRef/kind") == Some("Deployment")
                && str_at(hpa, "/spec/scaleTargetRef/name") == Some(name),
            || format!("HorizontalPodAutoscaler must target Deployment {name}"),
        );
        let min = hpa.pointer("/spec/minReplicas").and_then(Value::as_u64);
        let max = hpa.pointer("/spec/maxReplicas").and_then(Value::as_u64);
        problems.require(
            path,
            matches!((min, max), (Some(a), Some(b)) if a >= 2 && a <= b),
            || {
                "HorizontalPodAutoscaler needs minReplicas >= 2 and maxReplicas >= minReplicas"
                    .into()
            },
        );
    }
    // kustomization.yaml lists every manifest except the Secret example, and only files
    // that exist.
    if let Some((kpath, kustomization)) = find("Kustomization") {
        let listed: BTreeSet<String> = kustomization["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        for file in &listed {
            problems.require(kpath, dir.join(file).exists(), || {
                format!("lists {file}, which does not exist")
            });
        }
        for (path, doc) in docs {
            let file = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let kind = str_at(doc, "/kind").unwrap_or_default();
            if kind != "Kustomization" && kind != "Secret" {
                problems.require(kpath, listed.contains(&file), || {
                    format!("does not list {file}")
                });
            }
        }
    }
}

/// Oldest Kubernetes minor version the manifests must be valid for.
const KUBERNETES_VERSION: &str = "1.29";
/// Pinned, so a new release cannot change CI's verdict unannounced.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

/// Strict schema validation of every Kubernetes resource (not the Kustomization, which is
/// kustomize's own format). The validator lives in a virtualenv under target/; if it
/// cannot be installed (no Python venv or no package index), this says so and skips,
/// while a manifest that fails validation always fails.
fn validate_schemas(k8s: &[&(PathBuf, Value)]) -> Result<()> {
    let files: BTreeSet<&PathBuf> = k8s
        .iter()
        .filter(|(_, d)| str_at(d, "/kind") != Some("Kustomization"))
        .map(|(p, _)| p)
        .collect();
    let venv = root().join("target/deploy-check-venv");
    let tool = venv.join("bin/kubernetes-validate");
    if !tool.exists() {
        eprintln!(
            "deploy check: installing {KUBERNETES_VALIDATE} into {}",
            venv.display()
        );
        let installed = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", KUBERNETES_VALIDATE])
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            eprintln!(
                "deploy check: WARNING: could not install {KUBERNETES_VALIDATE}; \
                 Kubernetes schema validation skipped (structural checks passed)"
            );
            return Ok(());
        }
    }
    let status = Command::new(&tool)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .args(files)
        .status()
        .context("running kubernetes-validate")?;
    ensure!(
        status.success(),
        "deploy/kubernetes does not validate against the Kubernetes {KUBERNETES_VERSION} schemas"
    );
    eprintln!("deploy check: Kubernetes manifests valid for {KUBERNETES_VERSION} (strict)");
    Ok(())
}

fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// Every (secret name, key) referenced by `secretKeyRef` anywhere under `v`.
fn collect_secret_refs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("secretKeyRef") {
                out.push((
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["key"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            o.values().for_each(|c| collect_secret_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_secret_refs(c, out)),
        _ => {}
    }
}

/// True if every key of `small` has the same value in `big`.
fn subset(small: &Value, big: &Value) -> bool {
    small
        .as_object()
        .is_some_and(|s| s.iter().all(|(k, v)| big.get(k) == Some(v)))
}

fn check_compose(path: &Path, compose: &Value, problems: &mut Problems) {
    let services = compose["services"].as_object().cloned().unwrap_or_default();
    problems.require(path, services.contains_key("postgres"), || {
        "no postgres service".into()
    });
    problems.require(path, services.contains_key("nginx"), || {
        "no nginx service".into()
    });
    let replicas: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["environment"]["FLAGPOLE_DATABASE_URL"].is_string())
        .collect();
    problems.require(path, replicas.len() >= 2, || {
        format!("{} Flagpole replicas; expected at least 2", replicas.len())
    });
    for (name, service) in replicas {
        let test = service
            .pointer("/healthcheck/test")
            .map(Value::to_string)
            .unwrap_or_default();
        problems.require(path, test.contains("healthcheck"), || {
            format!("{name}: healthcheck must run `flagpole healthcheck`")
        });
        problems.require(path, service.get("stop_grace_period").is_some(), || {
            format!("{name}: stop_grace_period missing (compose's 10 s default may cut the drain)")
        });
    }
    let mounts_conf = services.get("nginx").is_some_and(|n| {
        n["volumes"].as_array().into_iter().flatten().any(|v| {
            v.as_str()
                .is_some_and(|v| v.starts_with("./nginx/flagpole.conf:"))
        })
    });
    problems.require(path, mounts_conf, || {
        "nginx must mount ./nginx/flagpole.conf".into()
    });
}

fn check_dockerfile(path: &Path, problems: &mut Problems) {
    let Ok(text) = std::fs::read_to_string(path) else {
        problems.add(path, "missing".into());
        return;
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let from = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    problems.require(path, from >= 2, || "expected a multi-stage build".into());
    problems.require(
        path,
        lines
            .iter()
            .any(|l| l.starts_with("USER ") && !l.contains("root")),
        || "the runtime stage must switch to a non-root USER".into(),
    );
    problems.require(
        path,
        text.contains("HEALTHCHECK") && text.contains("\"healthcheck\""),
        || "HEALTHCHECK must run `flagpole healthcheck`".into(),
    );
    problems.require(
        path,
        lines.iter().any(|l| l.starts_with("ENTRYPOINT [")),
        || "ENTRYPOINT must use the exec form, so flagpole gets SIGTERM".into(),
    );
}

fn check_nginx(path: &Path, problems: &mut Problems) {
    let Ok(text) = std::fs::read_to_string(path) else {
        problems.add(path, "missing".into());
        return;
    };
    for needle in [
        "# BEGIN servers",
        "# END servers",
        "listen 80;",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_next_upstream",
        "max_fails",
        "location = /sdk/v1/stream",
    ] {
        problems.require(path, text.contains(needle), || {
            format!("must contain `{needle}`")
        });
    }
}

/// deploy/alertmanager/alertmanager.yml and deploy/prometheus/flagpole-alerts.yml: each
/// Flagpole webhook names a project's `/alerts/alertmanager` path and sends a Bearer token
/// read from a file; its route continues to the next receiver (people are still told);
/// and every `flagpole_project` a rule labels is routed to that project's webhook. The
/// programs' own checks (promtool, amtool) and a real run are in tests/cluster/alerts.rs.
fn check_alerting(deploy: &Path, docs: &[(PathBuf, Value)], problems: &mut Problems) {
    let am_path = deploy.join("alertmanager/alertmanager.yml");
    let rules_path = deploy.join("prometheus/flagpole-alerts.yml");
    let find = |path: &Path| docs.iter().find(|(p, _)| p == path).map(|(_, d)| d);
    let (Some(am), Some(rules)) = (find(&am_path), find(&rules_path)) else {
        problems.add(
            deploy,
            "alertmanager/alertmanager.yml or prometheus/flagpole-alerts.yml is missing".into(),
        );
        return;
    };
    // Receiver name -> project key of its Flagpole webhook.
    let mut webhooks = std::collections::BTreeMap::new();
    for receiver in am["receivers"].as_array().into_iter().flatten() {
        let name = receiver["name"].as_str().unwrap_or_default();
        for hook in receiver["webhook_configs"].as_array().into_iter().flatten() {
            let url = hook["url"].as_str().unwrap_or_default();
            let project = url
                .split_once("/api/v1/projects/")
                .and_then(|(_, rest)| rest.strip_suffix("/alerts/alertmanager"));
            let Some(project) = project.filter(|p| !p.is_empty() && !p.contains('/')) else {
                problems.add(
                    &am_path,
                    format!("{name}: {url} is not a project's /alerts/alertmanager webhook"),
                );
                continue;
            };
            let auth = &hook["http_config"]["authorization"];
            problems.require(&am_path, auth["type"] == "Bearer" && auth["credentials_file"].is_string() && auth.get("credentials").is_none(), || {
                format!("{name}: send the alerts:trigger token as a Bearer credentials_file, not inline")
            });
            webhooks.insert(name.to_owned(), project.to_owned());
        }
    }
    // Project key -> whether a route with `flagpole_project="<key>"` reaches its webhook
    // and continues.
    let mut routed = BTreeSet::new();
    for route in am["route"]["routes"].as_array().into_iter().flatten() {
        let Some(project) = route["receiver"].as_str().and_then(|r| webhooks.get(r)) else {
            continue;
        };
        let matches = route["matchers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m.as_str() == Some(&format!("flagpole_project=\"{project}\"")));
        problems.require(&am_path, matches, || {
            format!("the route to {project}'s webhook must match flagpole_project=\"{project}\"")
        });
        problems.require(&am_path, route["continue"] == true, || {
            format!("the route to {project}'s webhook must `continue: true` to the usual receiver")
        });
        routed.insert(project.clone());
    }
    for group in rules["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let alert = rule["alert"].as_str().unwrap_or("a rule");
            match rule["labels"]["flagpole_project"].as_str() {
                Some(project) => problems.require(&rules_path, routed.contains(project), || {
                    format!("{alert}: no route sends flagpole_project=\"{project}\" to its webhook")
                }),
                None => problems.add(&rules_path, format!("{alert}: no flagpole_project label")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_deploy_folder_passes() {
        // Structure only: `cargo xtask test` runs the schema validation itself.
        check(false).unwrap();
    }

    #[test]
    fn subset_compares_labels() {
        let a = serde_json::json!({"app": "x"});
        let b = serde_json::json!({"app": "x", "tier": "web"});
        assert!(subset(&a, &b));
        assert!(!subset(&b, &a));
    }
}
