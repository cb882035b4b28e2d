//! Copying a whole slashing database into another, empty one (SQLite to PostgreSQL and
//! back): [`SlashingDb::migrate_into`].
//!
//! # Rows, not the interchange format
//!
//! The copy goes row by row through the backends' [`Records`] seam, not through an
//! EIP-3076 interchange file: an interchange import minifies (one synthetic record per
//! validator, signing roots dropped) and the format has no place for the high watermark,
//! nor for a database bound to a genesis validators root that holds no validator. Rows
//! keep everything: the genesis binding, the high watermark, every validator in
//! registration order (also those with no records), and every block and attestation
//! record with its signing root or its NULL. Whatever a backend derives from records (the
//! per-validator maxima, the lowest records that act as low watermarks) follows from the
//! same inserts the sign path uses.
//!
//! # One transaction on each side
//!
//! The source is read in one transaction on its writer thread and the target written in
//! one transaction on its writer thread; one validator's history at a time travels
//! between them over a bounded channel, so memory stays at a few validators' histories.
//! The target transaction first checks that the target is empty, and commits only after
//! the source has sent everything: a failure on either side leaves the target unchanged.
//!
//! # Verified
//!
//! After the commit both databases are read back: the genesis binding and the high
//! watermark must be equal, and the complete interchange exports (every record, signing
//! roots included, validators in registration order) must be byte-for-byte identical.

use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::error::DbError;
use crate::interchange::{self, ExportFormat};
use crate::options::HighWatermark;
use crate::records::{Meta, Records, StoredRoot};
use crate::SlashingDb;

/// Validators' histories in flight between the two writer threads.
const CHANNEL_DEPTH: usize = 16;

/// What [`SlashingDb::migrate_into`] copied (and then verified).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateSummary {
    /// The genesis validators root the target is now bound to (if the source was bound).
    pub genesis_validators_root: Option<[u8; 32]>,
    /// The high watermark copied (if one is set).
    pub high_watermark: Option<HighWatermark>,
    /// Validators copied (including those without records).
    pub validators: usize,
    /// Block records copied.
    pub blocks: usize,
    /// Attestation records copied.
    pub attestations: usize,
    /// Size of each of the two complete exports that were compared (0 when the source is
    /// not bound to a genesis validators root and so cannot be exported).
    pub export_bytes: usize,
}

/// Why a migration failed. Unless it is [`MigrateError::Mismatch`] (found after the commit),
/// the target is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target already holds slashing data: a copy would mix two histories.
    #[error(
        "the target database {target} is not empty ({what}); migrate only into a new, empty \
         database (to merge histories, export an interchange file and import it instead)"
    )]
    TargetNotEmpty {
        /// The target's location (no password).
        target: String,
        /// What was found.
        what: String,
    },
    /// Reading the source failed.
    #[error("reading the source database failed: {0}")]
    Source(DbError),
    /// Writing the target failed; its transaction was rolled back.
    #[error("writing the target database failed, nothing was written: {0}")]
    Target(DbError),
    /// The other side of the copy stopped before the end.
    #[error("the copy was interrupted: {0}")]
    Interrupted(&'static str),
    /// After the commit, the target does not read back like the source.
    #[error(
        "verification failed, the target does not match the source: {0} (was a signer \
         writing to the source during the migration?)"
    )]
    Mismatch(String),
}

/// One validator's complete history.
struct ValidatorHistory {
    pubkey: [u8; 48],
    blocks: Vec<(u64, StoredRoot)>,
    attestations: Vec<(u64, u64, StoredRoot)>,
}

/// What the source sends to the target, in this order: `Meta`, every `Validator`, `End`.
enum Item {
    Meta(Meta),
    Validator(ValidatorHistory),
    End,
}

/// An error on the source side (`?` on a [`DbError`] means the source failed).
struct SourceSide(MigrateError);

impl From<DbError> for SourceSide {
    fn from(e: DbError) -> Self {
        SourceSide(MigrateError::Source(e))
    }
}

/// An error on the target side (`?` on a [`DbError`] means the target failed).
struct TargetSide(MigrateError);

impl From<DbError> for TargetSide {
    fn from(e: DbError) -> Self {
        TargetSide(MigrateError::Target(e))
    }
}

fn high_watermark(meta: &Meta) -> Option<HighWatermark> {
    match (meta.hw_slot, meta.hw_epoch) {
        (None, None) => None,
        (slot, epoch) => Some(HighWatermark { slot, epoch }),
    }
}

impl SlashingDb {
    /// Copies this whole database into `target`, which must be empty (no genesis binding,
    /// no high watermark, no validator), in one transaction on each side, then verifies
    /// the copy (see the module docs). Blocking. Stop every signer on this database
    /// first: records written during the copy make the verification fail.
    pub fn migrate_into(&self, target: &SlashingDb) -> Result<MigrateSummary, MigrateError> {
        let (tx, rx) = mpsc::sync_channel::<Item>(CHANNEL_DEPTH);
        let target_location = target.location().to_owned();
        let (sent, received) = std::thread::scope(|scope| {
            let receiver = scope.spawn(move || {
                target
                    .admin(move |w| {
                        w.in_transaction(
                            |rec| receive_all(rec, &rx, &target_location),
                            |e: &TargetSide| match &e.0 {
                                MigrateError::Target(d) => Some(d.to_string()),
                                _ => None,
                            },
                        )
                    })
                    .map_err(MigrateError::Target)
                    .and_then(|r| r.map_err(|e| e.0))
            });
            let sent = self
                .admin(move |w| {
                    w.in_transaction(
                        |rec| send_all(rec, &tx),
                        |e: &SourceSide| match &e.0 {
                            MigrateError::Source(d) => Some(d.to_string()),
                            _ => None,
                        },
                    )
                })
                .map_err(MigrateError::Source)
                .and_then(|r| r.map_err(|e| e.0));
            let received = receiver
                .join()
                .unwrap_or(Err(MigrateError::Interrupted("the target side panicked")));
            (sent, received)
        });
        // A side that stopped because the other one failed reports `Interrupted`: report
        // the cause instead.
        let mut summary = match (sent, received) {
            (Ok(summary), Ok(())) => summary,
            (Err(e), Ok(())) | (Ok(_), Err(e)) => return Err(e),
            (Err(MigrateError::Interrupted(_)), Err(e)) | (Err(e), Err(_)) => return Err(e),
        };
        summary.export_bytes = verify(self, target)?;
        Ok(summary)
    }
}

/// Source side: reads everything in one transaction and sends it.
fn send_all(rec: &mut dyn Records, tx: &SyncSender<Item>) -> Result<MigrateSummary, SourceSide> {
    let send = |item| {
        tx.send(item)
            .map_err(|_| SourceSide(MigrateError::Interrupted("the target side stopped")))
    };
    let meta = rec.meta()?;
    let mut summary = MigrateSummary {
        genesis_validators_root: meta.gvr,
        high_watermark: high_watermark(&meta),
        ..MigrateSummary::default()
    };
    send(Item::Meta(meta))?;
    for (vid, pubkey) in rec.validators()? {
        let blocks = rec.blocks(vid)?;
        let attestations = rec.attestations(vid)?;
        summary.validators += 1;
        summary.blocks += blocks.len();
        summary.attestations += attestations.len();
        send(Item::Validator(ValidatorHistory {
            pubkey,
            blocks,
            attestations,
        }))?;
    }
    send(Item::End)?;
    Ok(summary)
}

/// Target side: checks it is empty, then writes what arrives until `End`.
fn receive_all(
    rec: &mut dyn Records,
    rx: &Receiver<Item>,
    location: &str,
) -> Result<(), TargetSide> {
    ensure_empty(rec, location)?;
    loop {
        let item = rx
            .recv()
            .map_err(|_| TargetSide(MigrateError::Interrupted("the source side stopped")))?;
        match item {
            Item::Meta(meta) => {
                if let Some(gvr) = &meta.gvr {
                    rec.bind_gvr(gvr)?;
                }
                if high_watermark(&meta).is_some() {
                    rec.set_high_watermark(meta.hw_slot, meta.hw_epoch)?;
                }
            }
            Item::Validator(history) => {
                let vid = rec.register_validator(&history.pubkey)?;
                for (slot, root) in history.blocks {
                    rec.insert_block(vid, slot, root)?;
                }
                for (source, target, root) in history.attestations {
                    rec.insert_attestation(vid, source, target, root)?;
                }
            }
            Item::End => return Ok(()),
        }
    }
}

fn ensure_empty(rec: &mut dyn Records, location: &str) -> Result<(), TargetSide> {
    let meta = rec.meta()?;
    let validators = rec.validators()?.len();
    let mut found = Vec::new();
    if let Some(gvr) = meta.gvr {
        found.push(format!(
            "bound to genesis_validators_root 0x{}",
            hex::encode(gvr)
        ));
    }
    if high_watermark(&meta).is_some() {
        found.push("a high watermark is set".to_owned());
    }
    if validators > 0 {
        found.push(format!("{validators} validators"));
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(TargetSide(MigrateError::TargetNotEmpty {
        target: location.to_owned(),
        what: found.join(", "),
    }))
}

/// What is compared after the copy: the settings and the complete export (or, for a
/// database never bound to a chain, which cannot be exported, the validator list).
#[derive(PartialEq, Eq)]
struct ReadBack {
    meta: Meta,
    export: Vec<u8>,
}

fn read_back(db: &SlashingDb) -> Result<ReadBack, DbError> {
    db.in_transaction(|rec| {
        let meta = rec.meta()?;
        let export = match meta.gvr {
            Some(_) => interchange::export(rec, None, ExportFormat::Complete)?,
            None => rec
                .validators()?
                .into_iter()
                .flat_map(|(_, pk)| pk)
                .collect(),
        };
        Ok(ReadBack { meta, export })
    })
}

/// Compares source and target (see [`ReadBack`]); returns the export's size.
fn verify(source: &SlashingDb, target: &SlashingDb) -> Result<usize, MigrateError> {
    let from = read_back(source).map_err(MigrateError::Source)?;
    let to = read_back(target).map_err(MigrateError::Target)?;
    if from.meta != to.meta {
        return Err(MigrateError::Mismatch(format!(
            "settings differ: source {:?}, target {:?}",
            from.meta, to.meta
        )));
    }
    if from.export != to.export {
        let first = from
            .export
            .iter()
            .zip(&to.export)
            .position(|(a, b)| a != b)
            .unwrap_or(from.export.len().min(to.export.len()));
        return Err(MigrateError::Mismatch(format!(
            "complete exports differ (source {} bytes, target {} bytes, first difference \
             at byte {first})",
            from.export.len(),
            to.export.len()
        )));
    }
    Ok(if from.meta.gvr.is_some() {
        from.export.len()
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Epoch, SigningRoot, Slot, Subject};

    const GVR: [u8; 32] = [7; 32];

    fn open(dir: &std::path::Path, name: &str) -> SlashingDb {
        SlashingDb::open(&dir.join(name), Default::default()).unwrap()
    }

    fn sign(db: &SlashingDb, pk: u8, subject: Subject, root: [u8; 32]) {
        db.check_and_record_blocking(GVR.into(), [pk; 48].into(), subject, SigningRoot(root))
            .unwrap();
    }

    /// A source with signed records (known and null roots), an imported validator without
    /// records, and a high watermark.
    fn source(dir: &std::path::Path) -> SlashingDb {
        let db = open(dir, "source.sqlite");
        let interchange = format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"0x{}"}},
            "data":[{{"pubkey":"0x{}","signed_blocks":[],"signed_attestations":[]}}]}}"#,
            hex::encode(GVR),
            hex::encode([0xee; 48])
        );
        db.import_interchange(interchange.as_bytes()).unwrap();
        sign(&db, 1, Subject::Block { slot: Slot(5) }, [1; 32]);
        sign(&db, 1, Subject::Block { slot: Slot(6) }, [0; 32]);
        let att = |s, t| Subject::Attestation {
            source: Epoch(s),
            target: Epoch(t),
        };
        sign(&db, 2, att(1, 2), [2; 32]);
        sign(&db, 2, att(2, 3), [0; 32]);
        sign(&db, 2, att(3, u64::MAX), [3; 32]);
        db.set_high_watermark(Some(u64::MAX), Some(9)).unwrap();
        db
    }

    #[test]
    fn everything_is_copied_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let from = source(dir.path());
        let to = open(dir.path(), "target.sqlite");
        let summary = from.migrate_into(&to).unwrap();
        assert_eq!(
            (summary.validators, summary.blocks, summary.attestations),
            (3, 2, 3)
        );
        assert_eq!(summary.genesis_validators_root, Some(GVR));
        let full = |db: &SlashingDb| db.export_interchange(None, ExportFormat::Complete).unwrap();
        assert_eq!(full(&to), full(&from));
        assert_eq!(summary.export_bytes, full(&from).len());
        assert_eq!(to.high_watermark().unwrap(), from.high_watermark().unwrap());
        // The validator without records is there; the null root is still null.
        let json: serde_json::Value = serde_json::from_slice(&full(&to)).unwrap();
        assert_eq!(
            json["data"][0]["pubkey"],
            format!("0x{}", hex::encode([0xee; 48]))
        );
        assert!(json["data"][1]["signed_blocks"][1]["signing_root"].is_null());
        // The copy protects: a double proposal at slot 5 is refused.
        let again = to.check_and_record_blocking(
            GVR.into(),
            [1; 48].into(),
            Subject::Block { slot: Slot(5) },
            SigningRoot([9; 32]),
        );
        assert!(again.is_err());
    }

    #[test]
    fn a_target_with_data_is_refused_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let from = source(dir.path());
        let prepares: [fn(&SlashingDb); 2] = [
            |db| db.bind_genesis_validators_root(GVR).unwrap(),
            |db| db.set_high_watermark(Some(1), None).unwrap(),
        ];
        for (i, prepare) in prepares.into_iter().enumerate() {
            let name = format!("target{i}.sqlite");
            let to = open(dir.path(), &name);
            prepare(&to);
            let err = from.migrate_into(&to).unwrap_err();
            assert!(matches!(err, MigrateError::TargetNotEmpty { .. }), "{err}");
            assert!(err.to_string().contains("not empty"), "{err}");
            assert!(to.is_registered([1; 48]).map(|r| !r).unwrap());
        }
    }

    #[test]
    fn an_unbound_source_with_only_a_high_watermark_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let from = open(dir.path(), "source.sqlite");
        from.set_high_watermark(Some(10), None).unwrap();
        let to = open(dir.path(), "target.sqlite");
        let summary = from.migrate_into(&to).unwrap();
        assert_eq!(summary.genesis_validators_root, None);
        assert_eq!(summary.export_bytes, 0);
        assert_eq!(
            to.high_watermark().unwrap(),
            Some(HighWatermark {
                slot: Some(10),
                epoch: None
            })
        );
    }
}
