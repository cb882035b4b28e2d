//! The Grafana dashboard and the Prometheus alerting rules against a live signer.
//!
//! `live_signer_feeds_every_panel_and_alert` runs the real `keyguard` binary with sealed keys
//! on a SoftHSM token (one of them tampered with, so it fails to load), scrapes it with a real
//! Prometheus (the Debian package) that loads `config/prometheus/keyguard-alerts.yml`,
//! provokes a slashing refusal, and checks that:
//! - every metric a dashboard panel queries is exported *and fed* by the running signer (a
//!   panel on a metric nobody feeds fails), and every label matcher names a real series;
//! - every dashboard query evaluates without error and returns data in Prometheus;
//! - every alerting rule evaluates without error on series that exist from start-up; the
//!   refusal, failed-key and HSM-error alerts fire, the others stay inactive;
//! - the exposition parses with an independent text-format parser.
//!
//! Under `CI=true` a missing SoftHSM2 or Prometheus fails the test instead of skipping it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use interop_tests::keyguard_process::{keyguard_command, workspace_root, KeyguardProcess};
use interop_tests::prometheus::{require_prometheus, PrometheusProcess};
use interop_tests::{requests, softhsm};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../grafana/keyguard.json");

/// Labels Prometheus attaches at scrape time; keyguard does not export them itself.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// A metric selector found in a PromQL expression: the metric name and its label matchers
/// `(label, operator, value)`.
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    name: String,
    matchers: Vec<(String, String, String)>,
}

/// PromQL words that are not metric names when they stand alone.
const KEYWORDS: [&str; 13] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
];

/// PromQL aggregation operators: never metric names, whether `(` or `by`/`without` follows.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a parenthesised list of label names (not an expression).
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn skip_string(chars: &[char], mut i: usize) -> usize {
    let quote = chars[i];
    i += 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses the label matchers between `{` at `i` and its `}`; returns them and the index after.
fn parse_matchers(chars: &[char], mut i: usize) -> (Vec<(String, String, String)>, usize) {
    let mut out = Vec::new();
    i += 1; // '{'
    loop {
        i = skip_ws(chars, i);
        if i >= chars.len() {
            return (out, i);
        }
        match chars[i] {
            '}' => return (out, i + 1),
            ',' => i += 1,
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let label: String = chars[start..i].iter().collect();
                i = skip_ws(chars, i);
                let op_start = i;
                while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
                    i += 1;
                }
                let op: String = chars[op_start..i].iter().collect();
                i = skip_ws(chars, i);
                let value_start = i + 1;
                i = skip_string(chars, i);
                let value: String = chars[value_start..i - 1].iter().collect();
                out.push((label, op, value));
            }
            _ => i += 1,
        }
    }
}

/// Every metric selector in a PromQL expression (as Grafana stores it: `$variables` allowed).
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '[' {
            // Range or subquery duration, e.g. [$__rate_interval] or [5m:1m].
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            // A selector without a name: `{__name__="x"}`.
            let (matchers, next) = parse_matchers(&chars, i);
            if let Some((_, _, name)) = matchers
                .iter()
                .find(|(l, op, _)| l == "__name__" && op == "=")
            {
                out.push(Selector {
                    name: name.clone(),
                    matchers: matchers.clone(),
                });
            }
            i = next;
        } else if c == '$' {
            // A Grafana variable: $name, ${name}, ${name:format}.
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or duration: 0.99, 1e-3, 5m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                let e = chars[i] == 'e' || chars[i] == 'E';
                i += 1;
                if e && i < chars.len() && (chars[i] == '-' || chars[i] == '+') {
                    i += 1;
                }
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(&chars, i);
            let lower = word.to_ascii_lowercase();
            if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                if next < chars.len() && chars[next] == '(' {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                }
            } else if KEYWORDS.contains(&lower.as_str()) || AGGREGATIONS.contains(&lower.as_str()) {
                // An operator, modifier or aggregation.
            } else if next < chars.len() && chars[next] == '(' {
                // A function or aggregation.
            } else {
                let mut matchers = Vec::new();
                if next < chars.len() && chars[next] == '{' {
                    let (m, after) = parse_matchers(&chars, next);
                    matchers = m;
                    i = after;
                }
                out.push(Selector {
                    name: word,
                    matchers,
                });
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every PromQL expression in the dashboard: panel targets (rows' nested panels included)
/// and the metric queried by each `label_values(...)` variable.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_string()));
                }
            }
            if let Some(nested) = panel["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .expect("variable query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.rsplit_once(','))
            .map(|(metric, _label)| metric.to_string())
            .expect("label_values(metric, label) variable");
        out.push((format!("variable {}", var["name"]), inner));
    }
    out
}

/// `# TYPE` lines: family name to type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// The family a sample-level name belongs to, if any.
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, String>) -> Option<&'a str> {
    if families.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            let kind = families.get(base).map(String::as_str);
            if kind == Some("histogram") || (kind == Some("summary") && suffix != "_bucket") {
                return Some(base);
            }
        }
    }
    None
}

#[test]
fn promql_extraction() {
    let s = selectors(
        r#"histogram_quantile(0.99, sum by (le, type) (rate(a_bucket{job=~"$job",outcome="signed"}[$__rate_interval]))) / ignoring(x) b_total offset 5m or vector(0) + sum(c) without (d) and {__name__="e"} > 1e-3 + count without (x) (f)"#,
    );
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a_bucket", "b_total", "c", "e", "f"]);
    assert_eq!(
        s[0].matchers,
        [
            ("job".into(), "=~".into(), "$job".into()),
            ("outcome".into(), "=".into(), "signed".into())
        ]
    );
}

#[test]
fn dashboard_is_importable() {
    let d: Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(inputs
        .iter()
        .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"));
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    assert!(d["schemaVersion"].as_u64().expect("schemaVersion") >= 36);
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));

    let mut ids = BTreeSet::new();
    for panel in d["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "duplicate id: {title}"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(x + w <= 24, "{title} is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title} has no description"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

const ALERT_RULES: &str = "config/prometheus/keyguard-alerts.yml";

/// Alerts the test scenario provokes; every other rule must stay inactive.
const EXPECTED_FIRING: [&str; 3] = [
    "KeyguardSlashingRefusal",
    "KeyguardKeysFailedToLoad",
    "KeyguardHsmErrors",
];

/// How long the test waits for Prometheus to see something (scrapes are 1 s apart).
const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

#[test]
fn alert_rules_and_scrape_config_pass_promtool() {
    let Some((_, promtool)) = require_prometheus("alert_rules_and_scrape_config_pass_promtool")
    else {
        return;
    };
    let root = workspace_root();
    for args in [
        vec!["check", "rules", ALERT_RULES],
        // Also loads the rule files the scrape configuration names.
        vec!["check", "config", "config/prometheus.yml"],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(&args)
            .current_dir(&root)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn run_ok(args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = keyguard_command(&args);
    assert!(
        out.status.success(),
        "keyguard {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strings(words: &[&str], extra: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

/// Flips one bit of a sealed file's ciphertext: the HSM refuses to unseal it.
fn tamper(path: &Path) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ct = v["ciphertext"].as_str().unwrap().to_string();
    let mut bytes = hex::decode(&ct[2..]).unwrap();
    bytes[3] ^= 0x01;
    v["ciphertext"] = format!("0x{}", hex::encode(bytes)).into();
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Waits until key loading has finished (healthcheck no longer LOADING).
fn wait_loaded(kg: &KeyguardProcess) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = reqwest::blocking::get(format!("{}/healthcheck", kg.url))
            .and_then(|r| r.text())
            .unwrap_or_default();
        if body.contains("keys-check") && !body.contains("LOADING") {
            return;
        }
        assert!(Instant::now() < deadline, "keys still loading: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The scrape configuration of the test: one keyguard, scraped and evaluated every second,
/// with the shipped alerting rules.
fn prometheus_config(kg: &KeyguardProcess) -> String {
    let target = kg
        .metrics_url
        .strip_prefix("http://")
        .expect("metrics URL is http");
    let rules = workspace_root().join(ALERT_RULES);
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: keyguard\n    static_configs:\n      - targets: ['{target}']\n",
        rules = rules.display()
    )
}

/// A Grafana expression as Prometheus can run it: variables replaced by what the dashboard
/// would send with every instance selected.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$job", ".*")
        .replace("$instance", ".*")
}

/// A selector as PromQL text.
fn selector_text(sel: &Selector) -> String {
    let matchers: Vec<String> = sel
        .matchers
        .iter()
        .map(|(l, op, v)| format!("{l}{op}\"{v}\""))
        .collect();
    format!("{}{{{}}}", sel.name, matchers.join(","))
}

/// Whether a parsed sample records anything: a non-zero value, or a histogram with
/// observations.
fn is_fed(value: &prometheus_parse::Value) -> bool {
    use prometheus_parse::Value as V;
    match value {
        V::Counter(v) | V::Gauge(v) | V::Untyped(v) => *v != 0.0,
        V::Histogram(buckets) => buckets.last().is_some_and(|b| b.count > 0.0),
        V::Summary(_) => true,
    }
}

/// The value of one series of the scrape, by name and exact label set.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[test]
fn live_signer_feeds_every_panel_and_alert() {
    let test = "live_signer_feeds_every_panel_and_alert";
    let Some(hsm) = softhsm::softhsm() else {
        return;
    };
    let Some((prometheus_bin, _)) = require_prometheus(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (sealed, data) = (tmp.path().join("sealed"), tmp.path().join("data"));
    let token = hsm.token();
    let hsm_flags = token.cli_flags();
    run_ok(&strings(&["hsm", "init-kek"], &hsm_flags));
    let sealed_arg = sealed.display().to_string();
    run_ok(&strings(
        &["keys", "generate", "--count", "3", "--out", &sealed_arg],
        &hsm_flags,
    ));
    let mut files: Vec<_> = std::fs::read_dir(&sealed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    tamper(&files[0]);

    let data_arg = data.display().to_string();
    let run_args = strings(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--sealed-keys",
            &sealed_arg,
            "--data-dir",
            &data_arg,
            "--audit",
            "true",
            "--metrics-web3signer-compat",
            "true",
        ],
        &hsm_flags,
    );
    let run_refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let kg = KeyguardProcess::start(&run_refs, tmp.path()).unwrap();
    wait_loaded(&kg);
    let keys = kg.public_keys().unwrap();
    assert_eq!(keys.len(), 2, "two of three sealed keys load: {}", kg.log());

    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let prom =
        PrometheusProcess::start(&prometheus_bin, &prometheus_config(&kg), &prom_dir).unwrap();
    // The refusal series must have been scraped at 0 before the first refusal, or
    // `increase()` cannot see it.
    prom.wait_for(
        r#"count_over_time(keyguard_slashing_refusals_total{reason="double_vote"}[1m]) >= 2"#,
        PROMETHEUS_WAIT,
    )
    .unwrap();

    // The scenario: signatures of several types, one double vote, a 404 and a 400.
    let sign = |pubkey: &str, body: String| kg.sign_status(pubkey, body).unwrap();
    assert_eq!(sign(&keys[0], requests::attestation(3, 4, 1)), 200);
    assert_eq!(sign(&keys[0], requests::attestation(3, 4, 2)), 412);
    assert_eq!(sign(&keys[1], requests::attestation(3, 4, 1)), 200);
    assert_eq!(sign(&keys[1], requests::randao(7)), 200);
    assert_eq!(sign(&keys[1], requests::block_header(40, 9)), 200);
    assert_eq!(sign(&keys[1], requests::aggregation_slot(33)), 200);
    let unknown = format!("0x{}", "a1".repeat(48));
    assert_eq!(sign(&unknown, requests::randao(7)), 404);
    assert_eq!(sign(&keys[1], "{".to_string()), 400);

    // The refusal series existed at 0 before the refusal, so `increase()` sees it (a series
    // born at 1 has nothing to increase from).
    prom.wait_for(
        r#"increase(keyguard_slashing_refusals_total{reason="double_vote"}[1m]) > 0"#,
        PROMETHEUS_WAIT,
    )
    .unwrap();

    // The alerts the scenario provokes fire; the rest are inactive; all evaluate cleanly.
    let deadline = Instant::now() + PROMETHEUS_WAIT;
    let rules = loop {
        let rules = prom.alerting_rules().unwrap();
        let firing = |name: &str| {
            rules
                .iter()
                .any(|r| r["name"] == name && r["state"] == "firing")
        };
        if EXPECTED_FIRING.iter().all(|n| firing(n)) {
            break rules;
        }
        assert!(
            Instant::now() < deadline,
            "alerts {EXPECTED_FIRING:?} not all firing: {rules:#?}\nkeyguard log:\n{}",
            kg.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let in_file = std::fs::read_to_string(workspace_root().join(ALERT_RULES))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(in_file >= 11, "{ALERT_RULES} lost rules: {in_file}");
    assert_eq!(
        rules.len(),
        in_file,
        "every rule of {ALERT_RULES} is loaded"
    );
    let mut problems = Vec::new();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        if rule["health"] != "ok" {
            problems.push(format!(
                "{name}: health {} ({})",
                rule["health"], rule["lastError"]
            ));
        }
        let expected = if EXPECTED_FIRING.contains(&name) {
            "firing"
        } else {
            "inactive"
        };
        if rule["state"] != expected {
            problems.push(format!("{name}: {} instead of {expected}", rule["state"]));
        }
        // Every series an alert reads exists from start-up: an alert on a missing series
        // would never fire.
        let query = rule["query"].as_str().unwrap_or_default();
        let sels = selectors(query);
        if sels.is_empty() {
            problems.push(format!("{name}: no metric in `{query}`"));
        }
        for sel in sels {
            let expr = selector_text(&sel);
            match prom.query(&expr) {
                Ok(samples) if samples.is_empty() => {
                    problems.push(format!("{name}: `{expr}` has no series"))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("{name}: `{expr}`: {e}")),
            }
        }
    }
    assert!(problems.is_empty(), "alert rules:\n{}", problems.join("\n"));

    // Let one more scrape take in the scenario's requests, then run every dashboard query.
    prom.wait_for(
        r#"increase(keyguard_sign_request_duration_seconds_count{type="BLOCK_V2",outcome="signed"}[1m]) > 0"#,
        PROMETHEUS_WAIT,
    )
    .unwrap();
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    for (panel, expr) in &exprs {
        let promql = grafana_to_promql(expr);
        match prom.query(&promql) {
            Ok(samples) if samples.is_empty() => {
                problems.push(format!("{panel}: `{promql}` returned no data"))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{panel}: `{promql}`: {e}")),
        }
    }
    let build_info = prom.query("keyguard_build_info").unwrap();
    assert_eq!(build_info[0]["metric"]["job"], "keyguard", "{build_info:?}");
    assert!(
        problems.is_empty(),
        "dashboard queries:\n{}",
        problems.join("\n")
    );

    // The live scrape: every family a panel uses is exported and fed, every label matcher
    // names a real series.
    let text = kg.metrics().unwrap();
    let families = families(&text);
    let scrape = parse(&text);
    let mut used = BTreeSet::new();
    for (panel, expr) in &exprs {
        let sels = selectors(expr);
        if sels.is_empty() {
            problems.push(format!("{panel}: no metric in `{expr}`"));
        }
        for sel in sels {
            let Some(family) = family_of(&sel.name, &families) else {
                problems.push(format!("{panel}: `{}` is not exported", sel.name));
                continue;
            };
            used.insert(family.to_string());
            let series: Vec<_> = scrape
                .samples
                .iter()
                .filter(|s| s.metric == family || s.metric == sel.name)
                .collect();
            // process_* come from the process collector; CPU seconds are whole seconds,
            // still 0 this early.
            if !family.starts_with("process_") && !series.iter().any(|s| is_fed(&s.value)) {
                problems.push(format!("{panel}: nothing feeds `{family}`"));
            }
            for (label, op, value) in &sel.matchers {
                if TARGET_LABELS.contains(&label.as_str()) || label == "__name__" {
                    continue;
                }
                let has_label = series.iter().any(|s| s.labels.get(label).is_some());
                let has_value = series.iter().any(|s| s.labels.get(label) == Some(value));
                if !has_label {
                    problems.push(format!("{panel}: `{family}` has no label `{label}`"));
                } else if op == "=" && !has_value {
                    problems.push(format!(
                        "{panel}: no `{family}{{{label}=\"{value}\"}}` series"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "dead panels:\n{}", problems.join("\n"));
    for family in [
        "keyguard_sign_requests_total",
        "keyguard_sign_request_duration_seconds",
        "keyguard_slashing_refusals_total",
        "keyguard_slashing_check_duration_seconds",
        "keyguard_slashing_commit_batch_size",
        "keyguard_keys_loaded",
        "keyguard_key_loading_progress_ratio",
        "keyguard_key_loading_duration_seconds",
        "keyguard_hsm_operations_total",
        "keyguard_hsm_errors_total",
        "keyguard_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(family), "no panel queries {family}");
    }

    // What the owners fed, exactly.
    let sealed_keys = |state| {
        value(
            &scrape,
            "keyguard_keys_loaded",
            &[("source", "sealed"), ("state", state)],
        )
    };
    assert_eq!(sealed_keys("loaded"), Some(2.0), "{text}");
    assert_eq!(sealed_keys("failed"), Some(1.0), "{text}");
    let hsm = |family: &str, op| value(&scrape, family, &[("operation", op)]);
    assert_eq!(hsm("keyguard_hsm_operations_total", "login"), Some(1.0));
    assert_eq!(hsm("keyguard_hsm_operations_total", "unseal"), Some(3.0));
    assert_eq!(hsm("keyguard_hsm_errors_total", "unseal"), Some(1.0));
    assert_eq!(hsm("keyguard_hsm_errors_total", "health_check"), Some(0.0));
    assert!(hsm("keyguard_hsm_operations_total", "health_check").is_some_and(|n| n >= 1.0));
    assert_eq!(value(&scrape, "keyguard_hsm_up", &[]), Some(1.0));
    assert_eq!(value(&scrape, "keyguard_slashing_db_up", &[]), Some(1.0));
    assert_eq!(
        value(
            &scrape,
            "keyguard_slashing_refusals_total",
            &[("reason", "double_vote")]
        ),
        Some(1.0)
    );
    let loading = value(&scrape, "keyguard_key_loading_duration_seconds", &[]).unwrap();
    assert!(loading > 0.0 && loading < 30.0, "loading took {loading} s");
    // Loading finished: the duration no longer moves.
    let again = parse(&kg.metrics().unwrap());
    assert_eq!(
        value(&again, "keyguard_key_loading_duration_seconds", &[]),
        Some(loading)
    );

    check_exposition(&text, true);
}

/// The scrape parses with an independent text-format parser: every sample line understood,
/// histograms cumulative with `+Inf`, every family has help text, and the Web3Signer names
/// are there exactly when `compat`.
fn check_exposition(text: &str, compat: bool) {
    let families = families(text);
    let scrape = parse(text);
    assert!(!scrape.samples.is_empty());

    // Every sample line was understood: the parser merges a histogram's bucket lines into
    // one sample, so count lines and parsed values the same way.
    let mut lines_per_family: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name = line.split(['{', ' ']).next().expect("sample name");
        let family =
            family_of(name, &families).unwrap_or_else(|| panic!("sample `{name}` has no # TYPE"));
        *lines_per_family.entry(family).or_default() += 1;
    }
    let mut parsed_per_family: BTreeMap<&str, usize> = BTreeMap::new();
    for sample in &scrape.samples {
        let family = family_of(&sample.metric, &families)
            .unwrap_or_else(|| panic!("parsed `{}` has no # TYPE", sample.metric));
        let kind = families[family].as_str();
        let n = match (&sample.value, kind) {
            (prometheus_parse::Value::Counter(v), "counter")
            | (prometheus_parse::Value::Gauge(v), "gauge") => {
                assert!(v.is_finite() && *v >= 0.0, "{family} = {v}");
                1
            }
            (prometheus_parse::Value::Histogram(buckets), "histogram") => {
                let last = buckets.last().expect("buckets");
                assert!(last.less_than.is_infinite(), "{family} lacks +Inf");
                assert!(
                    buckets.windows(2).all(|w| w[0].count <= w[1].count),
                    "{family} buckets not cumulative"
                );
                buckets.len()
            }
            // `_sum` and `_count` lines of a histogram parse as untyped samples.
            (prometheus_parse::Value::Untyped(_), "histogram") => 1,
            (v, k) => panic!("{} parsed as {v:?} but is a {k}", sample.metric),
        };
        *parsed_per_family.entry(family).or_default() += n;
    }
    assert_eq!(lines_per_family, parsed_per_family, "compat={compat}");

    // Every family has help text.
    for family in families.keys() {
        assert!(scrape.docs.contains_key(family), "{family} has no HELP");
    }
    let compat_names = [
        "signing_bls_signing_duration",
        "eth2_slashingprotection_permitted_signings_total",
        "eth2_slashingprotection_prevented_signings_total",
        "signing_signers_loaded_count",
        "http_bls_malformed_request_count_total",
        "signing_bls_missing_identifier_count_total",
    ];
    for name in compat_names {
        assert_eq!(
            families.contains_key(name),
            compat,
            "{name}, compat={compat}"
        );
    }
}
