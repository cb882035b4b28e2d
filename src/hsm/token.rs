//! The PKCS#11 module, the token, and the logged-in session keyguard keeps for its lifetime.
//!
//! PKCS#11 rules that shape this file:
//! - `C_Initialize` may run once per process, so each module is loaded and initialised once
//!   (with OS locking) and the context is shared by every [`HsmSession`].
//! - Slot ids change when tokens are added or initialised, so tokens are found by label.
//! - Login state belongs to the application and disappears when its last session on the
//!   token closes, so [`HsmSession`] keeps one session open for as long as it lives.
//! - A `Session` may not be used from two threads at once: the main session sits behind a
//!   mutex, and parallel unsealing borrows extra sessions from a small pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::Mutex;
use zeroize::Zeroize;

use super::metrics::{HsmMetrics, HsmOperation};
use super::{HsmConfig, HsmError};

/// One initialised context per module path, for the whole process.
static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

fn contexts() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initialises a module, or returns the context already initialised for it.
fn context_for(module: &Path) -> Result<Pkcs11, HsmError> {
    if !module.is_file() {
        return Err(HsmError::ModuleNotFound {
            path: module.to_path_buf(),
        });
    }
    // Canonical path as the key, so `./x.so` and `/abs/x.so` share one context.
    let key = module.canonicalize().map_err(|e| HsmError::ModuleLoad {
        path: module.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut map = contexts().lock();
    if let Some(ctx) = map.get(&key) {
        return Ok(ctx.clone());
    }
    let load_err = |e: P11Error| HsmError::ModuleLoad {
        path: module.to_path_buf(),
        reason: e.to_string(),
    };
    let ctx = Pkcs11::new(&key).map_err(load_err)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another component of this process initialised the module already: share it.
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_err(e)),
    }
    map.insert(key, ctx.clone());
    Ok(ctx)
}

/// Finalises every module this process initialised (`C_Finalize`). Call once at shutdown,
/// after every [`HsmSession`] has been dropped; sessions still alive stop working.
pub fn finalize_modules() {
    let drained: Vec<Pkcs11> = contexts().lock().drain().map(|(_, ctx)| ctx).collect();
    for ctx in drained {
        if let Err(e) = ctx.finalize() {
            tracing::warn!(error = %e, "C_Finalize failed");
        }
    }
}

/// What `list_tokens` reports about one token. Nothing here is secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenSummary {
    /// The slot id (changes over time; for display only).
    pub slot_id: u64,
    /// The token label.
    pub label: String,
    /// Manufacturer id.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Whether the token has been initialised (an uninitialised slot has no usable label).
    pub initialized: bool,
    /// Whether the user PIN has been set.
    pub user_pin_initialized: bool,
}

/// Lists the tokens a module offers, initialised or not. Needs no PIN.
pub fn list_tokens(module: &Path) -> Result<Vec<TokenSummary>, HsmError> {
    let ctx = context_for(module)?;
    let err = |op| {
        move |source| HsmError::Pkcs11 {
            op,
            token: "(any)".into(),
            source,
        }
    };
    let slots = ctx.get_slots_with_token().map_err(err("C_GetSlotList"))?;
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        let info = match ctx.get_token_info(slot) {
            Ok(info) => info,
            Err(e) => {
                // Listed as unusable rather than failing the whole listing.
                tracing::warn!(slot = slot.id(), error = %e, "C_GetTokenInfo failed");
                continue;
            }
        };
        out.push(TokenSummary {
            slot_id: slot.id(),
            label: info.label().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            initialized: info.token_initialized(),
            user_pin_initialized: info.user_pin_initialized(),
        });
    }
    Ok(out)
}

/// Finds the one initialised token with `label`.
fn find_token(ctx: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let err = |op| {
        move |source| HsmError::Pkcs11 {
            op,
            token: label.to_string(),
            source,
        }
    };
    let mut found = Vec::new();
    let mut available = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(err("C_GetSlotList"))? {
        // A broken slot (token pulled, device error) must not hide the others.
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let this = info.label().trim_end();
        if this == label {
            found.push(slot);
        }
        available.push(this.to_string());
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(HsmError::TokenNotFound {
            label: label.to_string(),
            module: module.to_path_buf(),
            available,
        }),
        many => Err(HsmError::TokenAmbiguous {
            label: label.to_string(),
            module: module.to_path_buf(),
            count: many.len(),
        }),
    }
}

/// Whether the value of a KEK can leave the token, as the token itself reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekProtection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_TOKEN` (persistent).
    pub token_object: bool,
    /// `CKA_PRIVATE` (needs login).
    pub private: bool,
    /// True if `C_GetAttributeValue(CKA_VALUE)` returned the key value. Must be false.
    pub value_readable: bool,
}

/// A logged-in session with one token, kept open for the life of the process.
pub struct HsmSession {
    // Field order is drop order: the main session closes last-but-one, the context
    // (a cheap handle; finalisation is explicit) last.
    workers: Mutex<Vec<Session>>,
    main: Mutex<Session>,
    keks: Mutex<HashMap<String, ObjectHandle>>,
    parallel: AtomicBool,
    slot: Slot,
    module: PathBuf,
    token_label: String,
    kek_label: String,
    /// Where this session counts its operations; set once by the server.
    metrics: OnceLock<HsmMetrics>,
    ctx: Pkcs11,
}

impl std::fmt::Debug for HsmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSession")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("kek_label", &self.kek_label)
            .finish_non_exhaustive()
    }
}

impl HsmSession {
    /// Loads the module (once per process), finds the token by label, opens a read-write
    /// session and logs in as the user with the PIN from the configured file or variable.
    ///
    /// Does not require the KEK to exist (so `init_kek` can use it); call
    /// [`HsmSession::require_kek`] at start-up for a clear error when it is missing.
    ///
    /// Login state belongs to the process: a second `HsmSession` on a token this process
    /// is already logged into shares that login, and the token does not check its PIN
    /// again (PKCS#11 has no way to check a PIN without logging in, and `C_Logout` would
    /// log the first session out). Keep one `HsmSession` per token per process.
    pub fn open(config: &HsmConfig) -> Result<Self, HsmError> {
        config.validate()?;
        // Read the PIN before touching the module: a missing PIN file is the likelier error.
        let pin = config.read_pin()?;
        let ctx = context_for(&config.module)?;
        let slot = find_token(&ctx, &config.module, &config.token_label)?;
        let token = config.token_label.clone();
        let session = ctx
            .open_rw_session(slot)
            .map_err(|source| HsmError::Pkcs11 {
                op: "C_OpenSession",
                token: token.clone(),
                source,
            })?;
        // `pin` is zeroizing and sized exactly, so this moves without reallocating; the
        // binding's SecretString zeroizes on drop.
        let auth = AuthPin::from(pin.as_str());
        drop(pin);
        match session.login(UserType::User, Some(&auth)) {
            // Another HsmSession of this process on the same token is already logged in;
            // login state is per application, so this session shares it.
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(P11Error::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                return Err(HsmError::WrongPin {
                    token,
                    module: config.module.clone(),
                })
            }
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(HsmError::PinLocked { token })
            }
            Err(source) => {
                return Err(HsmError::Pkcs11 {
                    op: "C_Login",
                    token,
                    source,
                })
            }
        }
        drop(auth);
        Ok(Self {
            workers: Mutex::new(Vec::new()),
            main: Mutex::new(session),
            keks: Mutex::new(HashMap::new()),
            parallel: AtomicBool::new(true),
            slot,
            module: config.module.clone(),
            token_label: config.token_label.clone(),
            kek_label: config.kek_label.clone(),
            metrics: OnceLock::new(),
            ctx,
        })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The configured KEK label (used for sealing).
    pub fn kek_label(&self) -> &str {
        &self.kek_label
    }

    /// Whether sealed-key jobs unseal on their own sessions in parallel (default) or take
    /// turns on the main session. Exists so the two can be measured against each other.
    pub fn set_parallel_unseal(&self, parallel: bool) {
        self.parallel.store(parallel, Ordering::Relaxed);
    }

    /// Fails with [`HsmError::KekMissing`] unless the configured KEK exists, and with
    /// [`HsmError::KekWeak`] unless it is an AES-256 key that is sensitive and never
    /// extractable (`CKK_AES`, `CKA_VALUE_LEN` 32, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`):
    /// a KEK created by another tool with weaker attributes would let sealed keys be
    /// unsealed outside the token.
    pub fn require_kek(&self) -> Result<(), HsmError> {
        let kek = self.find_kek(&self.kek_label)?;
        let problems = self.kek_weaknesses(kek)?;
        if problems.is_empty() {
            return Ok(());
        }
        Err(HsmError::KekWeak {
            label: self.kek_label.clone(),
            token: self.token_label.clone(),
            problems: problems.join(", "),
        })
    }

    /// What makes the KEK `kek` unfit, as attribute descriptions (empty when fit).
    fn kek_weaknesses(&self, kek: ObjectHandle) -> Result<Vec<String>, HsmError> {
        let wanted = [
            AttributeType::KeyType,
            AttributeType::ValueLen,
            AttributeType::Sensitive,
            AttributeType::Extractable,
        ];
        let attrs = self
            .main
            .lock()
            .get_attributes(kek, &wanted)
            .map_err(|source| self.p11("C_GetAttributeValue", source))?;
        // Anything the token does not report counts as unsafe.
        let (mut aes, mut len, mut sensitive, mut extractable) = (false, None, false, true);
        for attr in attrs {
            match attr {
                Attribute::KeyType(t) => aes = t == KeyType::AES,
                Attribute::ValueLen(v) => len = Some(usize::from(v)),
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        let mut problems = Vec::new();
        if !aes {
            problems.push("CKA_KEY_TYPE is not CKK_AES".to_string());
        }
        if len != Some(32) {
            let shown = len.map_or("unknown".to_string(), |l| l.to_string());
            problems.push(format!("CKA_VALUE_LEN is {shown}, not 32 (AES-256)"));
        }
        if !sensitive {
            problems.push("CKA_SENSITIVE is false".to_string());
        }
        if extractable {
            problems.push("CKA_EXTRACTABLE is true".to_string());
        }
        Ok(problems)
    }

    /// Counts this session's operations in `metrics` from now on (a second call is
    /// ignored), starting with the login that opened it: a failed login never gets here,
    /// it stops start-up.
    pub fn attach_metrics(&self, metrics: HsmMetrics) {
        if self.metrics.set(metrics).is_ok() {
            self.observe(HsmOperation::Login, true);
        }
    }

    /// Records one operation's outcome in the attached metrics, if any.
    pub(crate) fn observe(&self, operation: HsmOperation, succeeded: bool) {
        if let Some(m) = self.metrics.get() {
            m.observe(operation, succeeded);
        }
    }

    /// The health check: the token must still be present and the session logged in.
    /// A removed or failed HSM turns into [`HsmError::Unavailable`]. Each check is counted
    /// (operation `health_check`); the liveness monitor turns probes into `keyguard_hsm_up`.
    pub fn check_alive(&self) -> Result<(), HsmError> {
        let result = self.probe();
        self.observe(HsmOperation::HealthCheck, result.is_ok());
        result
    }

    fn probe(&self) -> Result<(), HsmError> {
        let unavailable = |reason: String| HsmError::Unavailable {
            token: self.token_label.clone(),
            module: self.module.clone(),
            reason,
        };
        self.ctx
            .get_token_info(self.slot)
            .map_err(|e| unavailable(e.to_string()))?;
        let main = self.main.lock();
        let info = main
            .get_session_info()
            .map_err(|e| unavailable(e.to_string()))?;
        if !matches!(
            info.session_state(),
            SessionState::RwUser | SessionState::RoUser
        ) {
            return Err(unavailable(format!(
                "session is no longer logged in (state {:?})",
                info.session_state()
            )));
        }
        // A real operation, not just bookkeeping: some modules answer the calls above from
        // a cache even after the device went away.
        let mut probe = [0u8; 1];
        main.generate_random_slice(&mut probe)
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(())
    }

    /// Fills `buf` from the token's random number generator (`C_GenerateRandom`).
    pub fn random(&self, buf: &mut [u8]) -> Result<(), HsmError> {
        self.main
            .lock()
            .generate_random_slice(buf)
            .map_err(|source| self.p11("C_GenerateRandom", source))
    }

    /// Reports the protection attributes of a KEK, and whether its value can be read.
    pub fn kek_protection(&self, label: &str) -> Result<KekProtection, HsmError> {
        let kek = self.find_kek(label)?;
        let main = self.main.lock();
        let attrs = main
            .get_attributes(
                kek,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Token,
                    AttributeType::Private,
                ],
            )
            .map_err(|source| self.p11("C_GetAttributeValue", source))?;
        let mut p = KekProtection {
            sensitive: false,
            extractable: true,
            token_object: false,
            private: false,
            value_readable: false,
        };
        for attr in attrs {
            match attr {
                Attribute::Sensitive(v) => p.sensitive = v,
                Attribute::Extractable(v) => p.extractable = v,
                Attribute::Token(v) => p.token_object = v,
                Attribute::Private(v) => p.private = v,
                _ => {}
            }
        }
        // Ask for the value itself, both ways a caller could.
        let info = main
            .get_attribute_info(kek, &[AttributeType::Value])
            .map_err(|source| self.p11("C_GetAttributeValue", source))?;
        if matches!(info.first(), Some(AttributeInfo::Available(_))) {
            p.value_readable = true;
        }
        if let Ok(values) = main.get_attributes(kek, &[AttributeType::Value]) {
            for attr in values {
                if let Attribute::Value(mut v) = attr {
                    p.value_readable = true;
                    v.zeroize();
                }
            }
        }
        Ok(p)
    }

    /// The handle of the secret key labelled `label`, cached after the first lookup
    /// (handles of token objects stay valid across this application's sessions).
    pub(crate) fn find_kek(&self, label: &str) -> Result<ObjectHandle, HsmError> {
        if let Some(h) = self.keks.lock().get(label) {
            return Ok(*h);
        }
        let found = self.find_objects_labelled(label, Some(ObjectClass::SECRET_KEY))?;
        match found.as_slice() {
            [h] => {
                self.keks.lock().insert(label.to_string(), *h);
                Ok(*h)
            }
            [] => Err(HsmError::KekMissing {
                label: label.to_string(),
                token: self.token_label.clone(),
            }),
            many => Err(HsmError::KekAmbiguous {
                label: label.to_string(),
                token: self.token_label.clone(),
                count: many.len(),
            }),
        }
    }

    /// Forgets a cached KEK handle (after the KEK was destroyed).
    pub(crate) fn forget_kek(&self, label: &str) {
        self.keks.lock().remove(label);
    }

    /// Objects with `label`, of any class unless `class` is given.
    pub(crate) fn find_objects_labelled(
        &self,
        label: &str,
        class: Option<ObjectClass>,
    ) -> Result<Vec<ObjectHandle>, HsmError> {
        let mut template = vec![Attribute::Label(label.as_bytes().to_vec())];
        if let Some(class) = class {
            template.push(Attribute::Class(class));
        }
        self.main
            .lock()
            .find_objects(&template)
            .map_err(|source| self.p11("C_FindObjects", source))
    }

    /// Runs `f` on the main session (serialised).
    pub(crate) fn with_main<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.main.lock())
    }

    /// Runs `f` on a session of its own when parallel unsealing is on (borrowed from the
    /// pool, or opened; login state is shared so it needs no login), else on the main one.
    pub(crate) fn with_worker<R>(&self, f: impl FnOnce(&Session) -> R) -> Result<R, HsmError> {
        if !self.parallel.load(Ordering::Relaxed) {
            return Ok(self.with_main(f));
        }
        let pooled = self.workers.lock().pop();
        let session = match pooled {
            Some(s) => s,
            None => self
                .ctx
                .open_ro_session(self.slot)
                .map_err(|source| self.p11("C_OpenSession", source))?,
        };
        let out = f(&session);
        self.workers.lock().push(session);
        Ok(out)
    }

    /// Wraps a binding error with the operation and this token's label.
    pub(crate) fn p11(&self, op: &'static str, source: P11Error) -> HsmError {
        HsmError::Pkcs11 {
            op,
            token: self.token_label.clone(),
            source,
        }
    }
}
