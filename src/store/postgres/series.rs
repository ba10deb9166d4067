//! The series trait on PostgreSQL.
