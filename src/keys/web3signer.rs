//! Web3Signer key definition files ("signing key configuration files"): a directory of
//! `*.yaml` / `*.yml` files, each holding one or more YAML documents separated by `---`,
//! one key per document.
//!
//! Supported document types (Web3Signer's field names):
//!
//! ```yaml
//! type: file-raw
//! keyType: BLS            # optional; BLS is the default and the only type supported
//! privateKey: "0x..."     # 32 bytes of hex, with or without 0x
//! ---
//! type: file-keystore
//! keystoreFile: keystore-1.json
//! keystorePasswordFile: keystore-1.txt
//! ```
//!
//! **Relative paths** in `keystoreFile` and `keystorePasswordFile` are resolved relative to
//! the directory of the YAML file that names them, not the process's working directory:
//! that way a key directory can be moved or mounted anywhere (a container volume, a
//! systemd `WorkingDirectory` that differs from the operator's shell) and keep working.
//! Absolute paths are used as they are.
//!
//! Other types Web3Signer knows (`hashicorp`, `azure-secret`, `azure-key`, `aws-secret`,
//! `aws-kms`, `gcp-secret`, `interlock`, `yubihsm`, ...) are reported per document as
//! "unsupported key type", naming the file and the (1-based) document number; the other
//! documents of the file still load.
//!
//! Secret hygiene: the file text is held in a zeroizing buffer, every string of the parsed
//! YAML tree is zeroized when the tree is dropped (so an Azure `clientSecret` in an
//! unsupported document is scrubbed too), and errors name fields, never values. The YAML
//! parser's own internal copies of scalars are outside our control.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};
use zeroize::{Zeroize, Zeroizing};

/// Definition files larger than this are refused (Web3Signer's default limit too).
pub const MAX_DEFINITION_FILE: u64 = 100 * 1024 * 1024;

/// One key, as a definition document describes it.
pub enum KeyDefinition {
    /// `type: file-raw`: the secret key itself.
    FileRaw {
        /// The 32 secret bytes.
        private_key: Zeroizing<[u8; 32]>,
    },
    /// `type: file-keystore`: an EIP-2335 keystore and its password file (both resolved
    /// to paths usable from any working directory).
    FileKeystore {
        /// The keystore JSON file.
        keystore_file: PathBuf,
        /// The file holding the keystore's password.
        password_file: PathBuf,
    },
}

impl std::fmt::Debug for KeyDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDefinition::FileRaw { .. } => f.write_str("FileRaw { private_key: <redacted> }"),
            KeyDefinition::FileKeystore {
                keystore_file,
                password_file,
            } => f
                .debug_struct("FileKeystore")
                .field("keystore_file", keystore_file)
                .field("password_file", password_file)
                .finish(),
        }
    }
}

/// One document of a definition file.
#[derive(Debug)]
pub struct DefinitionDocument {
    /// The YAML file.
    pub file: PathBuf,
    /// The document's position in the file, counting from 1.
    pub index: usize,
    /// The key it defines, or why it cannot be used.
    pub definition: Result<KeyDefinition, DefinitionError>,
}

impl DefinitionDocument {
    /// A label for listings and load failures: `path/keys.yaml (document 2)`.
    pub fn origin(&self) -> String {
        format!("{} (document {})", self.file.display(), self.index)
    }
}

/// A definition file or document that cannot be used. Names the file and document; never
/// contains key material.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", file.display(), document.map(|d| format!(", document {d}")).unwrap_or_default())]
pub struct DefinitionError {
    /// The YAML file.
    pub file: PathBuf,
    /// The 1-based document number, when the problem is within one document.
    pub document: Option<usize>,
    /// What is wrong.
    pub kind: DefinitionErrorKind,
}

/// What is wrong with a definition file or document.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionErrorKind {
    /// The file could not be read.
    #[error("cannot read file: {0}")]
    Io(#[source] std::io::Error),
    /// The file is larger than [`MAX_DEFINITION_FILE`].
    #[error("file is too large ({0} bytes)")]
    TooLarge(u64),
    /// The file is not UTF-8.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// The YAML is malformed. Only the position is reported: the parser's message may
    /// quote the text around it, which could be a private key.
    #[error("invalid YAML (at line {line}, column {column})")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The document is not a mapping of fields.
    #[error("a key definition must be a YAML mapping")]
    NotAMapping,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field that must be a string is not.
    #[error("field `{0}` must be a string")]
    NotAString(&'static str),
    /// A `type` other than `file-raw` / `file-keystore`.
    #[error("unsupported key type `{0}` (supported: file-raw, file-keystore)")]
    UnsupportedType(String),
    /// A `keyType` other than `BLS`.
    #[error("unsupported keyType `{0}` (only BLS is supported)")]
    UnsupportedKeyType(String),
    /// `privateKey` is not 32 bytes of hex. (Which character is wrong is not said.)
    #[error("field `privateKey` is not 32 bytes of hex")]
    InvalidPrivateKey,
}

/// The definition files of a directory: regular `*.yaml` / `*.yml` files (not hidden,
/// not in subdirectories, as Web3Signer's `--key-store-path`), sorted by name so load
/// order and reports are stable.
pub fn definition_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !hidden && yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one definition file. Failure to read the file at all is an `Err`; problems in
/// single documents are in the returned documents.
pub fn read_definition_file(file: &Path) -> Result<Vec<DefinitionDocument>, DefinitionError> {
    let fail = |kind| DefinitionError {
        file: file.to_path_buf(),
        document: None,
        kind,
    };
    let size = std::fs::metadata(file)
        .map_err(|e| fail(DefinitionErrorKind::Io(e)))?
        .len();
    if size > MAX_DEFINITION_FILE {
        return Err(fail(DefinitionErrorKind::TooLarge(size)));
    }
    // Definitions may hold raw keys, or paths to keystores and their passwords.
    crate::secret_file::warn_if_exposed(file, "key definitions");
    let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| fail(DefinitionErrorKind::Io(e)))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(DefinitionErrorKind::NotUtf8))?;
    Ok(parse_definitions(text, file))
}

/// Parses the documents of a definition file's text. `file` names the file in errors,
/// and its directory is the base for relative paths.
pub fn parse_definitions(yaml: &str, file: &Path) -> Vec<DefinitionDocument> {
    let base = file.parent().unwrap_or_else(|| Path::new(""));
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let index = i + 1;
        let err = |kind| DefinitionError {
            file: file.to_path_buf(),
            document: Some(index),
            kind,
        };
        let value = match Value::deserialize(de) {
            Ok(v) => Scrubbed(v),
            Err(e) => {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                docs.push(DefinitionDocument {
                    file: file.to_path_buf(),
                    index,
                    definition: Err(err(DefinitionErrorKind::Syntax { line, column })),
                });
                // The parser cannot resynchronise after an error (its iterator would
                // repeat the error forever), so the rest of the file is not read.
                break;
            }
        };
        // A stray `---` (empty document) defines nothing.
        if matches!(value.0, Value::Null) {
            continue;
        }
        docs.push(DefinitionDocument {
            file: file.to_path_buf(),
            index,
            definition: parse_document(&value.0, base).map_err(err),
        });
    }
    docs
}

/// Interprets one YAML document.
fn parse_document(value: &Value, base: &Path) -> Result<KeyDefinition, DefinitionErrorKind> {
    let map = match value {
        Value::Mapping(m) => m,
        _ => return Err(DefinitionErrorKind::NotAMapping),
    };
    let kind = string_field(map, "type")?.ok_or(DefinitionErrorKind::MissingField("type"))?;
    if let Some(key_type) = string_field(map, "keyType")? {
        if !key_type.trim().eq_ignore_ascii_case("BLS") {
            return Err(DefinitionErrorKind::UnsupportedKeyType(truncate(key_type)));
        }
    }
    match kind.trim() {
        "file-raw" => {
            let hex_key = string_field(map, "privateKey")?
                .ok_or(DefinitionErrorKind::MissingField("privateKey"))?;
            let hex_key = hex_key.trim();
            let digits = hex_key
                .strip_prefix("0x")
                .or_else(|| hex_key.strip_prefix("0X"))
                .unwrap_or(hex_key);
            let mut private_key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(digits, private_key.as_mut())
                .map_err(|_| DefinitionErrorKind::InvalidPrivateKey)?;
            Ok(KeyDefinition::FileRaw { private_key })
        }
        "file-keystore" => {
            let keystore = string_field(map, "keystoreFile")?
                .ok_or(DefinitionErrorKind::MissingField("keystoreFile"))?;
            let password = string_field(map, "keystorePasswordFile")?
                .ok_or(DefinitionErrorKind::MissingField("keystorePasswordFile"))?;
            Ok(KeyDefinition::FileKeystore {
                keystore_file: base.join(keystore.trim()),
                password_file: base.join(password.trim()),
            })
        }
        other => Err(DefinitionErrorKind::UnsupportedType(truncate(other))),
    }
}

/// A string field, `None` when absent. Numbers and booleans are refused rather than
/// converted, so their values never reach an error message.
fn string_field<'a>(
    map: &'a Mapping,
    name: &'static str,
) -> Result<Option<&'a str>, DefinitionErrorKind> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DefinitionErrorKind::NotAString(name)),
    }
}

/// Keeps names taken from files short in errors and logs.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A parsed YAML tree whose strings are zeroized on drop.
struct Scrubbed(Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

fn scrub(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Sequence(items) => items.iter_mut().for_each(scrub),
        Value::Mapping(map) => map.values_mut().for_each(scrub),
        Value::Tagged(tagged) => scrub(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "0x25b1166a43c109cb330af8945d364722757c65ed2bfed5444b5a2f057f82d391";

    fn parse(yaml: &str) -> Vec<DefinitionDocument> {
        parse_definitions(yaml, Path::new("/keys/conf/validators.yaml"))
    }

    #[test]
    fn multi_document_file_with_both_types_and_relative_paths() {
        let yaml = format!(
            "type: \"file-raw\"\nkeyType: \"BLS\"\nprivateKey: \"{KEY_A}\"\n---\n\
             type: file-keystore\nkeystoreFile: ks/one.json\nkeystorePasswordFile: /secrets/one.txt\n---\n\
             type: file-raw\nprivateKey: {}\n---\n\
             type: file-raw\nprivateKey: {KEY_A}\n",
            &KEY_A[2..]
        );
        let docs = parse(&yaml);
        assert_eq!(docs.len(), 4);
        assert_eq!(
            docs.iter().map(|d| d.index).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        match &docs[0].definition {
            Ok(KeyDefinition::FileRaw { private_key }) => {
                assert_eq!(hex::encode(**private_key), KEY_A[2..])
            }
            other => panic!("{other:?}"),
        }
        match &docs[1].definition {
            Ok(KeyDefinition::FileKeystore {
                keystore_file,
                password_file,
            }) => {
                assert_eq!(keystore_file, Path::new("/keys/conf/ks/one.json"));
                assert_eq!(password_file, Path::new("/secrets/one.txt"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            docs[2].definition,
            Ok(KeyDefinition::FileRaw { .. })
        ));
        assert_eq!(docs[1].origin(), "/keys/conf/validators.yaml (document 2)");
    }

    #[test]
    fn unsupported_types_name_file_document_and_type() {
        let yaml = format!(
            "type: file-raw\nprivateKey: \"{KEY_A}\"\n---\n\
             type: azure-secret\nvaultName: v\nsecretName: s\nclientSecret: hush\n---\n\
             type: file-raw\nkeyType: SECP256K1\nprivateKey: \"{KEY_A}\"\n"
        );
        let docs = parse(&yaml);
        assert!(docs[0].definition.is_ok());
        let err = docs[1].definition.as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            "/keys/conf/validators.yaml, document 2: unsupported key type `azure-secret` \
             (supported: file-raw, file-keystore)"
        );
        let err = docs[2].definition.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("document 3") && err.contains("SECP256K1"),
            "{err}"
        );
    }

    #[test]
    fn bad_documents_are_reported_without_key_material() {
        let docs = parse(&format!(
            "type: file-raw\nprivateKey: \"{}\"\n---\n\
             type: file-raw\nprivateKey: 123456789\n---\n\
             type: file-keystore\nkeystoreFile: a.json\n---\n\
             - just\n- a list\n---\n\
             privateKey: \"{KEY_A}\"\n---\n---\n\
             type: file-raw\nprivateKey: \"{KEY_A}\"\n",
            &KEY_A[..40]
        ));
        let errs: Vec<String> = docs
            .iter()
            .map(|d| match &d.definition {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e} / {e:?}"),
            })
            .collect();
        assert!(
            errs[0].contains("privateKey` is not 32 bytes"),
            "{}",
            errs[0]
        );
        assert!(errs[1].contains("must be a string"), "{}", errs[1]);
        assert!(
            errs[2].contains("missing field `keystorePasswordFile`"),
            "{}",
            errs[2]
        );
        assert!(errs[3].contains("must be a YAML mapping"), "{}", errs[3]);
        assert!(errs[4].contains("missing field `type`"), "{}", errs[4]);
        // The empty document 6 is skipped; document 7 still loads.
        assert_eq!(docs.len(), 6);
        assert_eq!((docs[5].index, errs[5].as_str()), (7, "ok"));
        for e in &errs {
            assert!(!e.contains(&KEY_A[2..40]), "{e}");
            assert!(!e.contains("123456789"), "{e}");
        }
    }

    #[test]
    fn syntax_error_reports_position_only() {
        let docs = parse(&format!(
            "type: file-raw\nprivateKey: \"{KEY_A}\"\n---\ntype: [file-raw\nprivateKey: \"{KEY_A}\"\n"
        ));
        assert_eq!(docs.len(), 2);
        assert!(docs[0].definition.is_ok());
        let err = docs[1].definition.as_ref().unwrap_err();
        assert!(matches!(err.kind, DefinitionErrorKind::Syntax { .. }));
        assert!(!format!("{err} {err:?}").contains(&KEY_A[2..]));
    }

    #[test]
    fn directory_listing_takes_yaml_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yml", "a.yaml", ".hidden.yaml", "notes.txt", "c.json"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let names: Vec<_> = definition_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml"]);
    }

    #[test]
    fn read_file_resolves_relative_to_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.yaml");
        std::fs::write(
            &file,
            "type: file-keystore\nkeystoreFile: ks.json\nkeystorePasswordFile: ../pw.txt\n",
        )
        .unwrap();
        let docs = read_definition_file(&file).unwrap();
        match &docs[0].definition {
            Ok(KeyDefinition::FileKeystore {
                keystore_file,
                password_file,
            }) => {
                assert_eq!(keystore_file, &dir.path().join("ks.json"));
                assert_eq!(password_file, &dir.path().join("../pw.txt"));
            }
            other => panic!("{other:?}"),
        }
        let missing = read_definition_file(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(missing.to_string().contains("nope.yaml"));
    }
}
