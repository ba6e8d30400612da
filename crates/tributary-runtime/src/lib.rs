//! The roles that run Tributary's loops: the projector (read models from the log), the
//! rebuild, and the supervisor that keeps the processor running.

pub mod batch;
pub mod deliverer;
pub mod lag;
pub mod monitor;
pub mod produce;
pub mod projector;
pub mod rebuild;
pub mod scheduler;
pub mod supervise;
pub mod worker;

pub use projector::{Projector, ProjectorConfig, Readiness};
pub use rebuild::{RebuildReport, rebuild};
