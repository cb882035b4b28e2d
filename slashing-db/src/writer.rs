//! The writer thread: owns the backend, drains the request queue into batches and commits
//! each batch as ONE transaction (group commit). Every request is answered only from the
//! outcome of a transaction that committed; if anything fails, every request of the batch
//! is answered with a database error (fail closed). The same loop serves every backend.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::checks;
use crate::error::{DbError, Refusal, SignCheckError};
use crate::options::{CommitPacer, DbObserver, Health};
use crate::records::{Backend, Records};
use crate::types::{Approval, GenesisValidatorsRoot, SigningRoot, Subject, ValidatorPubkey};

/// How often an idle writer checks a backend that can be probed (see [`Backend::probe`]).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How often a batch is retried when the backend reports a conflict with another writer
/// (deadlock or serialization failure: the transaction was rolled back, nothing of it
/// happened).
const MAX_BATCH_RETRIES: usize = 5;

/// CPU time this thread has used so far (`None` if the clock cannot be read). One
/// `clock_gettime` per reading: cheap next to a batch.
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Where a sign request's answer goes.
pub(crate) enum Reply {
    /// An async caller.
    Async(oneshot::Sender<Result<Approval, SignCheckError>>),
    /// A blocking caller.
    Sync(SyncSender<Result<Approval, SignCheckError>>),
}

impl Reply {
    fn send(self, r: Result<Approval, SignCheckError>) {
        // The requester may have gone away; its record (if any) is committed anyway.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Sync(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// One queued check-and-record request.
pub(crate) struct SignOp {
    pub gvr: GenesisValidatorsRoot,
    pub pubkey: ValidatorPubkey,
    pub root: SigningRoot,
    pub subject: Subject,
    pub reply: Reply,
}

/// A job run on the writer thread between batches.
pub(crate) type AdminJob = Box<dyn FnOnce(&mut Writer) + Send>;

/// What the queue carries.
pub(crate) enum Command {
    Sign(SignOp),
    Admin(AdminJob),
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub backend: Box<dyn Backend>,
    pub health: Arc<Mutex<Health>>,
    pub observer: Option<Arc<dyn DbObserver>>,
    pub pacer: Option<Arc<dyn CommitPacer>>,
    pub max_batch: usize,
}

impl Writer {
    fn set_health_down(&self, reason: String) {
        let mut g = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(&*g, Health::Down { reason: r } if *r == reason) {
            tracing::error!(%reason, "slashing database DOWN");
        }
        *g = Health::Down { reason };
    }

    fn set_health_up(&self) {
        let mut g = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if *g != Health::Up {
            tracing::info!("slashing database UP");
            *g = Health::Up;
        }
    }

    /// Serves the queue until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        let mut batch: Vec<SignOp> = Vec::with_capacity(self.max_batch);
        loop {
            let cmd = match rx.recv_timeout(PROBE_INTERVAL) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    self.probe();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut admin = None;
            match cmd {
                Command::Sign(op) => batch.push(op),
                Command::Admin(job) => admin = Some(job),
            }
            while admin.is_none() && batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(Command::Sign(op)) => batch.push(op),
                    Ok(Command::Admin(job)) => admin = Some(job),
                    Err(_) => break,
                }
            }
            if admin.is_none() && !batch.is_empty() {
                admin = self.hold_batch_open(&rx, &mut batch);
            }
            if !batch.is_empty() {
                self.process_batch(&mut batch);
            }
            if let Some(job) = admin {
                job(&mut self);
            }
        }
        tracing::debug!("slashing database writer stopped");
    }

    /// While idle, lets a backend with a connection find out whether it is reachable, so
    /// that health says DOWN while no connection can be made (and UP again once it can).
    fn probe(&mut self) {
        match self.backend.probe() {
            Some(Ok(())) => self.set_health_up(),
            Some(Err(e)) => self.set_health_down(e.to_string()),
            None => {}
        }
    }

    /// Keeps the batch open for as long as the pacer allows (see [`CommitPacer`]), then
    /// adds what arrived meanwhile, up to a full batch or an admin job (returned, to run
    /// after the batch commits). The writer sleeps through the wait instead of waking for
    /// each arrival: every wake-up would be a context switch on the signing cores.
    fn hold_batch_open(&self, rx: &Receiver<Command>, batch: &mut Vec<SignOp>) -> Option<AdminJob> {
        let delay = self.pacer.as_ref()?.commit_delay();
        if delay.is_zero() || batch.len() >= self.max_batch {
            return None;
        }
        std::thread::sleep(delay);
        while batch.len() < self.max_batch {
            match rx.try_recv() {
                Ok(Command::Sign(op)) => batch.push(op),
                Ok(Command::Admin(job)) => return Some(job),
                Err(_) => break,
            }
        }
        None
    }

    fn process_batch(&mut self, batch: &mut Vec<SignOp>) {
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        let mut attempt = 0;
        let result = loop {
            match self.check_batch(batch) {
                Err(e) if e.is_conflict() && attempt < MAX_BATCH_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "slashing batch conflicted; retrying");
                }
                result => break result,
            }
        };
        if let Some(o) = &self.observer {
            let cpu = cpu_started
                .zip(thread_cpu_time())
                .map(|(start, end)| end.saturating_sub(start));
            o.writer_batch(batch.len(), started.elapsed(), cpu);
        }
        match result {
            Ok(outcomes) => {
                // Health first: a caller that got its answer must not read a stale DOWN.
                self.set_health_up();
                for (op, outcome) in batch.drain(..).zip(outcomes) {
                    match outcome {
                        Ok(approval) => op.reply.send(Ok(approval)),
                        Err(refusal) => {
                            if let Some(o) = &self.observer {
                                o.refusal(refusal.reason());
                            }
                            op.reply.send(Err(SignCheckError::Refused(refusal)));
                        }
                    }
                }
            }
            Err(e) => {
                self.set_health_down(e.to_string());
                for op in batch.drain(..) {
                    op.reply.send(Err(SignCheckError::Db(e.clone())));
                }
            }
        }
    }

    /// Checks and records every op in one transaction, then commits. On `Err` nothing of
    /// the batch may be acted on (rolled back, or commit outcome unknown).
    fn check_batch(&mut self, batch: &[SignOp]) -> Result<Vec<Result<Approval, Refusal>>, DbError> {
        let lock_order = self.backend.locks_rows().then(|| {
            let mut pubkeys: Vec<[u8; 48]> = batch.iter().map(|op| op.pubkey.0).collect();
            pubkeys.sort_unstable();
            pubkeys.dedup();
            pubkeys
        });
        let observer = self.observer.clone();
        let mut tx = self.backend.begin()?;
        if let Some(pubkeys) = &lock_order {
            tx.lock_validators(pubkeys)?;
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for op in batch {
            let t0 = Instant::now();
            let outcome =
                checks::check_and_record(&mut *tx, &op.gvr, &op.pubkey, op.subject, &op.root)?;
            if let Some(o) = &observer {
                o.check_latency(t0.elapsed());
            }
            outcomes.push(outcome);
        }
        let t0 = Instant::now();
        tx.commit()?;
        if let Some(o) = &observer {
            o.commit(batch.len(), t0.elapsed());
        }
        Ok(outcomes)
    }

    /// Runs `f` in its own transaction; commits on `Ok`, rolls back on `Err`.
    /// `is_db_error` tells which errors are database failures (they set health DOWN).
    pub(crate) fn in_transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut dyn Records) -> Result<T, E>,
        is_db_error: impl Fn(&E) -> Option<String>,
    ) -> Result<T, E> {
        let result = (|| {
            let mut tx = self.backend.begin().map_err(E::from)?;
            let v = f(&mut *tx)?;
            tx.commit().map_err(E::from)?;
            Ok(v)
        })();
        match &result {
            Ok(_) => self.set_health_up(),
            Err(e) => {
                if let Some(reason) = is_db_error(e) {
                    self.set_health_down(reason);
                }
            }
        }
        result
    }
}
