//! OCI runtime spec (config.json) generation.
