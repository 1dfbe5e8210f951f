//! berth-image.
