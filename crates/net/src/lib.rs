//! berth-net.
