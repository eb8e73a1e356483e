//! Flagpole's experiment statistics. So far the distributions they need, in
//! [`distribution`].
//!
//! Pure: no IO, no clock, no randomness.

pub mod distribution;
