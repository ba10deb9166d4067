//! The nodes trait on PostgreSQL.
