//! Zero-copy shared-memory IPC for Linux: the safe Rust API over libshoal.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> shoal::Result<()> {
//!     let rt = shoal::Runtime::new("hello")?; // needs a running `shoald`
//!     let publisher = rt.publisher("greetings")?;
//!     let subscriber = rt.subscriber("greetings")?;
//!
//!     let mut loan = publisher.loan(64)?; // a chunk of shared memory
//!     loan.write(b"hello, shoal")?; // written in place, size set to 12
//!     loan.publish()?; // zero-copy hand-over
//!
//!     if let Some(sample) = subscriber.take(Duration::from_secs(1))? {
//!         println!("{}", String::from_utf8_lossy(&sample)); // Sample derefs to [u8]
//!     } // the sample is released here
//!     Ok(())
//! }
//! ```
//!
//! # Ownership
//! * [`Runtime`] is a cheap, clonable, thread-safe handle (`Send + Sync`);
//!   every port holds a clone, so the runtime lives until its last port.
//! * Ports ([`Publisher`], [`Subscriber`], [`Client`], [`Server`]) are `Send`
//!   but not `Sync`: one thread at a time, as the C ABI requires.
//! * Guards ([`Loan`], [`Sample`], [`Request`], [`Response`]) borrow their
//!   port, release their chunk on `Drop` and are neither `Send` nor `Sync`.
//!   Payload slices borrow the guard, so they cannot outlive the release:
//!
//! ```compile_fail
//! # fn f(sub: &shoal::Subscriber) -> shoal::Result<()> {
//! let bytes: &[u8];
//! {
//!     let sample = sub.take(std::time::Duration::ZERO)?.unwrap();
//!     bytes = &sample[..];
//! } // sample released here
//! println!("{bytes:?}"); // error: `sample` does not live long enough
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! # fn f(rt: &shoal::Runtime) -> shoal::Result<()> {
//! let sample;
//! {
//!     let sub = rt.subscriber("t")?;
//!     sample = sub.take(std::time::Duration::ZERO)?;
//! } // error: `sub` dropped while its sample is borrowed
//! drop(sample);
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! # fn f(sub: &shoal::Subscriber) -> shoal::Result<()> {
//! let sample = sub.take(std::time::Duration::ZERO)?.unwrap();
//! std::thread::spawn(move || drop(sample)); // error: Sample is not Send
//! # Ok(()) }
//! ```
//!
//! # Timeouts
//! Every wait takes a [`Duration`]: [`NO_WAIT`] (zero) does not wait,
//! [`FOREVER`] (or anything longer than `i64::MAX` nanoseconds) waits without
//! bound. A take that times out is not an error: it returns `Ok(None)`.
//!
//! # Errors
//! Every failing C call becomes an [`Error`] with an [`ErrorCode`] and the
//! per-thread detail message of the library (which limit, which pool, ...).

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

pub use shoal_sys as sys;

// ---- errors ---------------------------------------------------------------------

/// The result codes of the C ABI.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidArgument,
    Timeout,
    PoolExhausted,
    ChunkTooLarge,
    PortLimit,
    HeldLimit,
    QueueFull,
    DaemonUnavailable,
    VersionMismatch,
    Permission,
    NoServer,
    ServerGone,
    ClientGone,
    Corrupt,
    NoMemory,
    System,
    WrongPort,
    ProcessLimit,
    ServiceLimit,
    AlreadyExists,
    NotFound,
    Busy,
    /// A code this crate does not know (a newer library).
    Other(u32),
}

const CODES: [(sys::shoal_result_t, ErrorCode); 22] = [
    (sys::SHOAL_ERR_INVALID_ARGUMENT, ErrorCode::InvalidArgument),
    (sys::SHOAL_ERR_TIMEOUT, ErrorCode::Timeout),
    (sys::SHOAL_ERR_POOL_EXHAUSTED, ErrorCode::PoolExhausted),
    (sys::SHOAL_ERR_CHUNK_TOO_LARGE, ErrorCode::ChunkTooLarge),
    (sys::SHOAL_ERR_PORT_LIMIT, ErrorCode::PortLimit),
    (sys::SHOAL_ERR_HELD_LIMIT, ErrorCode::HeldLimit),
    (sys::SHOAL_ERR_QUEUE_FULL, ErrorCode::QueueFull),
    (sys::SHOAL_ERR_DAEMON_UNAVAILABLE, ErrorCode::DaemonUnavailable),
    (sys::SHOAL_ERR_VERSION_MISMATCH, ErrorCode::VersionMismatch),
    (sys::SHOAL_ERR_PERMISSION, ErrorCode::Permission),
    (sys::SHOAL_ERR_NO_SERVER, ErrorCode::NoServer),
    (sys::SHOAL_ERR_SERVER_GONE, ErrorCode::ServerGone),
    (sys::SHOAL_ERR_CLIENT_GONE, ErrorCode::ClientGone),
    (sys::SHOAL_ERR_CORRUPT, ErrorCode::Corrupt),
    (sys::SHOAL_ERR_NO_MEMORY, ErrorCode::NoMemory),
    (sys::SHOAL_ERR_SYSTEM, ErrorCode::System),
    (sys::SHOAL_ERR_WRONG_PORT, ErrorCode::WrongPort),
    (sys::SHOAL_ERR_PROCESS_LIMIT, ErrorCode::ProcessLimit),
    (sys::SHOAL_ERR_SERVICE_LIMIT, ErrorCode::ServiceLimit),
    (sys::SHOAL_ERR_ALREADY_EXISTS, ErrorCode::AlreadyExists),
    (sys::SHOAL_ERR_NOT_FOUND, ErrorCode::NotFound),
    (sys::SHOAL_ERR_BUSY, ErrorCode::Busy),
];

impl ErrorCode {
    /// The code for a C result (which must not be `SHOAL_OK`).
    pub fn from_raw(raw: sys::shoal_result_t) -> ErrorCode {
        CODES.iter().find(|(r, _)| *r == raw).map(|(_, c)| *c).unwrap_or(ErrorCode::Other(raw))
    }

    /// The C result code.
    pub fn raw(self) -> sys::shoal_result_t {
        match self {
            ErrorCode::Other(raw) => raw as sys::shoal_result_t,
            code => CODES.iter().find(|(_, c)| *c == code).map(|(r, _)| *r).unwrap(),
        }
    }

    /// The library's name and one-line meaning of the code (`shoal_strerror`).
    pub fn describe(self) -> String {
        // SAFETY: shoal_strerror never returns NULL; the string is static.
        unsafe { cstr_lossy(sys::shoal_strerror(self.raw())) }
    }
}

/// A failed shoal call: the code and the library's detail message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// An error with our own message (failures detected before calling C).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// Builds the error of a failed C call; reads the per-thread detail at
    /// once, before any other shoal call can overwrite it.
    fn last(raw: sys::shoal_result_t) -> Error {
        // SAFETY: returns a thread-local string, valid until the next call.
        let message = unsafe { cstr_lossy(sys::shoal_last_error_message()) };
        Error { code: ErrorCode::from_raw(raw), message }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The detail: which limit, which pool, what value, how to change it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.code.describe();
        if self.message.is_empty() {
            write!(f, "{name}")
        } else {
            write!(f, "{name}: {}", self.message)
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(raw: sys::shoal_result_t) -> Result<()> {
    if raw == sys::SHOAL_OK {
        Ok(())
    } else {
        Err(Error::last(raw))
    }
}

/// Like `check`, but a timeout becomes `Ok(false)`.
fn check_timeout(raw: sys::shoal_result_t) -> Result<bool> {
    if raw == sys::SHOAL_ERR_TIMEOUT {
        Ok(false)
    } else {
        check(raw).map(|()| true)
    }
}

unsafe fn cstr_lossy(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn c_string(what: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorCode::InvalidArgument, format!("{what} contains a NUL byte")))
}

fn chars_to_string(chars: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---- timeouts -----------------------------------------------------------------------

/// Do not wait.
pub const NO_WAIT: Duration = Duration::ZERO;
/// Wait without bound.
pub const FOREVER: Duration = Duration::MAX;

fn timeout_ns(timeout: Duration) -> i64 {
    match i64::try_from(timeout.as_nanos()) {
        Ok(ns) => ns,
        Err(_) => sys::SHOAL_TIMEOUT_FOREVER as i64,
    }
}

/// The library version actually loaded, e.g. "0.1.0".
pub fn version() -> String {
    // SAFETY: static string.
    unsafe { cstr_lossy(sys::shoal_version()) }
}

// ---- plain-old-data payloads ----------------------------------------------------

/// Types that may be viewed in place in a payload.
///
/// # Safety
/// Every bit pattern must be a valid value (no `bool`, `char`, enums,
/// references or pointers), the type must be `#[repr(C)]` (or a primitive)
/// and it must not rely on `Drop`.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty)*) => { $(unsafe impl Pod for $t {})* };
}
pod!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize f32 f64);
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

fn view_check<T: Pod>(size: usize, p: *const u8) -> Result<()> {
    if size < std::mem::size_of::<T>() {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "payload of {size} bytes is smaller than {} ({} bytes)",
                std::any::type_name::<T>(),
                std::mem::size_of::<T>()
            ),
        ));
    }
    if (p as usize) % std::mem::align_of::<T>() != 0 {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("payload is not aligned for {}", std::any::type_name::<T>()),
        ));
    }
    Ok(())
}

// ---- runtime ----------------------------------------------------------------------

struct RuntimeInner {
    raw: NonNull<sys::shoal_runtime_t>,
}

// SAFETY: shoal_runtime_* functions are safe from any thread (shoal.h).
unsafe impl Send for RuntimeInner {}
unsafe impl Sync for RuntimeInner {}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        // SAFETY: the last owner; every port holds a clone, so none is left.
        unsafe { sys::shoal_runtime_destroy(self.raw.as_ptr()) }
    }
}

/// Where and how to register. `Default` means the library defaults.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// `None`: `$SHOAL_DOMAIN`, else "default".
    pub domain: Option<String>,
    /// `None`: `$SHOAL_RUNTIME_DIR`, else `/tmp/shoal-<uid>`.
    pub runtime_dir: Option<PathBuf>,
    /// How long to retry while the daemon starts (`None`: one attempt).
    pub connect_timeout: Option<Duration>,
}

/// The registration of this process with the daemon of a domain. Cloning is
/// cheap; the registration ends when the last clone and the last port go.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

/// One chunk pool of the domain.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    pub chunk_size: u64,
    pub chunk_count: u32,
    pub in_use: u32,
    pub high_water: u32,
    pub alloc_failures: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PortKind {
    Publisher,
    Subscriber,
    Client,
    Server,
    Other(u32),
}

/// The daemon's limits and where they come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub daemon_pid: i32,
    pub processes: u32,
    pub publishers: u32,
    pub subscribers: u32,
    pub clients: u32,
    pub servers: u32,
    pub services: u32,
    pub chunks_per_port: u32,
    pub queue_capacity: u32,
    pub history: u32,
    pub management_bytes: u64,
    /// The config file, or a note that built-in defaults are in use.
    pub config_source: String,
    pub domain: String,
}

/// A process registered with the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub uid: u32,
    pub name: String,
}

/// One live port of the domain (any process).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub kind: PortKind,
    pub id: u32,
    pub pid: i32,
    pub held: u32,
    pub queued: u32,
    pub queue_capacity: u32,
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
    pub stale: u64,
    pub service: String,
    pub process: String,
}

impl Runtime {
    /// Registers as `name` with the default domain and runtime directory.
    pub fn new(name: &str) -> Result<Runtime> {
        Runtime::with_options(name, &RuntimeOptions::default())
    }

    pub fn with_options(name: &str, options: &RuntimeOptions) -> Result<Runtime> {
        let name = c_string("runtime name", name.as_bytes())?;
        let domain = options.domain.as_deref().map(|d| c_string("domain", d.as_bytes())).transpose()?;
        let dir = options
            .runtime_dir
            .as_deref()
            .map(|d| c_string("runtime_dir", d.as_os_str().as_bytes()))
            .transpose()?;
        // SAFETY: init fills every field; the strings outlive the call.
        unsafe {
            let mut o: sys::shoal_runtime_options_t = std::mem::zeroed();
            check(sys::shoal_runtime_options_init(&mut o, sys::SHOAL_RUNTIME_OPTIONS_VERSION as u32))?;
            if let Some(d) = &domain {
                o.domain = d.as_ptr();
            }
            if let Some(d) = &dir {
                o.runtime_dir = d.as_ptr();
            }
            if let Some(t) = options.connect_timeout {
                o.connect_timeout_ns = timeout_ns(t);
            }
            let mut raw = ptr::null_mut();
            check(sys::shoal_runtime_create(&mut raw, name.as_ptr(), &o))?;
            let raw = NonNull::new(raw)
                .ok_or_else(|| Error::new(ErrorCode::Corrupt, "runtime_create returned NULL"))?;
            Ok(Runtime { inner: Arc::new(RuntimeInner { raw }) })
        }
    }

    pub fn as_raw(&self) -> *mut sys::shoal_runtime_t {
        self.inner.raw.as_ptr()
    }

    /// The domain this runtime is registered with.
    pub fn domain(&self) -> String {
        // SAFETY: valid handle; the string lives as long as the runtime.
        unsafe { cstr_lossy(sys::shoal_runtime_domain(self.as_raw())) }
    }

    pub fn pools(&self) -> Result<Vec<PoolInfo>> {
        // SAFETY: valid handle, out-pointer to a local.
        unsafe {
            let n = sys::shoal_runtime_pool_count(self.as_raw());
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n {
                let mut info: sys::shoal_pool_info_t = std::mem::zeroed();
                info.version = sys::SHOAL_POOL_INFO_VERSION as u32;
                check(sys::shoal_runtime_pool_info(self.as_raw(), i, &mut info))?;
                out.push(PoolInfo {
                    chunk_size: info.chunk_size,
                    chunk_count: info.chunk_count,
                    in_use: info.in_use,
                    high_water: info.high_water,
                    alloc_failures: info.alloc_failures,
                });
            }
            Ok(out)
        }
    }

    /// Chunks allocated in all pools of the domain.
    pub fn chunks_in_use(&self) -> Result<u64> {
        Ok(self.pools()?.iter().map(|p| p.in_use as u64).sum())
    }

    /// The daemon's limits and where they come from.
    pub fn domain_info(&self) -> Result<DomainInfo> {
        // SAFETY: valid handle, out-pointer to a local.
        let i = unsafe {
            let mut i: sys::shoal_domain_info_t = std::mem::zeroed();
                i.version = sys::SHOAL_DOMAIN_INFO_VERSION as u32;
            check(sys::shoal_runtime_domain_info(self.as_raw(), &mut i))?;
            i
        };
        Ok(DomainInfo {
            daemon_pid: i.daemon_pid,
            processes: i.processes,
            publishers: i.publishers,
            subscribers: i.subscribers,
            clients: i.clients,
            servers: i.servers,
            services: i.services,
            chunks_per_port: i.chunks_per_port,
            queue_capacity: i.queue_capacity,
            history: i.history,
            management_bytes: i.management_bytes,
            config_source: chars_to_string(&i.config_source),
            domain: chars_to_string(&i.domain),
        })
    }

    /// The processes registered with the daemon.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let mut out = Vec::new();
        // SAFETY: valid handle.
        for slot in 0..unsafe { sys::shoal_runtime_process_slots(self.as_raw()) } {
            // SAFETY: valid handle, out-pointer to a local.
            let (r, i) = unsafe {
                let mut i: sys::shoal_process_info_t = std::mem::zeroed();
                i.version = sys::SHOAL_PROCESS_INFO_VERSION as u32;
                (sys::shoal_runtime_process_info(self.as_raw(), slot, &mut i), i)
            };
            if r == sys::SHOAL_ERR_NOT_FOUND {
                continue;
            }
            check(r)?;
            out.push(ProcessInfo { pid: i.pid, uid: i.uid, name: chars_to_string(&i.name) });
        }
        Ok(out)
    }

    /// The live ports of every process of the domain.
    pub fn ports(&self) -> Result<Vec<PortInfo>> {
        // SAFETY: valid handle, out-pointer to a local.
        unsafe {
            let n = sys::shoal_runtime_port_slots(self.as_raw());
            let mut out = Vec::new();
            for slot in 0..n {
                let mut info: sys::shoal_port_info_t = std::mem::zeroed();
                info.version = sys::SHOAL_PORT_INFO_VERSION as u32;
                let r = sys::shoal_runtime_port_info(self.as_raw(), slot, &mut info);
                if r == sys::SHOAL_ERR_NOT_FOUND {
                    continue;
                }
                check(r)?;
                let kind = match info.kind {
                    sys::SHOAL_PORT_PUBLISHER => PortKind::Publisher,
                    sys::SHOAL_PORT_SUBSCRIBER => PortKind::Subscriber,
                    sys::SHOAL_PORT_CLIENT => PortKind::Client,
                    sys::SHOAL_PORT_SERVER => PortKind::Server,
                    other => PortKind::Other(other),
                };
                out.push(PortInfo {
                    kind,
                    id: info.id,
                    pid: info.pid,
                    held: info.held,
                    queued: info.queued,
                    queue_capacity: info.queue_capacity,
                    sent: info.sent,
                    received: info.received,
                    dropped: info.dropped,
                    stale: info.stale,
                    service: chars_to_string(&info.service),
                    process: chars_to_string(&info.process),
                });
            }
            Ok(out)
        }
    }

    pub fn publisher(&self, topic: &str) -> Result<Publisher> {
        Publisher::new(self, topic, &PublisherOptions::default())
    }
    pub fn publisher_with(&self, topic: &str, options: &PublisherOptions) -> Result<Publisher> {
        Publisher::new(self, topic, options)
    }
    pub fn subscriber(&self, topic: &str) -> Result<Subscriber> {
        Subscriber::new(self, topic, &SubscriberOptions::default())
    }
    pub fn subscriber_with(&self, topic: &str, options: &SubscriberOptions) -> Result<Subscriber> {
        Subscriber::new(self, topic, options)
    }
    pub fn client(&self, service: &str) -> Result<Client> {
        Client::new(self, service, &ClientOptions::default())
    }
    pub fn client_with(&self, service: &str, options: &ClientOptions) -> Result<Client> {
        Client::new(self, service, options)
    }
    pub fn server(&self, service: &str) -> Result<Server> {
        Server::new(self, service, &ServerOptions::default())
    }
    pub fn server_with(&self, service: &str, options: &ServerOptions) -> Result<Server> {
        Server::new(self, service, options)
    }
    pub fn waitset<'a>(&self) -> Result<WaitSet<'a>> {
        WaitSet::new(self)
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("domain", &self.domain()).finish()
    }
}

// ---- options --------------------------------------------------------------------------

/// What a sender does when a receiver's queue is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FullPolicy {
    /// The oldest queued chunk is released (and counted as dropped).
    DropOldest,
    /// The send fails with [`ErrorCode::QueueFull`].
    Reject,
    /// The sender waits up to the send timeout.
    Wait,
}

impl FullPolicy {
    fn raw(self) -> sys::shoal_full_policy_t {
        match self {
            FullPolicy::DropOldest => sys::SHOAL_FULL_DROP_OLDEST,
            FullPolicy::Reject => sys::SHOAL_FULL_REJECT,
            FullPolicy::Wait => sys::SHOAL_FULL_WAIT,
        }
    }
}

/// `None` fields keep the library defaults.
#[derive(Clone, Debug, Default)]
pub struct PublisherOptions {
    pub history: Option<u32>,
    pub full_policy: Option<FullPolicy>,
    pub send_timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
pub struct SubscriberOptions {
    pub queue_capacity: Option<u32>,
    pub history: Option<u32>,
    /// Skip samples of this process's own publishers (a bridge that republishes).
    pub ignore_own_process: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub queue_capacity: Option<u32>,
    pub full_policy: Option<FullPolicy>,
    pub send_timeout: Option<Duration>,
    /// Never send to (nor count) this process's own servers.
    pub ignore_own_process: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    pub queue_capacity: Option<u32>,
    pub full_policy: Option<FullPolicy>,
    pub send_timeout: Option<Duration>,
}

// ---- ports ----------------------------------------------------------------------------

// Port types: Send (moved between threads) but not Sync (one thread at a time).
type NotSync = PhantomData<Cell<()>>;

macro_rules! port {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $destroy:path) => {
        $(#[$doc])*
        pub struct $name {
            raw: NonNull<$raw>,
            runtime: Runtime,
            _not_sync: NotSync,
        }

        // SAFETY: a port may be used by any thread, one at a time (shoal.h);
        // Cell makes it !Sync, so `&self` methods cannot race.
        unsafe impl Send for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: guards borrow the port, so none is alive here; the
                // runtime field is dropped after this.
                unsafe { $destroy(self.raw.as_ptr()) }
            }
        }

        impl $name {
            pub fn as_raw(&self) -> *mut $raw {
                self.raw.as_ptr()
            }

            /// The runtime this port belongs to.
            pub fn runtime(&self) -> &Runtime {
                &self.runtime
            }

            fn wrap(runtime: &Runtime, raw: *mut $raw) -> Result<$name> {
                let raw = NonNull::new(raw)
                    .ok_or_else(|| Error::new(ErrorCode::Corrupt, "port create returned NULL"))?;
                Ok($name { raw, runtime: runtime.clone(), _not_sync: PhantomData })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("raw", &self.raw).finish()
            }
        }
    };
}

port!(
    /// Publishes samples on a topic.
    Publisher, sys::shoal_publisher_t, sys::shoal_publisher_destroy
);
port!(
    /// Receives the samples of a topic.
    Subscriber, sys::shoal_subscriber_t, sys::shoal_subscriber_destroy
);
port!(
    /// Sends requests to the servers of a service and receives responses.
    Client, sys::shoal_client_t, sys::shoal_client_destroy
);
port!(
    /// Receives requests for a service and answers them.
    Server, sys::shoal_server_t, sys::shoal_server_destroy
);

impl Publisher {
    pub fn new(runtime: &Runtime, topic: &str, options: &PublisherOptions) -> Result<Publisher> {
        let topic = c_string("topic", topic.as_bytes())?;
        // SAFETY: init fills the struct; valid runtime; topic outlives the call.
        unsafe {
            let mut o: sys::shoal_publisher_options_t = std::mem::zeroed();
            check(sys::shoal_publisher_options_init(&mut o, sys::SHOAL_PUBLISHER_OPTIONS_VERSION as u32))?;
            if let Some(h) = options.history {
                o.history = h;
            }
            if let Some(p) = options.full_policy {
                o.full_policy = p.raw();
            }
            if let Some(t) = options.send_timeout {
                o.send_timeout_ns = timeout_ns(t);
            }
            let mut raw = ptr::null_mut();
            check(sys::shoal_publisher_create(&mut raw, runtime.as_raw(), topic.as_ptr(), &o))?;
            Publisher::wrap(runtime, raw)
        }
    }

    /// Loans a chunk of `size` bytes (> 0); publish it with [`Loan::publish`].
    pub fn loan(&self, size: usize) -> Result<Loan<'_, Publisher>> {
        let mut c = ptr::null_mut();
        // SAFETY: valid port used by this thread only (not Sync).
        check(unsafe { sys::shoal_publisher_loan(self.as_raw(), size as u64, &mut c) })?;
        Ok(Loan::new(c, self))
    }

    /// Publishes a loan; consumes it on success and on failure.
    pub fn publish(&self, loan: Loan<'_, Publisher>) -> Result<()> {
        let c = loan.into_raw_for(self)?;
        // SAFETY: the chunk is consumed by the call whatever its result.
        check(unsafe { sys::shoal_publisher_publish(self.as_raw(), c) })
    }

    /// Loans, copies `bytes` in and publishes.
    pub fn publish_copy(&self, bytes: &[u8]) -> Result<()> {
        let mut loan = self.loan(bytes.len().max(1))?;
        loan.write(bytes)?;
        loan.publish()
    }

    /// Subscribers currently matched.
    pub fn subscriber_count(&self) -> u32 {
        // SAFETY: valid port.
        unsafe { sys::shoal_publisher_subscriber_count(self.as_raw()) }
    }
}

impl Subscriber {
    pub fn new(runtime: &Runtime, topic: &str, options: &SubscriberOptions) -> Result<Subscriber> {
        let topic = c_string("topic", topic.as_bytes())?;
        // SAFETY: as for Publisher::new.
        unsafe {
            let mut o: sys::shoal_subscriber_options_t = std::mem::zeroed();
            check(sys::shoal_subscriber_options_init(&mut o, sys::SHOAL_SUBSCRIBER_OPTIONS_VERSION as u32))?;
            if let Some(q) = options.queue_capacity {
                o.queue_capacity = q;
            }
            if let Some(h) = options.history {
                o.history = h;
            }
            o.ignore_own_process = options.ignore_own_process as u32;
            let mut raw = ptr::null_mut();
            check(sys::shoal_subscriber_create(&mut raw, runtime.as_raw(), topic.as_ptr(), &o))?;
            Subscriber::wrap(runtime, raw)
        }
    }

    /// The oldest sample, waiting up to `timeout`; `Ok(None)` if none came.
    pub fn take(&self, timeout: Duration) -> Result<Option<Sample<'_>>> {
        let mut c = ptr::null_mut();
        // SAFETY: valid port used by this thread only.
        let got =
            check_timeout(unsafe { sys::shoal_subscriber_take(self.as_raw(), &mut c, timeout_ns(timeout)) })?;
        Ok(if got { Some(Sample::new(c)) } else { None })
    }

    /// `take(NO_WAIT)`.
    pub fn try_take(&self) -> Result<Option<Sample<'_>>> {
        self.take(NO_WAIT)
    }
}

impl Client {
    pub fn new(runtime: &Runtime, service: &str, options: &ClientOptions) -> Result<Client> {
        let service = c_string("service", service.as_bytes())?;
        // SAFETY: as for Publisher::new.
        unsafe {
            let mut o: sys::shoal_client_options_t = std::mem::zeroed();
            check(sys::shoal_client_options_init(&mut o, sys::SHOAL_CLIENT_OPTIONS_VERSION as u32))?;
            if let Some(q) = options.queue_capacity {
                o.queue_capacity = q;
            }
            if let Some(p) = options.full_policy {
                o.full_policy = p.raw();
            }
            if let Some(t) = options.send_timeout {
                o.send_timeout_ns = timeout_ns(t);
            }
            o.ignore_own_process = options.ignore_own_process as u32;
            let mut raw = ptr::null_mut();
            check(sys::shoal_client_create(&mut raw, runtime.as_raw(), service.as_ptr(), &o))?;
            Client::wrap(runtime, raw)
        }
    }

    /// Loans a request of `size` bytes (> 0).
    pub fn loan(&self, size: usize) -> Result<Loan<'_, Client>> {
        let mut c = ptr::null_mut();
        // SAFETY: valid port used by this thread only.
        check(unsafe { sys::shoal_client_loan(self.as_raw(), size as u64, &mut c) })?;
        Ok(Loan::new(c, self))
    }

    /// Sends a request to one server; returns its sequence id. Consumes the
    /// loan on success and on failure.
    pub fn send(&self, request: Loan<'_, Client>) -> Result<u64> {
        let c = request.into_raw_for(self)?;
        let mut seq = 0u64;
        // SAFETY: the chunk is consumed by the call whatever its result.
        check(unsafe { sys::shoal_client_send(self.as_raw(), c, &mut seq) })?;
        Ok(seq)
    }

    /// The oldest response, waiting up to `timeout`; `Ok(None)` if none came.
    pub fn take(&self, timeout: Duration) -> Result<Option<Response<'_>>> {
        let mut c = ptr::null_mut();
        // SAFETY: valid port used by this thread only.
        let got =
            check_timeout(unsafe { sys::shoal_client_take(self.as_raw(), &mut c, timeout_ns(timeout)) })?;
        Ok(if got { Some(Response::new(c)) } else { None })
    }

    pub fn try_take(&self) -> Result<Option<Response<'_>>> {
        self.take(NO_WAIT)
    }

    /// Sends `request` and waits up to `timeout` for its response (stale
    /// responses met on the way are released); `Ok(None)` if it did not come.
    pub fn call(&self, request: Loan<'_, Client>, timeout: Duration) -> Result<Option<Response<'_>>> {
        let c = request.into_raw_for(self)?;
        let mut resp = ptr::null_mut();
        // SAFETY: the request is consumed by the call whatever its result.
        let got = check_timeout(unsafe {
            sys::shoal_client_call(self.as_raw(), c, &mut resp, timeout_ns(timeout))
        })?;
        Ok(if got { Some(Response::new(resp)) } else { None })
    }

    /// Loans, copies `bytes` in and calls.
    pub fn call_copy(&self, bytes: &[u8], timeout: Duration) -> Result<Option<Response<'_>>> {
        let mut loan = self.loan(bytes.len().max(1))?;
        loan.write(bytes)?;
        self.call(loan, timeout)
    }

    /// Servers currently offering the service.
    pub fn server_count(&self) -> u32 {
        // SAFETY: valid port.
        unsafe { sys::shoal_client_server_count(self.as_raw()) }
    }
}

impl Server {
    pub fn new(runtime: &Runtime, service: &str, options: &ServerOptions) -> Result<Server> {
        let service = c_string("service", service.as_bytes())?;
        // SAFETY: as for Publisher::new.
        unsafe {
            let mut o: sys::shoal_server_options_t = std::mem::zeroed();
            check(sys::shoal_server_options_init(&mut o, sys::SHOAL_SERVER_OPTIONS_VERSION as u32))?;
            if let Some(q) = options.queue_capacity {
                o.queue_capacity = q;
            }
            if let Some(p) = options.full_policy {
                o.full_policy = p.raw();
            }
            if let Some(t) = options.send_timeout {
                o.send_timeout_ns = timeout_ns(t);
            }
            let mut raw = ptr::null_mut();
            check(sys::shoal_server_create(&mut raw, runtime.as_raw(), service.as_ptr(), &o))?;
            Server::wrap(runtime, raw)
        }
    }

    /// The oldest request, waiting up to `timeout`; `Ok(None)` if none came.
    pub fn take(&self, timeout: Duration) -> Result<Option<Request<'_>>> {
        let mut c = ptr::null_mut();
        // SAFETY: valid port used by this thread only.
        let got =
            check_timeout(unsafe { sys::shoal_server_take(self.as_raw(), &mut c, timeout_ns(timeout)) })?;
        Ok(if got { Some(Request::new(c)) } else { None })
    }

    pub fn try_take(&self) -> Result<Option<Request<'_>>> {
        self.take(NO_WAIT)
    }

    /// Loans a response to `request` (which stays yours); it carries the
    /// request's sequence id. [`ErrorCode::ClientGone`] if the client left.
    pub fn loan_response(&self, request: &Request<'_>, size: usize) -> Result<Loan<'_, Server>> {
        let mut c = ptr::null_mut();
        // SAFETY: the request is a live taken chunk (borrowed).
        check(unsafe {
            sys::shoal_server_loan_response(self.as_raw(), request.chunk.as_ptr(), size as u64, &mut c)
        })?;
        Ok(Loan::new(c, self))
    }

    /// Sends a response; consumes it on success and on failure.
    pub fn send(&self, response: Loan<'_, Server>) -> Result<()> {
        let c = response.into_raw_for(self)?;
        // SAFETY: the chunk is consumed by the call whatever its result.
        check(unsafe { sys::shoal_server_send(self.as_raw(), c) })
    }

    /// Loans a response to `request`, copies `bytes` in and sends it.
    pub fn respond_copy(&self, request: &Request<'_>, bytes: &[u8]) -> Result<()> {
        let mut loan = self.loan_response(request, bytes.len().max(1))?;
        loan.write(bytes)?;
        self.send(loan)
    }
}

// ---- guards ---------------------------------------------------------------------------

/// A loaned chunk, writable: a sample of a [`Publisher`], a request of a
/// [`Client`] or a response of a [`Server`]. Dereferences to `[u8]` (the
/// current size). Released on `Drop` unless published or sent.
pub struct Loan<'p, P> {
    chunk: NonNull<sys::shoal_chunk_t>,
    port: &'p P,
}

impl<'p, P> Loan<'p, P> {
    fn new(chunk: *mut sys::shoal_chunk_t, port: &'p P) -> Loan<'p, P> {
        // A successful loan never yields NULL; NonNull keeps Drop honest.
        Loan { chunk: NonNull::new(chunk).expect("shoal: loan returned a NULL chunk"), port }
    }

    fn into_raw(self) -> *mut sys::shoal_chunk_t {
        let c = self.chunk.as_ptr();
        std::mem::forget(self);
        c
    }

    /// The chunk, to be handed to `port`. A loan of another port is refused
    /// before reaching C (WrongPort) and released here: consumed either way.
    fn into_raw_for(self, port: &P) -> Result<*mut sys::shoal_chunk_t> {
        if !ptr::eq(self.port, port) {
            drop(self);
            return Err(Error::new(
                ErrorCode::WrongPort,
                "the loan belongs to another port (it was released)",
            ));
        }
        Ok(self.into_raw())
    }

    pub fn as_raw(&self) -> *mut sys::shoal_chunk_t {
        self.chunk.as_ptr()
    }

    /// The size the receiver will see.
    pub fn len(&self) -> usize {
        // SAFETY: owned chunk.
        unsafe { sys::shoal_chunk_size(self.chunk.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shrinks (never grows) the size the receiver will see.
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        // SAFETY: owned chunk.
        check(unsafe { sys::shoal_chunk_set_size(self.chunk.as_ptr(), len as u64) })
    }

    /// Copies `bytes` to the start of the payload and sets the size to theirs.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.len() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("write of {} bytes into a loan of {} bytes", bytes.len(), self.len()),
            ));
        }
        self[..bytes.len()].copy_from_slice(bytes);
        self.set_len(bytes.len())
    }

    /// The start of the payload as a `T` (size and alignment checked).
    pub fn value_mut<T: Pod>(&mut self) -> Result<&mut T> {
        let p = self.as_mut_ptr();
        view_check::<T>(self.len(), p)?;
        // SAFETY: checked size and alignment; T is Pod; borrow tied to self.
        Ok(unsafe { &mut *(p as *mut T) })
    }

    pub fn value<T: Pod>(&self) -> Result<&T> {
        let p = self.as_ptr();
        view_check::<T>(self.len(), p)?;
        // SAFETY: as above.
        Ok(unsafe { &*(p as *const T) })
    }

    /// Writes `value` at the start of the payload and sets the size to it.
    pub fn write_value<T: Pod>(&mut self, value: T) -> Result<()> {
        *self.value_mut::<T>()? = value;
        self.set_len(std::mem::size_of::<T>())
    }

    fn as_ptr(&self) -> *const u8 {
        // SAFETY: owned chunk.
        unsafe { sys::shoal_chunk_payload(self.chunk.as_ptr()) as *const u8 }
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: owned chunk.
        unsafe { sys::shoal_chunk_payload(self.chunk.as_ptr()) as *mut u8 }
    }

    /// Releases now; reports a failure the destructor would swallow.
    pub fn release(self) -> Result<()> {
        let c = self.into_raw();
        // SAFETY: consumed whatever the result.
        check(unsafe { sys::shoal_chunk_release(c) })
    }
}

impl<'p> Loan<'p, Publisher> {
    /// Delivers the sample to every subscriber (zero-copy). Consumes the
    /// loan on success and on failure.
    pub fn publish(self) -> Result<()> {
        let port = self.port;
        port.publish(self)
    }
}

impl<'p> Loan<'p, Client> {
    /// Sends the request to one server; returns its sequence id.
    pub fn send(self) -> Result<u64> {
        let port = self.port;
        port.send(self)
    }

    /// Sends and waits for the matching response; `Ok(None)` on timeout.
    pub fn call(self, timeout: Duration) -> Result<Option<Response<'p>>> {
        let port = self.port;
        port.call(self, timeout)
    }
}

impl<'p> Loan<'p, Server> {
    /// Sends the response to its client.
    pub fn send(self) -> Result<()> {
        let port = self.port;
        port.send(self)
    }
}

impl<P> Deref for Loan<'_, P> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the chunk holds len() bytes, owned by us while borrowed.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }
}

impl<P> DerefMut for Loan<'_, P> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as above, and the loan is exclusively ours.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), len) }
    }
}

impl<P> Drop for Loan<'_, P> {
    fn drop(&mut self) {
        // SAFETY: not sent (sending forgets self); the port is borrowed alive.
        unsafe {
            sys::shoal_chunk_release(self.chunk.as_ptr());
        }
    }
}

impl<P> fmt::Debug for Loan<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loan").field("len", &self.len()).finish()
    }
}

macro_rules! received {
    ($(#[$doc:meta])* $name:ident, $port:ty) => {
        $(#[$doc])*
        ///
        /// Dereferences to the payload (`[u8]`); released on `Drop`.
        pub struct $name<'p> {
            chunk: NonNull<sys::shoal_chunk_t>,
            _port: PhantomData<&'p $port>,
        }

        impl<'p> $name<'p> {
            fn new(chunk: *mut sys::shoal_chunk_t) -> $name<'p> {
                $name {
                    chunk: NonNull::new(chunk).expect("shoal: take returned a NULL chunk"),
                    _port: PhantomData,
                }
            }

            pub fn as_raw(&self) -> *mut sys::shoal_chunk_t {
                self.chunk.as_ptr()
            }

            /// Request/response: the request's sequence id; pub/sub: the
            /// publisher's running count.
            pub fn sequence_id(&self) -> u64 {
                // SAFETY: owned chunk.
                unsafe { sys::shoal_chunk_sequence_id(self.chunk.as_ptr()) }
            }

            /// The payload as a `T` (size and alignment checked).
            pub fn value<T: Pod>(&self) -> Result<&T> {
                let p = self.as_ptr();
                view_check::<T>(self.len(), p)?;
                // SAFETY: checked size and alignment; T is Pod; borrow tied to self.
                Ok(unsafe { &*(p as *const T) })
            }

            /// Releases now; reports a failure the destructor would swallow.
            pub fn release(self) -> Result<()> {
                let c = self.chunk.as_ptr();
                std::mem::forget(self);
                // SAFETY: consumed whatever the result.
                check(unsafe { sys::shoal_chunk_release(c) })
            }

            fn as_ptr(&self) -> *const u8 {
                // SAFETY: owned chunk.
                unsafe { sys::shoal_chunk_payload(self.chunk.as_ptr()) as *const u8 }
            }
        }

        impl Deref for $name<'_> {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                // SAFETY: owned chunk of that size, read-only for receivers.
                unsafe {
                    let len = sys::shoal_chunk_size(self.chunk.as_ptr()) as usize;
                    std::slice::from_raw_parts(self.as_ptr(), len)
                }
            }
        }

        impl Drop for $name<'_> {
            fn drop(&mut self) {
                // SAFETY: owned chunk; the port is borrowed alive.
                unsafe {
                    sys::shoal_chunk_release(self.chunk.as_ptr());
                }
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.len())
                    .field("sequence_id", &self.sequence_id())
                    .finish()
            }
        }
    };
}

received!(
    /// A sample taken by a [`Subscriber`].
    Sample, Subscriber
);
received!(
    /// A request taken by a [`Server`]; answer with [`Server::loan_response`].
    Request, Server
);
received!(
    /// A response taken by a [`Client`].
    Response, Client
);

// ---- waitset ----------------------------------------------------------------------------

/// Waits on many receiving ports at once. Attached ports are borrowed for
/// `'a`, so they outlive their attachment.
pub struct WaitSet<'a> {
    raw: NonNull<sys::shoal_waitset_t>,
    _runtime: Runtime,
    _ports: PhantomData<&'a ()>,
    tags: Vec<u64>,
}

impl<'a> WaitSet<'a> {
    pub fn new(runtime: &Runtime) -> Result<WaitSet<'a>> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid runtime.
        check(unsafe { sys::shoal_waitset_create(&mut raw, runtime.as_raw()) })?;
        let raw = NonNull::new(raw)
            .ok_or_else(|| Error::new(ErrorCode::Corrupt, "waitset_create returned NULL"))?;
        Ok(WaitSet { raw, _runtime: runtime.clone(), _ports: PhantomData, tags: Vec::new() })
    }

    pub fn attach_subscriber(&mut self, sub: &'a Subscriber, tag: u64) -> Result<()> {
        // SAFETY: both valid; `sub` is borrowed for the waitset's lifetime.
        check(unsafe { sys::shoal_waitset_attach_subscriber(self.raw.as_ptr(), sub.as_raw(), tag) })?;
        self.tags.push(tag);
        Ok(())
    }

    pub fn attach_server(&mut self, server: &'a Server, tag: u64) -> Result<()> {
        // SAFETY: as above.
        check(unsafe { sys::shoal_waitset_attach_server(self.raw.as_ptr(), server.as_raw(), tag) })?;
        self.tags.push(tag);
        Ok(())
    }

    pub fn attach_client(&mut self, client: &'a Client, tag: u64) -> Result<()> {
        // SAFETY: as above.
        check(unsafe { sys::shoal_waitset_attach_client(self.raw.as_ptr(), client.as_raw(), tag) })?;
        self.tags.push(tag);
        Ok(())
    }

    pub fn detach(&mut self, tag: u64) -> Result<()> {
        // SAFETY: valid waitset.
        check(unsafe { sys::shoal_waitset_detach(self.raw.as_ptr(), tag) })?;
        if let Some(i) = self.tags.iter().position(|&t| t == tag) {
            self.tags.swap_remove(i);
        }
        Ok(())
    }

    /// Tags of the ports that have data; empty if `timeout` passed.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<u64>> {
        let mut tags = vec![0u64; self.tags.len().max(1)];
        let mut n = 0usize;
        // SAFETY: the buffer holds tags.len() entries.
        let got = check_timeout(unsafe {
            sys::shoal_waitset_wait(
                self.raw.as_ptr(),
                tags.as_mut_ptr(),
                tags.len(),
                &mut n,
                timeout_ns(timeout),
            )
        })?;
        tags.truncate(if got { n } else { 0 });
        Ok(tags)
    }

    /// Readable while an attached port has data (for epoll/poll); owned by
    /// the waitset, do not close it.
    pub fn fd(&self) -> Result<std::os::fd::RawFd> {
        let mut fd = -1;
        // SAFETY: valid waitset.
        check(unsafe { sys::shoal_waitset_fd(self.raw.as_ptr(), &mut fd) })?;
        Ok(fd)
    }
}

impl Drop for WaitSet<'_> {
    fn drop(&mut self) {
        // SAFETY: detaches everything; ports stay open.
        unsafe { sys::shoal_waitset_destroy(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_nanoseconds() {
        assert_eq!(timeout_ns(NO_WAIT), 0);
        assert_eq!(timeout_ns(FOREVER), -1);
        assert_eq!(timeout_ns(Duration::from_millis(3)), 3_000_000);
        assert_eq!(timeout_ns(Duration::from_secs(u64::MAX / 2)), -1);
    }

    #[test]
    fn error_codes_round_trip() {
        for (raw, code) in CODES {
            assert_eq!(ErrorCode::from_raw(raw), code);
            assert_eq!(code.raw(), raw);
            assert!(!code.describe().is_empty());
        }
        assert_eq!(ErrorCode::from_raw(999), ErrorCode::Other(999));
    }

    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn thread_markers() {
        assert_send::<Runtime>();
        assert_sync::<Runtime>();
        assert_send::<Publisher>();
        assert_send::<Subscriber>();
        assert_send::<Client>();
        assert_send::<Server>();
    }
}
