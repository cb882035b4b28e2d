//! The Host-header allow-list (`access.allowed_hosts`), a guard against DNS rebinding: a
//! web page the operator opens cannot make the browser talk to the signer under a name
//! the attacker controls.
//!
//! Host names compare case-insensitively. An entry without a port matches any port; an
//! entry with a port (`signer.lan:9000`, `[::1]:9000`) matches only that port. `*`
//! matches anything.

/// One `access.allowed_hosts` entry that cannot be understood.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a host name, `name:port`, `[ipv6]`, `[ipv6]:port` or `*`")]
pub struct BadHostEntry(pub String);

/// The compiled allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAllowList {
    /// `*`: any Host header, or none, is accepted.
    Any,
    /// Only these.
    Only(Vec<HostPattern>),
}

/// One allowed host, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostAllowList {
    /// Compiles the entries; `*` anywhere makes the list accept everything.
    pub fn new(entries: &[String]) -> Result<Self, BadHostEntry> {
        if entries.iter().any(|e| e.trim() == "*") {
            return Ok(HostAllowList::Any);
        }
        let patterns = entries
            .iter()
            .map(|e| {
                let (host, port) = split_host_port(e).ok_or_else(|| BadHostEntry(e.clone()))?;
                Ok(HostPattern { host, port })
            })
            .collect::<Result<_, _>>()?;
        Ok(HostAllowList::Only(patterns))
    }

    /// True if a request with this Host value (`None`: no Host at all) is accepted.
    pub fn allows(&self, host_header: Option<&str>) -> bool {
        let patterns = match self {
            HostAllowList::Any => return true,
            HostAllowList::Only(patterns) => patterns,
        };
        let Some((host, port)) = host_header.and_then(split_host_port) else {
            return false;
        };
        patterns
            .iter()
            .any(|p| p.host == host && p.port.is_none_or(|want| Some(want) == port))
    }
}

/// Splits `name[:port]` or `[v6][:port]` into a lower-case host and the port. A bare IPv6
/// address (`::1`, as someone may write it in the config) is bracketed. A single
/// trailing dot (the absolute DNS form) is dropped.
fn split_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{inside}]"), port)
    } else if value.matches(':').count() > 1 {
        (format!("[{value}]"), None)
    } else if let Some((host, port)) = value.split_once(':') {
        (host.to_string(), Some(port.parse().ok()?))
    } else {
        (value.to_string(), None)
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
    valid.then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> HostAllowList {
        HostAllowList::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn default_list() -> HostAllowList {
        list(&["localhost", "127.0.0.1", "[::1]"])
    }

    #[test]
    fn default_accepts_loopback_names_on_any_port() {
        let l = default_list();
        for ok in [
            "localhost",
            "localhost:9000",
            "LOCALHOST:9000",
            "LocalHost.",
            "127.0.0.1:41234",
            "127.0.0.1",
            "[::1]:9000",
            "[::1]",
        ] {
            assert!(l.allows(Some(ok)), "{ok} should be allowed");
        }
    }

    #[test]
    fn default_refuses_other_names_and_a_missing_host() {
        let l = default_list();
        for bad in [
            "evil.example",
            "evil.example:9000",
            "localhost.evil.example",
            "127.0.0.2:9000",
            "[::2]:9000",
            "",
            "localhost:notaport",
            "local host",
        ] {
            assert!(!l.allows(Some(bad)), "{bad} should be refused");
        }
        assert!(!l.allows(None));
    }

    #[test]
    fn entry_with_port_matches_only_that_port() {
        let l = list(&["signer.lan:9000"]);
        assert!(l.allows(Some("signer.lan:9000")));
        assert!(l.allows(Some("SIGNER.LAN:9000")));
        assert!(!l.allows(Some("signer.lan:9001")));
        assert!(!l.allows(Some("signer.lan")));
    }

    #[test]
    fn bare_ipv6_entry_is_bracketed() {
        let l = list(&["::1"]);
        assert!(l.allows(Some("[::1]:9000")));
    }

    #[test]
    fn star_accepts_everything() {
        let l = list(&["localhost", "*"]);
        assert_eq!(l, HostAllowList::Any);
        assert!(l.allows(Some("evil.example")));
        assert!(l.allows(None));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["", "host:port", "[::1", "[::1]x", "a b"] {
            assert!(
                HostAllowList::new(&[bad.to_string()]).is_err(),
                "{bad:?} should not parse"
            );
        }
    }
}
