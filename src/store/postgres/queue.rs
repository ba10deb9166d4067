//! The queue trait on PostgreSQL.
