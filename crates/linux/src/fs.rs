//! File operations confined to a root directory, through file descriptors.
