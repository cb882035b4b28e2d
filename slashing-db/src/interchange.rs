//! EIP-3076 interchange format v5: validation, minification, import and export.
//!
//! # Import strategy: minification (as Lighthouse does)
//!
//! The file is deserialised straight into per-validator summaries, never into a tree of
//! values and never into a list of all records: while the `signed_blocks` and
//! `signed_attestations` arrays are parsed, each element is validated (every problem is
//! collected with its JSON path) and folded into `max(slot)`, `max(source_epoch)` and
//! `max(target_epoch)`. Duplicate pubkeys are merged the same way.
//!
//! Applying the summaries (one transaction): for every validator with blocks in the file,
//! all of its recorded blocks are replaced by ONE synthetic block at
//! `max(recorded max slot, file max slot)` with a null signing root; likewise for
//! attestations, ONE synthetic attestation `(max source, max target)` (over records and
//! file) with a null root. Because the checks refuse `slot <= lowest slot`,
//! `source < lowest source` and `target <= lowest target`, this synthetic record is a low
//! watermark that refuses everything at or below what the file (or the database) already
//! contains, so slashable or self-contradictory data in a file (double votes,
//! surrounds, source > target) can never make a later signature slashable, and
//! importing the same file twice is idempotent. The price is that messages below the
//! watermark (gaps, re-signing an imported root) are refused: this is the "minimal"
//! strategy of the interchange test suite (`should_succeed`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{DbError, ImportError, ImportProblem};
use crate::records::{Records, StoredRoot, ValidatorId};

/// At most this many problems are kept in [`ImportError::Invalid`]; the total is counted.
pub const MAX_REPORTED_PROBLEMS: usize = 10_000;

/// The interchange format version this crate reads and writes.
pub const INTERCHANGE_FORMAT_VERSION: &str = "5";

/// Export flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Every recorded block and attestation, with signing roots.
    Complete,
    /// Per validator only the highest-slot block and one attestation carrying the highest
    /// source and target epochs (enough for a minifying importer).
    Minimal,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Distinct validators in the file.
    pub validators: usize,
    /// Validators not known to the database before the import.
    pub new_validators: usize,
    /// `signed_blocks` entries in the file.
    pub blocks_in_file: usize,
    /// `signed_attestations` entries in the file.
    pub attestations_in_file: usize,
}

/// Per-validator minified content of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidatorSummary {
    pub pubkey: [u8; 48],
    pub max_block_slot: Option<u64>,
    /// (max source, max target) over the file's attestations.
    pub max_attestation: Option<(u64, u64)>,
}

/// A validated, minified interchange.
#[derive(Debug, Clone)]
pub(crate) struct ParsedInterchange {
    pub genesis_validators_root: [u8; 32],
    pub validators: Vec<ValidatorSummary>,
    pub blocks: usize,
    pub attestations: usize,
}

// ---------------------------------------------------------------------------------------
// Scalars: every leaf of the format is a JSON string; anything else is reported, not fatal.

#[derive(Debug, Default)]
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Null,
    #[default]
    Missing,
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'a>, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("a boolean"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("a number (integers must be decimal strings)"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("a number (integers must be decimal strings)"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("a number (integers must be decimal strings)"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar<'a>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar<'a>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Collects problems, with a cap on how many are stored.
#[derive(Debug, Default)]
struct Problems {
    list: Vec<ImportProblem>,
    total: usize,
}

impl Problems {
    fn push(&mut self, location: impl FnOnce() -> String, message: impl Into<String>) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED_PROBLEMS {
            self.list.push(ImportProblem {
                location: location(),
                message: message.into(),
            });
        }
    }
    fn absorb(&mut self, prefix: &str, other: Problems) {
        self.total += other.total;
        for mut p in other.list {
            if self.list.len() >= MAX_REPORTED_PROBLEMS {
                break;
            }
            p.location = format!("{prefix}.{}", p.location);
            self.list.push(p);
        }
    }
}

fn scalar_str<'a>(s: &'a Scalar<'_>, what: &str) -> Result<&'a str, String> {
    match s {
        Scalar::Str(v) => Ok(v),
        Scalar::Null => Err(format!("{what} must be a string, found null")),
        Scalar::Missing => Err("missing".to_owned()),
        Scalar::Other(kind) => Err(format!("{what} must be a string, found {kind}")),
    }
}

/// Strict decimal `u64`: ASCII digits only, no sign, no whitespace, in range.
pub(crate) fn parse_decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn u64_field(s: &Scalar<'_>) -> Result<u64, String> {
    let v = scalar_str(s, "a decimal u64")?;
    parse_decimal_u64(v).ok_or_else(|| format!("not a decimal u64: {:?}", truncate(v)))
}

/// `0x`-prefixed hex of exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("not 0x-prefixed hex: {:?}", truncate(s)))?;
    if digits.len() != 2 * N {
        return Err(format!(
            "expected {} hex digits ({N} bytes), found {}",
            2 * N,
            digits.len()
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| format!("bad hex: {e}"))?;
    Ok(out)
}

fn hex_field<const N: usize>(s: &Scalar<'_>) -> Result<[u8; N], String> {
    parse_hex(scalar_str(s, "a hex string")?)
}

fn truncate(s: &str) -> String {
    if s.len() <= 40 {
        s.to_owned()
    } else {
        let mut end = 40;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

// ---------------------------------------------------------------------------------------
// Streaming folds.

#[derive(Deserialize)]
struct RawBlock<'a> {
    #[serde(borrow, default)]
    slot: Scalar<'a>,
    #[serde(borrow, default)]
    signing_root: Scalar<'a>,
}

#[derive(Deserialize)]
struct RawAttestation<'a> {
    #[serde(borrow, default)]
    source_epoch: Scalar<'a>,
    #[serde(borrow, default)]
    target_epoch: Scalar<'a>,
    #[serde(borrow, default)]
    signing_root: Scalar<'a>,
}

fn check_root(root: &Scalar<'_>) -> Result<(), String> {
    match root {
        Scalar::Missing | Scalar::Null => Ok(()),
        other => hex_field::<32>(other).map(|_| ()),
    }
}

#[derive(Default)]
struct BlocksFold {
    count: usize,
    max_slot: Option<u64>,
    problems: Problems,
}

impl<'de> Deserialize<'de> for BlocksFold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BlocksFold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of signed blocks")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<BlocksFold, A::Error> {
                let mut fold = BlocksFold::default();
                while let Some(b) = a.next_element::<RawBlock<'de>>()? {
                    let i = fold.count;
                    fold.count += 1;
                    match u64_field(&b.slot) {
                        Ok(slot) => fold.max_slot = fold.max_slot.max(Some(slot)),
                        Err(m) => fold.problems.push(|| format!("signed_blocks[{i}].slot"), m),
                    }
                    if let Err(m) = check_root(&b.signing_root) {
                        fold.problems
                            .push(|| format!("signed_blocks[{i}].signing_root"), m);
                    }
                }
                Ok(fold)
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Default)]
struct AttestationsFold {
    count: usize,
    max_source: Option<u64>,
    max_target: Option<u64>,
    problems: Problems,
}

impl<'de> Deserialize<'de> for AttestationsFold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttestationsFold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of signed attestations")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<AttestationsFold, A::Error> {
                let mut fold = AttestationsFold::default();
                while let Some(att) = a.next_element::<RawAttestation<'de>>()? {
                    let i = fold.count;
                    fold.count += 1;
                    match u64_field(&att.source_epoch) {
                        Ok(v) => fold.max_source = fold.max_source.max(Some(v)),
                        Err(m) => fold
                            .problems
                            .push(|| format!("signed_attestations[{i}].source_epoch"), m),
                    }
                    match u64_field(&att.target_epoch) {
                        Ok(v) => fold.max_target = fold.max_target.max(Some(v)),
                        Err(m) => fold
                            .problems
                            .push(|| format!("signed_attestations[{i}].target_epoch"), m),
                    }
                    if let Err(m) = check_root(&att.signing_root) {
                        fold.problems
                            .push(|| format!("signed_attestations[{i}].signing_root"), m);
                    }
                }
                Ok(fold)
            }
        }
        d.deserialize_seq(V)
    }
}

struct ValidatorFold {
    pubkey: Option<[u8; 48]>,
    blocks: BlocksFold,
    attestations: AttestationsFold,
    problems: Problems,
}

impl<'de> Deserialize<'de> for ValidatorFold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValidatorFold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a validator object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<ValidatorFold, A::Error> {
                let mut pubkey: Scalar<'de> = Scalar::Missing;
                let mut blocks = None;
                let mut atts = None;
                let mut problems = Problems::default();
                let mut seen_pubkey = false;
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    // A repeated key is reported, never resolved by keeping the last: two
                    // pubkeys or two histories in one object have no safe reading.
                    let repeated = match key.as_ref() {
                        "pubkey" => std::mem::replace(&mut seen_pubkey, true),
                        "signed_blocks" => blocks.is_some(),
                        "signed_attestations" => atts.is_some(),
                        _ => false,
                    };
                    if repeated {
                        a.next_value::<IgnoredAny>()?;
                        problems.push(|| key.to_string(), "duplicate key");
                        continue;
                    }
                    match key.as_ref() {
                        "pubkey" => pubkey = a.next_value()?,
                        "signed_blocks" => blocks = Some(a.next_value::<BlocksFold>()?),
                        "signed_attestations" => atts = Some(a.next_value::<AttestationsFold>()?),
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let pubkey = match hex_field::<48>(&pubkey) {
                    Ok(pk) => Some(pk),
                    Err(m) => {
                        problems.push(|| "pubkey".to_owned(), m);
                        None
                    }
                };
                if blocks.is_none() {
                    problems.push(|| "signed_blocks".to_owned(), "missing");
                }
                if atts.is_none() {
                    problems.push(|| "signed_attestations".to_owned(), "missing");
                }
                Ok(ValidatorFold {
                    pubkey,
                    blocks: blocks.unwrap_or_default(),
                    attestations: atts.unwrap_or_default(),
                    problems,
                })
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct DataFold {
    validators: Vec<ValidatorSummary>,
    blocks: usize,
    attestations: usize,
    problems: Problems,
}

impl<'de> Deserialize<'de> for DataFold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataFold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of validators")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<DataFold, A::Error> {
                let mut fold = DataFold::default();
                let mut index: HashMap<[u8; 48], usize> = HashMap::new();
                let mut i = 0usize;
                while let Some(v) = a.next_element::<ValidatorFold>()? {
                    let prefix = format!("data[{i}]");
                    i += 1;
                    let mut problems = v.problems;
                    problems.absorb_raw(v.blocks.problems);
                    problems.absorb_raw(v.attestations.problems);
                    fold.problems.absorb(&prefix, problems);
                    fold.blocks += v.blocks.count;
                    fold.attestations += v.attestations.count;
                    let Some(pubkey) = v.pubkey else { continue };
                    let att = match (v.attestations.max_source, v.attestations.max_target) {
                        (Some(s), Some(t)) => Some((s, t)),
                        _ => None,
                    };
                    // Duplicate pubkeys are merged by taking the maxima (minification).
                    let idx = *index.entry(pubkey).or_insert_with(|| {
                        fold.validators.push(ValidatorSummary {
                            pubkey,
                            max_block_slot: None,
                            max_attestation: None,
                        });
                        fold.validators.len() - 1
                    });
                    let entry = &mut fold.validators[idx];
                    entry.max_block_slot = entry.max_block_slot.max(v.blocks.max_slot);
                    entry.max_attestation = merge_att(entry.max_attestation, att);
                }
                Ok(fold)
            }
        }
        d.deserialize_seq(V)
    }
}

impl Problems {
    fn absorb_raw(&mut self, other: Problems) {
        self.total += other.total;
        let room = MAX_REPORTED_PROBLEMS.saturating_sub(self.list.len());
        self.list.extend(other.list.into_iter().take(room));
    }
}

fn merge_att(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<(u64, u64)> {
    match (a, b) {
        (Some((s1, t1)), Some((s2, t2))) => Some((s1.max(s2), t1.max(t2))),
        (x, None) | (None, x) => x,
    }
}

#[derive(Deserialize)]
struct RawMetadata<'a> {
    #[serde(borrow, default)]
    interchange_format_version: Scalar<'a>,
    #[serde(borrow, default)]
    genesis_validators_root: Scalar<'a>,
}

#[derive(Deserialize)]
struct RawInterchange<'a> {
    #[serde(borrow)]
    metadata: Option<RawMetadata<'a>>,
    data: Option<DataFold>,
}

/// Parses, validates and minifies an interchange file. No database access.
pub(crate) fn parse_interchange(json: &[u8]) -> Result<ParsedInterchange, ImportError> {
    let raw: RawInterchange<'_> =
        serde_json::from_slice(json).map_err(|e| ImportError::Json(e.to_string()))?;
    let mut problems = Problems::default();
    let mut gvr = None;
    match &raw.metadata {
        None => problems.push(|| "metadata".to_owned(), "missing"),
        Some(m) => {
            match scalar_str(&m.interchange_format_version, "the format version") {
                Ok(v) if v == INTERCHANGE_FORMAT_VERSION => {}
                Ok(v) => problems.push(
                    || "metadata.interchange_format_version".to_owned(),
                    format!(
                        "unsupported version {:?}, expected \"{INTERCHANGE_FORMAT_VERSION}\"",
                        truncate(v)
                    ),
                ),
                Err(e) => problems.push(|| "metadata.interchange_format_version".to_owned(), e),
            }
            match hex_field::<32>(&m.genesis_validators_root) {
                Ok(r) => gvr = Some(r),
                Err(e) => problems.push(|| "metadata.genesis_validators_root".to_owned(), e),
            }
        }
    }
    let data = match raw.data {
        Some(d) => d,
        None => {
            problems.push(|| "data".to_owned(), "missing");
            DataFold::default()
        }
    };
    let mut problems_all = problems;
    problems_all.absorb_raw(data.problems);
    match gvr {
        Some(genesis_validators_root) if problems_all.total == 0 => Ok(ParsedInterchange {
            genesis_validators_root,
            validators: data.validators,
            blocks: data.blocks,
            attestations: data.attestations,
        }),
        _ => Err(ImportError::Invalid {
            problems: problems_all.list,
            total: problems_all.total,
        }),
    }
}

/// Applies a parsed interchange inside the caller's transaction (see the module docs).
pub(crate) fn apply_import(
    rec: &mut dyn Records,
    parsed: &ParsedInterchange,
) -> Result<ImportSummary, ImportError> {
    match rec.meta()?.gvr {
        Some(bound) if bound != parsed.genesis_validators_root => {
            return Err(ImportError::WrongGenesisValidatorsRoot {
                bound,
                file: parsed.genesis_validators_root,
            })
        }
        Some(_) => {}
        None => rec.bind_gvr(&parsed.genesis_validators_root)?,
    }
    let mut pubkeys: Vec<[u8; 48]> = parsed.validators.iter().map(|v| v.pubkey).collect();
    pubkeys.sort_unstable();
    pubkeys.dedup();
    rec.lock_validators(&pubkeys)?;
    let mut new_validators = 0;
    for v in &parsed.validators {
        if rec.find_validator(&v.pubkey)?.is_none() {
            new_validators += 1;
        }
        let vid = rec.register_validator(&v.pubkey)?;
        let recorded = rec.summary(vid)?;
        if let Some(file_max) = v.max_block_slot {
            let slot = recorded.max_block_slot.unwrap_or(0).max(file_max);
            rec.delete_all_blocks(vid)?;
            rec.insert_block(vid, slot, None)?;
        }
        if let Some((file_source, file_target)) = v.max_attestation {
            let source = recorded.max_source.unwrap_or(0).max(file_source);
            let target = recorded.max_target.unwrap_or(0).max(file_target);
            rec.delete_all_attestations(vid)?;
            rec.insert_attestation(vid, source, target, None)?;
        }
    }
    Ok(ImportSummary {
        validators: parsed.validators.len(),
        new_validators,
        blocks_in_file: parsed.blocks,
        attestations_in_file: parsed.attestations,
    })
}

// ---------------------------------------------------------------------------------------
// Export: JSON written directly (all values are hex or decimal, nothing needs escaping).

fn write_root(out: &mut Vec<u8>, root: StoredRoot) -> Result<(), DbError> {
    if let Some(r) = root {
        write!(out, ",\"signing_root\":\"0x{}\"", hex::encode(r))
            .map_err(|e| DbError::Serialize(e.to_string()))?;
    }
    Ok(())
}

fn write_block(out: &mut Vec<u8>, first: bool, slot: u64, root: StoredRoot) -> Result<(), DbError> {
    if !first {
        out.push(b',');
    }
    write!(out, "{{\"slot\":\"{slot}\"").map_err(|e| DbError::Serialize(e.to_string()))?;
    write_root(out, root)?;
    out.push(b'}');
    Ok(())
}

fn write_attestation(
    out: &mut Vec<u8>,
    first: bool,
    source: u64,
    target: u64,
    root: StoredRoot,
) -> Result<(), DbError> {
    if !first {
        out.push(b',');
    }
    write!(
        out,
        "{{\"source_epoch\":\"{source}\",\"target_epoch\":\"{target}\""
    )
    .map_err(|e| DbError::Serialize(e.to_string()))?;
    write_root(out, root)?;
    out.push(b'}');
    Ok(())
}

/// Exports the database (or the given pubkeys, those unknown are skipped) as interchange
/// JSON.
pub(crate) fn export(
    rec: &mut dyn Records,
    pubkeys: Option<&[[u8; 48]]>,
    format: ExportFormat,
) -> Result<Vec<u8>, DbError> {
    let gvr = rec.meta()?.gvr.ok_or(DbError::NoGenesisValidatorsRoot)?;
    let ser = |e: std::io::Error| DbError::Serialize(e.to_string());
    let mut validators: Vec<(ValidatorId, [u8; 48])> = match pubkeys {
        Some(list) => {
            let mut seen = std::collections::HashSet::new();
            let mut found = Vec::new();
            for pk in list.iter().filter(|pk| seen.insert(**pk)) {
                if let Some(id) = rec.find_validator(pk)? {
                    found.push((id, *pk));
                }
            }
            found
        }
        None => rec.validators()?,
    };
    validators.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::with_capacity(256 + validators.len() * 256);
    write!(
        out,
        "{{\"metadata\":{{\"interchange_format_version\":\"{INTERCHANGE_FORMAT_VERSION}\",\"genesis_validators_root\":\"0x{}\"}},\"data\":[",
        hex::encode(gvr)
    )
    .map_err(ser)?;
    for (n, (vid, pk)) in validators.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write!(
            out,
            "{{\"pubkey\":\"0x{}\",\"signed_blocks\":[",
            hex::encode(pk)
        )
        .map_err(ser)?;
        match format {
            ExportFormat::Complete => {
                for (i, (slot, root)) in rec.blocks(*vid)?.into_iter().enumerate() {
                    write_block(&mut out, i == 0, slot, root)?;
                }
            }
            ExportFormat::Minimal => {
                if let Some(slot) = rec.summary(*vid)?.max_block_slot {
                    let root = rec.block_at(*vid, slot)?.flatten();
                    write_block(&mut out, true, slot, root)?;
                }
            }
        }
        out.extend_from_slice(b"],\"signed_attestations\":[");
        match format {
            ExportFormat::Complete => {
                for (i, (s, t, root)) in rec.attestations(*vid)?.into_iter().enumerate() {
                    write_attestation(&mut out, i == 0, s, t, root)?;
                }
            }
            ExportFormat::Minimal => {
                let summary = rec.summary(*vid)?;
                if let (Some(s), Some(t)) = (summary.max_source, summary.max_target) {
                    // Keep the signing root only if one record carries both maxima.
                    let root = rec.attestation_root(*vid, s, t)?.flatten();
                    write_attestation(&mut out, true, s, t, root)?;
                }
            }
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_u64_is_strict() {
        assert_eq!(parse_decimal_u64("0"), Some(0));
        assert_eq!(parse_decimal_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal_u64("18446744073709551616"), None);
        for bad in ["", "-1", "+1", " 1", "1 ", "0x10", "1.0", "1e3"] {
            assert_eq!(parse_decimal_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_lengths() {
        assert!(parse_hex::<32>(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(parse_hex::<32>(&"ab".repeat(32)).is_err());
        assert!(parse_hex::<32>(&format!("0x{}", "ab".repeat(31))).is_err());
        assert!(parse_hex::<32>(&format!("0x{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let pk = format!("0x{}", "aa".repeat(48));
        let json = format!(
            r#"{{"metadata":{{"interchange_format_version":"4","genesis_validators_root":"0x12"}},
            "data":[{{"pubkey":"{pk}","signed_blocks":[{{"slot":"1"}}],"signed_attestations":[]}},
            {{"pubkey":"0x00","signed_blocks":[{{"slot":12}}],
              "signed_attestations":[{{"source_epoch":"1","target_epoch":"2"}},{{"source_epoch":"1","target_epoch":"-2","signing_root":"0x1"}}]}}]}}"#
        );
        let Err(ImportError::Invalid { problems, total }) = parse_interchange(json.as_bytes())
        else {
            panic!("expected invalid");
        };
        let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(total, 6, "{problems:?}");
        assert_eq!(
            locs,
            [
                "metadata.interchange_format_version",
                "metadata.genesis_validators_root",
                "data[1].pubkey",
                "data[1].signed_blocks[0].slot",
                "data[1].signed_attestations[1].target_epoch",
                "data[1].signed_attestations[1].signing_root",
            ]
        );
        assert!(problems[4].message.contains("not a decimal u64"));
    }

    #[test]
    fn duplicate_json_keys_are_reported_not_overwritten() {
        let (pk, other) = (
            format!("0x{}", "aa".repeat(48)),
            format!("0x{}", "bb".repeat(48)),
        );
        let root = format!("0x{}", "00".repeat(32));
        let meta = format!(
            r#""metadata":{{"interchange_format_version":"5","genesis_validators_root":"{root}"}}"#
        );
        let json = format!(
            r#"{{{meta},"data":[{{"pubkey":"{pk}","pubkey":"{other}",
            "signed_blocks":[{{"slot":"7"}}],"signed_blocks":[],"signed_attestations":[]}}]}}"#
        );
        let Err(ImportError::Invalid { problems, .. }) = parse_interchange(json.as_bytes()) else {
            panic!("a duplicate key was accepted");
        };
        let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locs,
            ["data[0].pubkey", "data[0].signed_blocks"],
            "{problems:?}"
        );
        assert!(problems.iter().all(|p| p.message == "duplicate key"));

        // Inside records and metadata too (serde refuses repeated struct fields).
        let block = format!(
            r#"{{{meta},"data":[{{"pubkey":"{pk}","signed_blocks":[{{"slot":"9","slot":"1"}}],
            "signed_attestations":[]}}]}}"#
        );
        assert!(parse_interchange(block.as_bytes()).is_err());
        let metadata = format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"{root}",
            "genesis_validators_root":"0x{}"}},"data":[]}}"#,
            "11".repeat(32)
        );
        assert!(parse_interchange(metadata.as_bytes()).is_err());
    }

    #[test]
    fn duplicates_are_merged_by_maxima() {
        let pk = format!("0x{}", "aa".repeat(48));
        let json = format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"0x{}"}},
            "data":[{{"pubkey":"{pk}","signed_blocks":[{{"slot":"7"}}],"signed_attestations":[{{"source_epoch":"5","target_epoch":"6"}}]}},
                    {{"pubkey":"{pk}","signed_blocks":[{{"slot":"3"}}],"signed_attestations":[{{"source_epoch":"1","target_epoch":"9"}}]}}]}}"#,
            "00".repeat(32)
        );
        let parsed = parse_interchange(json.as_bytes()).expect("valid");
        assert_eq!(parsed.validators.len(), 1);
        assert_eq!(parsed.validators[0].max_block_slot, Some(7));
        assert_eq!(parsed.validators[0].max_attestation, Some((5, 9)));
        assert_eq!(parsed.blocks, 2);
        assert_eq!(parsed.attestations, 2);
    }
}
