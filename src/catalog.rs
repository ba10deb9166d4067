//! The catalog's words that every layer shares, no I/O: the kinds of
//! interface. The statements name them (`CREATE INTERFACE crm SQLITE ...`),
//! the store keeps them, the data sources open by them; this leaf module is
//! where all three read them, so that none has to reach into another.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterfaceKind {
    Sqlite,
    Csv,
    Postgres,
}

impl InterfaceKind {
    pub const ALL: [InterfaceKind; 3] = [
        InterfaceKind::Sqlite,
        InterfaceKind::Csv,
        InterfaceKind::Postgres,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            InterfaceKind::Sqlite => "SQLITE",
            InterfaceKind::Csv => "CSV",
            InterfaceKind::Postgres => "POSTGRES",
        }
    }

    /// The keyword that introduces the interface's location.
    pub fn location_keyword(self) -> &'static str {
        match self {
            InterfaceKind::Postgres => "URL",
            InterfaceKind::Sqlite | InterfaceKind::Csv => "PATH",
        }
    }
}
