//! A row of a store's answer, as the row-to-struct mappings that both
//! stores share read it (a job and its runs in [`super::jobs`], a series
//! and its runs in [`super::series`], a batch that `BATCH_PURGE` may
//! delete in [`super::batches`]): columns by position, whatever database
//! gave them, each read's failure that database's error.

/// The columns of one row, by position from 0.
pub trait Row {
    type Error;

    fn int(&self, at: usize) -> Result<i64, Self::Error>;

    fn int_or_null(&self, at: usize) -> Result<Option<i64>, Self::Error>;

    fn text(&self, at: usize) -> Result<String, Self::Error>;

    fn text_or_null(&self, at: usize) -> Result<Option<String>, Self::Error>;

    /// An integer column that holds a flag: anything but 0 is true.
    fn flag(&self, at: usize) -> Result<bool, Self::Error> {
        Ok(self.int(at)? != 0)
    }
}

impl Row for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn int(&self, at: usize) -> rusqlite::Result<i64> {
        self.get(at)
    }

    fn int_or_null(&self, at: usize) -> rusqlite::Result<Option<i64>> {
        self.get(at)
    }

    fn text(&self, at: usize) -> rusqlite::Result<String> {
        self.get(at)
    }

    fn text_or_null(&self, at: usize) -> rusqlite::Result<Option<String>> {
        self.get(at)
    }
}

impl Row for postgres::Row {
    type Error = postgres::Error;

    fn int(&self, at: usize) -> Result<i64, postgres::Error> {
        self.try_get(at)
    }

    fn int_or_null(&self, at: usize) -> Result<Option<i64>, postgres::Error> {
        self.try_get(at)
    }

    fn text(&self, at: usize) -> Result<String, postgres::Error> {
        self.try_get(at)
    }

    fn text_or_null(&self, at: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(at)
    }
}
