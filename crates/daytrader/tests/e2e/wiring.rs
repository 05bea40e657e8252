//! The deployment files agree with the code: every setting they pass is
//! one the binary reads, every name they point at exists, every port lines
//! up. (No Docker engine runs here, so this is how the compose file and the
//! manifests are kept honest.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{BIN, assert_succeeded};

fn project(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn yaml_documents(path: &str) -> Vec<Value> {
    let text = project(path);
    text.split("\n---")
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|doc| {
            let mut value: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
            value.apply_merge().unwrap();
            serde_json::to_value(value).unwrap()
        })
        .collect()
}

/// The environment variables a subcommand reads, from its own help.
fn settings_read_by(subcommand: &str) -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    help.split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_compose_file_wires_what_the_code_reads() {
    let compose = &yaml_documents("docker-compose.yml")[0];
    let services = compose["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for needed in [
        "postgres", "redis", "quotes", "worker", "web1", "web2", "web3", "lb",
    ] {
        assert!(names.contains(needed), "service {needed}");
    }
    let serve_reads = settings_read_by("serve");
    for instance in ["web1", "web2", "web3", "worker"] {
        let service = &services[instance];
        let env = service["environment"].as_object().unwrap();
        for key in env.keys() {
            assert!(
                serve_reads.contains(key),
                "{instance} sets {key}, which the binary does not read"
            );
        }
        for key in [
            "DB_HOST",
            "DB_NAME",
            "DB_USER",
            "DB_PASS",
            "REDIS_HOST",
            "QUOTE_SERVER",
            "DAYTRADER_ADMIN_TOKEN",
        ] {
            assert!(env.contains_key(key), "{instance} needs {key}");
        }
        assert_eq!(env["DB_HOST"], "postgres");
        assert_eq!(env["REDIS_HOST"], "redis");
        assert_eq!(env["INSTANCE_ID"], instance.to_owned());
        assert!(
            service.get("ports").is_none(),
            "{instance} publishes no host port"
        );
        for (dependency, condition) in [
            ("postgres", "service_healthy"),
            ("redis", "service_healthy"),
        ] {
            assert_eq!(
                service["depends_on"][dependency]["condition"], condition,
                "{instance} waits for {dependency}"
            );
        }
    }
    // The quote server answers where the instances look for it.
    let quote_server = services["web1"]["environment"]["QUOTE_SERVER"]
        .as_str()
        .unwrap();
    let (host, port) = quote_server.split_once(':').unwrap();
    assert!(names.contains(host));
    let command: Vec<&str> = services[host]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[0], "quote-server");
    assert_eq!(
        command[command.iter().position(|a| *a == "--port").unwrap() + 1],
        port
    );
    // The data tier keeps its data and says when it is healthy.
    for data in ["postgres", "redis"] {
        assert!(
            services[data]["volumes"]
                .as_array()
                .is_some_and(|v| !v.is_empty()),
            "{data} has a volume"
        );
        assert!(
            services[data]["healthcheck"]["test"].is_array(),
            "{data} has a health check"
        );
    }
    assert_eq!(
        services["postgres"]["environment"]["POSTGRES_DB"],
        services["web1"]["environment"]["DB_NAME"]
    );
    // The balancer is the only way in, on 9999, after the instances are healthy.
    assert!(
        services["lb"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("9999:9999"))
    );
    for instance in ["web1", "web2", "web3"] {
        assert_eq!(
            services["lb"]["depends_on"][instance]["condition"],
            "service_healthy"
        );
    }
}

#[test]
fn the_balancers_point_at_the_instances() {
    let default_port = "9999"; // PORT's default, which the instances use in compose
    let haproxy = project("deploy/haproxy/haproxy.cfg");
    let nginx = project("deploy/nginx/nginx.conf");
    for instance in ["web1", "web2", "web3"] {
        assert!(
            haproxy.contains(&format!(
                "server {instance} {instance}:{default_port} check"
            )),
            "haproxy: {instance}"
        );
        assert!(
            nginx.contains(&format!("server {instance}:{default_port} ")),
            "nginx: {instance}"
        );
    }
    for needed in [
        "balance hash var(txn.trader)",
        "json_query('$.user')",
        "http-check send meth GET uri /readyz",
        "http-check expect status 200",
        "option redispatch",
        "retries 3",
        "X-Request-ID",
        "stats enable",
        "timeout connect",
        "timeout client",
        "timeout server",
    ] {
        assert!(haproxy.contains(needed), "haproxy.cfg: {needed}");
    }
    for needed in [
        "keepalive 64",
        "proxy_next_upstream error timeout",
        "non_idempotent",
        "X-Request-ID",
        "X-Forwarded-For",
        "proxy_http_version 1.1",
    ] {
        assert!(nginx.contains(needed), "nginx.conf: {needed}");
    }
    // Both check out with the real programs, when they are here.
    if Command::new("haproxy").arg("-v").output().is_ok() {
        let out = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy/haproxy.cfg"))
            .output()
            .unwrap();
        assert_succeeded(&out);
    }
}

#[test]
fn the_image_runs_as_a_user_and_checks_itself() {
    let dockerfile = project("Dockerfile");
    assert!(dockerfile.contains("FROM rust:"), "a build stage");
    assert!(
        dockerfile.matches("\nFROM ").count() >= 1 && dockerfile.contains("AS build"),
        "multi-stage"
    );
    assert!(dockerfile.contains("USER 65532"), "non-root");
    assert!(
        dockerfile.contains("HEALTHCHECK") && dockerfile.contains("\"healthcheck\""),
        "daytrader healthcheck"
    );
    let help = String::from_utf8_lossy(&Command::new(BIN).arg("--help").output().unwrap().stdout)
        .into_owned();
    for subcommand in ["serve", "worker", "quote-server", "healthcheck"] {
        assert!(
            help.contains(subcommand),
            "the image's entry point has {subcommand}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_wire_what_the_code_reads() {
    let serve_reads = settings_read_by("serve");
    let config = &yaml_documents("deploy/k8s/config.yaml")[0];
    for key in config["data"].as_object().unwrap().keys() {
        assert!(
            serve_reads.contains(key),
            "the ConfigMap sets {key}, which the binary does not read"
        );
    }
    let web = yaml_documents("deploy/k8s/web.yaml");
    let kind = |kind: &str| {
        web.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("a {kind}"))
    };
    let deployment = kind("Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"][0], "serve");
    assert_eq!(container["ports"][0]["containerPort"], 9999);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&kind("Service")["spec"]["selector"], labels);
    assert_eq!(
        &kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels
    );
    assert_eq!(
        kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    for extra in container["env"].as_array().unwrap() {
        assert!(
            serve_reads.contains(extra["name"].as_str().unwrap()),
            "{extra}"
        );
    }
    let worker = &yaml_documents("deploy/k8s/worker.yaml")[0];
    assert_eq!(
        worker["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "worker"
    );
    assert!(
        worker["spec"]["replicas"].as_u64().unwrap() >= 2,
        "a standby worker"
    );
    // The names the ConfigMap points at are Services of the manifests.
    let services: BTreeSet<String> = ["data.yaml", "quotes.yaml", "web.yaml"]
        .iter()
        .flat_map(|f| yaml_documents(&format!("deploy/k8s/{f}")))
        .filter(|d| d["kind"] == "Service")
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for key in ["DB_HOST", "REDIS_HOST"] {
        assert!(
            services.contains(config["data"][key].as_str().unwrap()),
            "{key}"
        );
    }
    let quotes = config["data"]["QUOTE_SERVER"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    assert!(services.contains(quotes));
}

#[test]
fn the_readme_gives_every_setting_its_own_row_and_default() {
    let readme = project("README.md");
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("a configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut defaults = std::collections::BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let names: Vec<&str> = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|name| !name.starts_with("--"))
            .collect();
        assert_eq!(names.len(), 1, "one setting per row: {row}");
        assert!(
            defaults
                .insert(names[0].to_owned(), cells[2].to_owned())
                .is_none(),
            "{} has two rows",
            names[0]
        );
    }
    for setting in settings_read_by("serve") {
        let default = defaults
            .get(&setting)
            .unwrap_or_else(|| panic!("{setting} has no row in the README's configuration"));
        assert!(
            !default.is_empty(),
            "{setting} has no default in the README"
        );
    }
}
