//! End-to-end tests of the server: a real server on free ports with a
//! temporary database, driven through gRPC and HTTP as a user would.

mod helpers;
mod hostile;
mod lifecycle;
mod seed_contract;
mod statistics;
mod v1_contract;
