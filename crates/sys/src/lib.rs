//! berth-sys.
