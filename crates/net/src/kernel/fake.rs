//! Recording fakes of the kernel seam (filled in below).
