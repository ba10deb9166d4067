//! The reads trait on PostgreSQL.
