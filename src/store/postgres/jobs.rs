//! The jobs trait on PostgreSQL.
