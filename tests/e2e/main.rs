//! End-to-end and cross-crate tests. One binary; one module per concern.

mod architecture;
