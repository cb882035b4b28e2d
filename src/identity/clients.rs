//! Compiling `[[access.clients]]`: bearer tokens read from their files, fingerprints and
//! key scopes parsed. Every problem is a [`ConfigError`] naming `access.clients[i].…`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::fingerprint::{self, Fingerprint};
use crate::config::access::ClientConfig;
use crate::config::error::ConfigError;
use crate::consensus::RequestType;
use crate::keys::{self, PubkeyBytes};

/// A client's bearer token, kept only as its SHA-256: comparing digests of equal length
/// in constant time leaks neither the token's bytes nor its length.
pub struct TokenDigest(Zeroizing<[u8; 32]>);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &[u8]) -> Self {
        Self(Zeroizing::new(Sha256::digest(token).into()))
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// One compiled `[[access.clients]]` entry.
#[derive(Debug)]
pub struct Client {
    /// Its name.
    pub name: String,
    /// Its certificates.
    pub fingerprints: Vec<Fingerprint>,
    /// Its bearer token, if it has one.
    pub token: Option<TokenDigest>,
    /// Its `pubkeys`, if it has a list; `None`: no scope of its own (see
    /// `access::AccessPolicy::may_use` for what that means).
    pub scope: Option<KeyScope>,
    /// The only request types it may sign; `None`: every type but `DEPOSIT`.
    pub types: Option<HashSet<RequestType>>,
}

/// A client's `pubkeys`: the keys it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// `["*"]`: every key, said explicitly.
    All,
    /// Only these keys.
    Only(HashSet<PubkeyBytes>),
}

impl KeyScope {
    /// True if the scope holds `pubkey`.
    pub fn contains(&self, pubkey: &PubkeyBytes) -> bool {
        match self {
            KeyScope::All => true,
            KeyScope::Only(keys) => keys.contains(pubkey),
        }
    }
}

/// Compiles every entry; names, fingerprints and tokens must be unique across entries.
pub fn compile(configs: &[ClientConfig]) -> Result<Vec<Client>, ConfigError> {
    let clients = configs
        .iter()
        .enumerate()
        .map(|(i, c)| compile_one(i, c))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(&clients)?;
    Ok(clients)
}

fn compile_one(index: usize, config: &ClientConfig) -> Result<Client, ConfigError> {
    let setting = |field: &str| format!("access.clients[{index}].{field}");
    let name = config.name.trim();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(
            setting("name"),
            "every client needs a name without spaces",
        ));
    }
    if config.fingerprints.is_empty() && config.token_file.is_none() {
        return Err(ConfigError::new(
            setting("fingerprints"),
            format!("client `{name}` has neither fingerprints nor a token_file, so nothing can identify it"),
        ));
    }
    let fingerprints = config
        .fingerprints
        .iter()
        .map(|f| fingerprint::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(setting("fingerprints"), e.to_string()))?;
    let token = match &config.token_file {
        Some(path) => {
            Some(read_token(path).map_err(|m| ConfigError::new(setting("token_file"), m))?)
        }
        None => None,
    };
    let scope = match &config.pubkeys {
        Some(list) => Some(parse_scope(list).map_err(|m| ConfigError::new(setting("pubkeys"), m))?),
        None => None,
    };
    let types = match &config.types {
        Some(list) => Some(parse_types(list).map_err(|m| ConfigError::new(setting("types"), m))?),
        None => None,
    };
    Ok(Client {
        name: name.to_string(),
        fingerprints,
        token,
        scope,
        types,
    })
}

/// The token is the file's content without surrounding whitespace (a trailing newline
/// is how editors save files); it must not be empty.
fn read_token(path: &std::path::Path) -> Result<TokenDigest, String> {
    crate::secret_file::warn_if_exposed(path, "client token");
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    let bits = token_bits(token);
    if bits < MIN_TOKEN_BITS {
        return Err(format!(
            "the token in {} has about {bits} bits; at least {MIN_TOKEN_BITS} are required \
             (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(TokenDigest::of(token.as_bytes()))
}

/// The least guessing strength of a client token, in bits.
const MIN_TOKEN_BITS: u32 = 128;

/// A generous estimate of a token's strength: length times the bits of the smallest
/// usual alphabet it fits (hex 4, base64 6, other printable text 6.5), and no more than
/// a word-like token of few distinct characters deserves.
fn token_bits(token: &str) -> u32 {
    let len = u32::try_from(token.chars().count()).unwrap_or(u32::MAX);
    let distinct = token.chars().collect::<HashSet<_>>().len();
    let per_char_x10: u32 = if token.chars().all(|c| c.is_ascii_hexdigit()) {
        40
    } else if token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=-_".contains(c))
    {
        60
    } else {
        65
    };
    // Fewer than 8 distinct characters ("aaaa…", "abab…") is not a random token.
    if distinct < 8 {
        return 0;
    }
    len.saturating_mul(per_char_x10) / 10
}

/// `["*"]` is every key; otherwise each entry is a pubkey. `*` among pubkeys, or an empty
/// list, is refused: both look like a mistake.
fn parse_scope(list: &[String]) -> Result<KeyScope, String> {
    if list.iter().any(|pk| pk.trim() == "*") {
        return match list.len() {
            1 => Ok(KeyScope::All),
            _ => Err("`*` (every key) cannot be combined with pubkeys".into()),
        };
    }
    if list.is_empty() {
        return Err("an empty list allows no key; remove the client or list its keys".into());
    }
    list.iter()
        .map(|pk| {
            keys::parse_pubkey(pk.trim())
                .ok_or_else(|| format!("`{pk}` is not a 48-byte hex BLS public key"))
        })
        .collect::<Result<_, _>>()
        .map(KeyScope::Only)
}

/// Request type names as in a sign request's `type` (`ATTESTATION`, `BLOCK_V2`, ...).
fn parse_types(list: &[String]) -> Result<HashSet<RequestType>, String> {
    if list.is_empty() {
        return Err("an empty list allows no request; remove the client or list its types".into());
    }
    list.iter()
        .map(|name| {
            RequestType::from_wire(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = RequestType::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "`{name}` is not a request type; known: {}",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Two entries with one name, certificate or token would make identities ambiguous.
fn check_unique(clients: &[Client]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    let mut fingerprints = HashMap::new();
    for (i, client) in clients.iter().enumerate() {
        if !names.insert(client.name.as_str()) {
            return Err(ConfigError::new(
                format!("access.clients[{i}].name"),
                format!("the name `{}` is used twice", client.name),
            ));
        }
        for fp in &client.fingerprints {
            if let Some(other) = fingerprints.insert(*fp, client.name.as_str()) {
                return Err(ConfigError::new(
                    format!("access.clients[{i}].fingerprints"),
                    format!(
                        "{} is also listed for client `{other}`",
                        fingerprint::to_colon_hex(fp)
                    ),
                ));
            }
        }
        let token_taken = client.token.as_ref().is_some_and(|t| {
            clients[..i]
                .iter()
                .filter_map(|c| c.token.as_ref())
                .any(|other| other.matches(t))
        });
        if token_taken {
            return Err(ConfigError::new(
                format!("access.clients[{i}].token_file"),
                "this token is also the token of another client",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
    const FP: &str = "df65b802085e91820f91f51c965692c41af6c627fd6cfc31f2bb901722595b50";

    fn client(name: &str) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            fingerprints: vec![FP.into()],
            ..Default::default()
        }
    }

    #[test]
    fn bad_pubkey_names_the_setting() {
        let mut c = client("a");
        c.pubkeys = Some(vec![PK.into(), "0x1234".into()]);
        let err = compile(&[client("x"), c]).unwrap_err();
        assert_eq!(err.setting, "access.clients[1].pubkeys");
        assert!(err.message.contains("0x1234"), "{err}");
    }

    #[test]
    fn scope_is_parsed() {
        let mut c = client("a");
        c.pubkeys = Some(vec![PK.into()]);
        let compiled = compile(&[c]).unwrap();
        let pk = keys::parse_pubkey(PK).unwrap();
        assert_eq!(
            compiled[0].scope,
            Some(KeyScope::Only(std::iter::once(pk).collect()))
        );
        let mut all = client("b");
        all.pubkeys = Some(vec![" * ".into()]);
        assert_eq!(compile(&[all]).unwrap()[0].scope, Some(KeyScope::All));
    }

    #[test]
    fn types_are_parsed_by_wire_name() {
        let mut c = client("a");
        c.types = Some(vec!["ATTESTATION".into(), "deposit".into()]);
        let compiled = compile(&[c]).unwrap();
        let expected = [RequestType::Attestation, RequestType::Deposit];
        assert_eq!(compiled[0].types, Some(expected.into_iter().collect()));
        let mut bad = client("b");
        bad.types = Some(vec!["SIGN_ANYTHING".into()]);
        let err = compile(&[bad]).unwrap_err();
        assert_eq!(err.setting, "access.clients[0].types");
        assert!(err.message.contains("BLOCK_V2"), "{err}");
    }

    #[test]
    fn tokens_are_read_trimmed_and_compared_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "s3cret-token-9f2c4a7e1d8b\n").unwrap();
        let c = ClientConfig {
            name: "tok".into(),
            token_file: Some(path),
            ..Default::default()
        };
        let compiled = compile(&[c]).unwrap();
        let token = compiled[0].token.as_ref().unwrap();
        assert!(token.matches(&TokenDigest::of(b"s3cret-token-9f2c4a7e1d8b")));
        assert!(!token.matches(&TokenDigest::of(b"s3cret-token-9f2c4a7e1d8b\n")));
        assert!(!token.matches(&TokenDigest::of(b"other")));
        assert!(!format!("{compiled:?}").contains("s3cret"));
    }

    #[test]
    fn weak_tokens_are_refused() {
        assert!(
            token_bits(&"ab".repeat(16)) < MIN_TOKEN_BITS,
            "two distinct characters"
        );
        assert!(token_bits("0123456789abcdef0123456789abcde") < MIN_TOKEN_BITS);
        assert!(token_bits("0123456789abcdef0123456789abcdef") >= MIN_TOKEN_BITS);
        assert!(token_bits("Zk3q9Xv0LmT2pR8sW4yB7c") >= MIN_TOKEN_BITS);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "password123\n").unwrap();
        let c = ClientConfig {
            name: "tok".into(),
            token_file: Some(path),
            ..Default::default()
        };
        let err = compile(&[c]).unwrap_err();
        assert_eq!(err.setting, "access.clients[0].token_file");
        assert!(err.message.contains("128"), "{err}");
    }

    #[test]
    fn empty_or_missing_token_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  \n").unwrap();
        for file in [path, dir.path().join("absent")] {
            let c = ClientConfig {
                name: "tok".into(),
                token_file: Some(file),
                ..Default::default()
            };
            assert_eq!(
                compile(&[c]).unwrap_err().setting,
                "access.clients[0].token_file"
            );
        }
    }

    #[test]
    fn duplicates_and_unidentifiable_clients_are_errors() {
        let err = compile(&[client("a"), client("a")]).unwrap_err();
        assert_eq!(err.setting, "access.clients[1].name");
        let err = compile(&[client("a"), client("b")]).unwrap_err();
        assert_eq!(err.setting, "access.clients[1].fingerprints");
        let nothing = ClientConfig {
            name: "n".into(),
            ..Default::default()
        };
        assert_eq!(
            compile(&[nothing]).unwrap_err().setting,
            "access.clients[0].fingerprints"
        );
        assert_eq!(
            compile(&[client("")]).unwrap_err().setting,
            "access.clients[0].name"
        );
        let mut bad_fp = client("c");
        bad_fp.fingerprints = vec!["zz".into()];
        assert_eq!(
            compile(&[bad_fp]).unwrap_err().setting,
            "access.clients[0].fingerprints"
        );
    }
}
