//! The Grafana dashboard queries only metrics keyguard exports (no dead panels), its label
//! matchers name labels and values keyguard really uses, the dashboard is importable (datasource
//! variable, `__inputs`), and the exposition output parses with an independent Prometheus
//! text-format parser.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyguard::consensus::RequestType;
use keyguard::keys::KeySource;
use keyguard::metrics::{KeyState, Metrics, SignPath};
use keyguard::outcome::{Outcome, UNKNOWN_REQUEST_TYPE};
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

/// Records at least one sample of every family, so every family is exported.
fn exercised_metrics(compat: bool) -> Metrics {
    let m = Metrics::new(compat).expect("metrics");
    let d = Duration::from_micros(900);
    for t in RequestType::ALL {
        m.observe_request(t.as_str(), Outcome::Signed, d);
    }
    m.observe_request("ATTESTATION", Outcome::SlashingRefused("surround_vote"), d);
    m.observe_request("BLOCK_V2", Outcome::SlashingRefused("double_proposal"), d);
    m.observe_request(UNKNOWN_REQUEST_TYPE, Outcome::BadRequest, d);
    m.observe_request("ATTESTATION", Outcome::UnknownKey, d);
    m.observe_request("ATTESTATION", Outcome::Error, d);
    for path in SignPath::ALL {
        m.observe_bls_sign(path, Duration::from_micros(350));
    }
    m.slashing_check_latency(Duration::from_micros(120));
    m.slashing_commit(17, Duration::from_millis(2));
    m.slashing_refusal("surround_vote");
    m.set_keys(KeySource::Keystore, KeyState::Loaded, 5);
    m.set_keys(KeySource::Keystore, KeyState::Failed, 1);
    m.add_keys(KeySource::Sealed, KeyState::Loaded, 2);
    m.set_key_loading_progress(6, 6);
    m.set_key_loading_duration(Duration::from_secs(4));
    m.observe_hsm_operation("unseal", true);
    m.observe_hsm_operation("unseal", false);
    m
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
fn every_dashboard_metric_is_exported() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());

    let text = exercised_metrics(false).encode();
    let families = families(&text);
    let scrape = parse(&text);

    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
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
            // Every equality matcher must match a series keyguard exports (after recording).
            for (label, op, value) in &sel.matchers {
                if TARGET_LABELS.contains(&label.as_str()) || label == "__name__" {
                    continue;
                }
                let series: Vec<_> = scrape
                    .samples
                    .iter()
                    .filter(|s| s.metric == family || s.metric == sel.name)
                    .collect();
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

    // The dashboard covers every keyguard family except none; process metrics it needs exist.
    for family in [
        "keyguard_sign_requests_total",
        "keyguard_sign_request_duration_seconds",
        "keyguard_slashing_refusals_total",
        "keyguard_slashing_check_duration_seconds",
        "keyguard_slashing_commit_batch_size",
        "keyguard_keys_loaded",
        "keyguard_key_loading_progress_ratio",
        "keyguard_hsm_errors_total",
        "keyguard_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(family), "no panel queries {family}");
    }
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

#[test]
fn exposition_parses_with_an_independent_parser() {
    for compat in [false, true] {
        let text = exercised_metrics(compat).encode();
        let families = families(&text);
        let scrape = parse(&text);
        assert!(!scrape.samples.is_empty());

        // Every sample line was understood: the parser merges a histogram's bucket lines into
        // one sample, so count lines and parsed values the same way.
        let mut lines_per_family: BTreeMap<&str, usize> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let name = line.split(['{', ' ']).next().expect("sample name");
            let family = family_of(name, &families)
                .unwrap_or_else(|| panic!("sample `{name}` has no # TYPE"));
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
}
