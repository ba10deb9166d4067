//! The appends trait on PostgreSQL.
