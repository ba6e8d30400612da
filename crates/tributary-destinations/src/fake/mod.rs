//! In-process fakes of the destination APIs (feature `fake`), on `127.0.0.1:0`, for the
//! sink tests here and the runtime's delivery tests.
//!
//! Each follows its API's documented contract closely enough to catch client mistakes:
//! R2R's 409 on a repeated id and 400 on two auth headers, Onyx's `{document_id,
//! already_existed}` and dropped `external_access`, a webhook receiver that verifies
//! signatures and de-duplicates by `Idempotency-Key`.
//!
//! All share [`Faults`]: a seeded, runtime-changeable chance of a 500 or a 429 (with
//! `Retry-After`) and added latency. A faulted request is answered before any handler
//! runs, so it has no effect on the fake's state, like a proxy failing in front of the
//! real service. State is in memory behind mutexes, fast enough for tens of thousands of
//! documents. A fake stops when dropped.

mod faults;
mod onyx;
mod r2r;
mod server;
mod webhook;

pub use faults::Faults;
pub use onyx::{FakeOnyx, FakeOnyxConfig, FakeOnyxDoc};
pub use r2r::{FakeR2r, FakeR2rConfig, FakeR2rDoc};
pub use webhook::{FakeWebhook, FakeWebhookConfig, ReceivedBatch};
