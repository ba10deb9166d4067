//! The integration tests: one binary, driving the real `batchsh` program
//! (through [`common::Test`]) or the library's public parser.

mod async_control;
mod batch;
mod catalog;
mod common;
mod diagnostics;
mod fuzz;
mod grammar;
mod help;
mod jobs;
mod jobs_review;
mod layout;
mod named;
mod open;
mod parse_cli;
mod pg;
mod pg_faults;
mod pg_interfaces;
mod pg_notices;
mod pg_store;
mod placement;
mod repl;
mod roundtrip;
mod store;
mod storedb;
mod tables;
mod takeover;
mod waitsy;
mod windows;
mod workers;
mod world;
