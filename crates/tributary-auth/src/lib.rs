//! The security primitives behind Tributary's identity: password policy and hashing
//! ([`password`]), signed access tokens ([`jwt`]), opaque secrets shown once and stored as
//! hashes ([`secret`]) and login throttling ([`throttle`]).
//!
//! Pure functions and in-memory state only: no Kafka, no Postgres, no HTTP. The API crate
//! decides what to store and what to answer; this crate only makes and checks the secrets.

pub mod jwt;
pub mod password;
pub mod secret;
pub mod throttle;
