//! Container lifecycle: create/start/stop/rm, the per-container monitor, logs, exec and
//! restart policies; the OCI bundle (`spec`) and the OCI runtime binary that runs it.

pub mod spec;
pub mod user;
