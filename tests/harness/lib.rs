//! Sandbox-host harness for the end-to-end suites.
