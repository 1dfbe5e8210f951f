//! Resolution of `-u USER[:GROUP]` against the image rootfs /etc/passwd and /etc/group.
