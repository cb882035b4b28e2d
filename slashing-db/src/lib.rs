//! TEMPORARY interface stub; replaced by the real crate on merge.
#![allow(missing_docs, unused_variables)]
use std::path::Path;
use std::time::Duration;

#[derive(Clone)]
pub struct SlashingDb;
#[derive(Default)]
pub struct OpenOptions {
    pub max_batch: usize,
    pub observer: Option<std::sync::Arc<dyn DbObserver>>,
}
pub trait DbObserver: Send + Sync {
    fn check_latency(&self, d: Duration);
    fn commit(&self, batch_size: usize, commit_time: Duration);
    fn refusal(&self, reason: &'static str);
}
#[derive(Debug, thiserror::Error)]
#[error("db error")]
pub struct DbError;
#[derive(Debug, thiserror::Error)]
#[error("refused")]
pub struct Refusal;
impl Refusal {
    pub fn reason(&self) -> &'static str {
        "x"
    }
}
#[derive(Debug, thiserror::Error)]
pub enum SignCheckError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Db(DbError),
}
pub enum Health {
    Up,
    Down { reason: String },
}
impl SlashingDb {
    pub fn open(path: &Path, options: OpenOptions) -> Result<SlashingDb, DbError> {
        Ok(SlashingDb)
    }
    pub async fn check_and_record_block(
        &self,
        gvr: [u8; 32],
        pubkey: [u8; 48],
        slot: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        Ok(())
    }
    pub async fn check_and_record_attestation(
        &self,
        gvr: [u8; 32],
        pubkey: [u8; 48],
        source_epoch: u64,
        target_epoch: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        Ok(())
    }
    pub fn health(&self) -> Health {
        Health::Up
    }
}
pub enum ExportFormat {
    Complete,
    Minimal,
}
impl SlashingDb {
    pub fn import_interchange(&self, json: &[u8]) -> Result<(), DbError> {
        Ok(())
    }
    pub fn export_interchange(
        &self,
        pubkeys: Option<&[[u8; 48]]>,
        f: ExportFormat,
    ) -> Result<Vec<u8>, DbError> {
        Ok(vec![])
    }
    pub fn set_high_watermark(&self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError> {
        Ok(())
    }
    pub fn clear_high_watermark(&self) -> Result<(), DbError> {
        Ok(())
    }
    pub fn high_watermark(&self) -> Result<Option<u64>, DbError> {
        Ok(None)
    }
    pub fn prune(&self, k: u64, s: u64) -> Result<(), DbError> {
        Ok(())
    }
}
