//! Images from OCI distribution registries: `pull`, `login`/`logout`.
//!
//! The wire protocol (manifests, blobs, the `WWW-Authenticate` Bearer-token and Basic flows)
//! is oci-client's; berth adds what an engine needs around it: Docker's credential file
//! ([`auth`]), per-registry TLS policy ([`options`]), platform selection from image indexes
//! ([`platform`]), concurrent layer downloads that unpack while they download and survive
//! retries and kills ([`fetch`]), progress events ([`progress`]) and the commit of the pulled
//! image into the store (`pull`).
//!
//! Protocol sources: OCI distribution spec v1.1 (`spec.md`: pulling manifests and blobs,
//! error codes), Docker registry token authentication (`docs/spec/auth/token.md` of
//! distribution), OCI image spec `image-index.md` (platform fields).

pub mod auth;
mod client;
mod error;
mod fetch;
mod login;
pub mod options;
pub mod platform;
pub mod progress;
mod pull;

pub use auth::AuthFile;
pub use error::RegistryError;
pub use login::{login, LoginRequest};
pub use options::RegistryOptions;
pub use platform::Platform;
pub use progress::{LayerState, NoProgress, PullEvent, PullProgress};
pub use pull::{PullOptions, PullOutcome};
