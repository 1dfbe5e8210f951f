//! berth-engine.
