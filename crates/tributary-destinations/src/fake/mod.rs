//! Fakes of destination APIs: being written.
