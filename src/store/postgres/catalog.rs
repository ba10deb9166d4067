//! The catalog trait on PostgreSQL.
