//! Reliability evidence (issue 6, items 3 and 4): the callback under injected Finch faults and a
//! database restart ([`under_load`], on a private PostgreSQL cluster), and two server instances
//! sharing one database ([`two_instances`]). A binary of its own: the fault run restarts its
//! cluster and takes minutes, so `cargo test --test faults` runs it apart from the api tests.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the line that broke"
)]

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    reason = "shared with the api tests; these tests use part of it"
)]
mod helpers;

mod cluster;
mod fixture;
mod restart;
mod two_instances;
mod under_load;
