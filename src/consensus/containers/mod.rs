//! SSZ containers as they arrive in JSON, with their `hash_tree_root`.
//!
//! Most derive `TreeHash` directly. The few whose shape depends on the fork (full blocks,
//! aggregates) are parsed as a superset and hashed by [`crate::consensus::wire::container_root`]
//! once the fork is known.

pub mod aggregate;
pub mod block;
pub mod common;
pub mod gloas;
pub mod misc;
pub mod sync;
