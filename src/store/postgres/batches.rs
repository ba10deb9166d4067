//! The batches trait on PostgreSQL.
