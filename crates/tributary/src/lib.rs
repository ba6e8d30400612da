//! The `tributary` binary's building blocks, also used by the tests to start the app
//! in-process.

pub mod app;
pub mod audit;
pub mod forget;
pub mod keeper;
pub mod refresher;
pub mod settings;

pub use app::{Roles, Running, start};
pub use settings::Settings;
pub use tributary_runtime::produce;
