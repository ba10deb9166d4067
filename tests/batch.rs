//! Synchronous BATCH through the real binary, one module per topic; the
//! world they run in is [`crate::world::World`].

mod adhoc;
mod commands;
mod control;
mod crash;
mod outcomes;
mod output;
mod pipe;
mod planning;
mod purge;
mod signals;
mod sources;
mod store;
mod wait;
