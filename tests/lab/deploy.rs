//! The scale-out files of `deploy/`, checked offline with the tools that consume them:
//! the Prometheus agent config with `promtool check config --agent`; the Kubernetes
//! manifests against the upstream Kubernetes schemas and the Prometheus Operator CRD schemas
//! (`deploy/kubernetes/validate`, in the virtualenv of `scripts/install-test-deps`), as files
//! and as `kubectl kustomize` renders them where kubectl is installed; the PrometheusRule
//! against its generator; the ConfigMap's mailcanary.toml with `mailcanary check-config`;
//! and the choices the manifests exist for (one replica, Recreate, non-root, read-only root,
//! probes, requests).
//!
//! Run with `cargo nextest run --test lab deploy::`.

use crate::common::support;
use std::process::Command;

use serde_json::Value;
use support::{find_tool, read, repo, require_tool, run_ok, test_venv_python, yaml_documents};

const AGENT_CONFIG: &str = "deploy/prometheus-agent/prometheus.yml";
const KUBERNETES_DIR: &str = "deploy/kubernetes";
/// Every kind the kustomization ships.
const KINDS: &[&str] = &[
    "ConfigMap",
    "Deployment",
    "PersistentVolumeClaim",
    "PrometheusRule",
    "Service",
    "ServiceMonitor",
];

#[test]
fn agent_config_is_valid_in_agent_mode() {
    let promtool = require_tool(&["promtool"]);
    let out = run_ok(Command::new(promtool).args(["check", "config", "--agent", AGENT_CONFIG]));
    assert!(out.contains("SUCCESS"), "{out}");

    let config = &yaml_documents(AGENT_CONFIG)[0];
    let vantage = config["global"]["external_labels"]["vantage"].as_str();
    assert!(
        vantage.is_some_and(|v| !v.is_empty()),
        "{AGENT_CONFIG}: no global.external_labels.vantage"
    );
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job_name"].as_str())
        .collect();
    assert_eq!(
        jobs,
        ["mailcanary"],
        "the rules and dashboards expect job=\"mailcanary\""
    );
    let urls: Vec<&str> = config["remote_write"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 1, "{AGENT_CONFIG}: one remote_write url");
}

#[test]
fn prometheusrule_is_generated_from_the_rules() {
    let python = find_tool(&["python3"]).unwrap_or_else(|| {
        panic!("python3 not found on PATH: deploy/kubernetes/generate-prometheusrule needs it")
    });
    run_ok(Command::new(python).args(["deploy/kubernetes/generate-prometheusrule", "--check"]));
}

fn validate(target: &std::path::Path) -> String {
    let out = run_ok(
        Command::new(test_venv_python())
            .arg(repo().join("deploy/kubernetes/validate"))
            .arg(target),
    );
    let summary = format!("{} manifests valid ({})", KINDS.len(), KINDS.join(", "));
    assert!(out.contains(&summary), "expected {summary:?}:\n{out}");
    out
}

/// The files as they are, and the kustomization's listing (every file listed exists, every
/// manifest is listed).
#[test]
fn kubernetes_manifests_match_the_upstream_schemas() {
    let out = validate(&repo().join(KUBERNETES_DIR));
    println!("{out}");
}

/// What `kubectl apply -k` would send. kubectl is in no package registry this project can
/// use, so the render is checked where kubectl is installed and skipped (saying so)
/// elsewhere; the files themselves are validated by the test above in any case.
#[test]
fn kustomize_render_matches_the_upstream_schemas() {
    let Some(kubectl) = find_tool(&["kubectl"]) else {
        println!("SKIPPED kustomize_render_matches_the_upstream_schemas: kubectl not found");
        return;
    };
    let rendered = run_ok(Command::new(kubectl).args(["kustomize", KUBERNETES_DIR]));
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).expect("write the render");
    let out = validate(&file);
    println!("{out}");
}

/// The one manifest of `deploy/kubernetes/<name>.yaml`, checked to be a `kind`.
fn manifest(name: &str, kind: &str) -> Value {
    let file = format!("{KUBERNETES_DIR}/{name}.yaml");
    let docs = yaml_documents(&file);
    assert_eq!(docs.len(), 1, "{file}: one document");
    assert_eq!(docs[0]["kind"], kind, "{file}: kind");
    docs[0].clone()
}

/// One writer of the SQLite state, a locked-down container, and health probes.
#[test]
fn deployment_runs_one_locked_down_instance() {
    let d = manifest("deployment", "Deployment");
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1, "one writer of the SQLite state");
    assert_eq!(
        spec["strategy"]["type"], "Recreate",
        "the old pod must stop before the new one opens the state"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["hostname"], "mailcanary",
        "a fixed host name keeps the instance's name across restarts"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for resource in ["cpu", "memory"] {
        assert!(
            c["resources"]["requests"][resource].is_string(),
            "no {resource} request"
        );
    }
    // The state on the claim, the config from the ConfigMap, secrets from a Secret that
    // is referenced, never shipped.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    assert_eq!(
        volume("state")["persistentVolumeClaim"]["claimName"],
        manifest("pvc", "PersistentVolumeClaim")["metadata"]["name"]
    );
    assert_eq!(
        volume("config")["configMap"]["name"],
        manifest("configmap", "ConfigMap")["metadata"]["name"]
    );
    assert!(volume("secrets")["secret"]["secretName"].is_string());
    let shipped = read(&repo().join(KUBERNETES_DIR).join("kustomization.yaml"));
    assert!(
        !shipped.contains("secretGenerator") && !shipped.contains("kind: Secret"),
        "no secret values are checked in"
    );
}

/// The ConfigMap's mailcanary.toml is a valid config once the Secret's files exist: every
/// secret it names is a file under the Secret's mount, and `check-config` accepts it.
#[test]
fn configmap_holds_a_valid_config() {
    const SECRETS: &str = "/etc/mailcanary/secrets/";
    let config = manifest("configmap", "ConfigMap")["data"]["mailcanary.toml"]
        .as_str()
        .expect("data.mailcanary.toml")
        .to_string();
    let d = manifest("deployment", "Deployment");
    let mounts = d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .clone();
    let mounted = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("volume {name} not mounted"))
            .to_string()
    };
    assert_eq!(format!("{}/", mounted("secrets")), SECRETS);
    let args = d["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains(&format!("{}/mailcanary.toml", mounted("config"))),
        "the container reads another file: {args}"
    );
    assert!(
        config.contains(&format!("state = \"{}/", mounted("state"))),
        "the state is not on the claim"
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let mut names = 0;
    for line in config.lines().filter(|l| l.contains("_file = ")) {
        let path = line.split('"').nth(1).expect("quoted path");
        let name = path
            .strip_prefix(SECRETS)
            .unwrap_or_else(|| panic!("secret outside {SECRETS}: {line}"));
        std::fs::write(secrets.join(name), "a-test-secret-of-32-characters!!\n").unwrap();
        names += 1;
    }
    assert!(names > 0, "no secret file named: the check is not looking");
    let local = config
        .replace(SECRETS, &format!("{}/", secrets.display()))
        .replace(
            &format!("{}/", mounted("state")),
            &format!("{}/", dir.path().display()),
        );
    let file = dir.path().join("mailcanary.toml");
    std::fs::write(&file, local).unwrap();
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_mailcanary"))
            .args(["check-config", "--config"])
            .arg(&file),
    );
    assert!(out.contains(": ok ("), "{out}");
}
