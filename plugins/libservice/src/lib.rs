//! The library catalog from PyroLab's documentation: a toy service that
//! checks books out and in.
//!
//! Launch configuration: `module: libservice`, `classname: LibraryCatalog`,
//! optionally with `parameters: {catalog: {"The Hobbit": 3}}`.

use std::fmt;

use pyrolab_plugin_api::prelude::*;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;

/// Book titles and how many copies are on the shelf, in the order they were
/// added (as a Python dict keeps them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog(Vec<(String, u32)>);

impl Catalog {
    fn copies_mut(&mut self, title: &str) -> Option<&mut u32> {
        self.0.iter_mut().find(|(t, _)| t == title).map(|(_, n)| n)
    }
}

impl Serialize for Catalog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (title, copies) in &self.0 {
            map.serialize_entry(title, copies)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CatalogVisitor;

        impl<'de> Visitor<'de> for CatalogVisitor {
            type Value = Catalog;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of book titles to numbers of copies")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Catalog, A::Error> {
                let mut books: Vec<(String, u32)> = Vec::new();
                while let Some((title, copies)) = map.next_entry::<String, u32>()? {
                    match books.iter_mut().find(|(t, _)| *t == title) {
                        Some(entry) => entry.1 = copies,
                        None => books.push((title, copies)),
                    }
                }
                Ok(Catalog(books))
            }
        }

        deserializer.deserialize_map(CatalogVisitor)
    }
}

/// The service's `parameters:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogParameters {
    /// The books on the shelf at start-up.
    #[serde(default)]
    pub catalog: Catalog,
}

/// Simulates a library catalog and checks books out and in.
pub struct LibraryCatalog {
    catalog: Catalog,
}

/// Simulates a library catalog, provides a way to check out and check in
/// books.
///
/// It's a bad library; it doesn't know who checked out the books, or how
/// many books are missing from its collection. It just knows how many it has.
#[service]
impl LibraryCatalog {
    #[constructor]
    pub fn new(parameters: CatalogParameters) -> Self {
        LibraryCatalog {
            catalog: parameters.catalog,
        }
    }

    /// Gets the current catalog of books and their available quantities.
    pub fn get_catalog(&self) -> Catalog {
        self.catalog.clone()
    }

    /// Checks out copies of a book (LookupError if the title is unknown,
    /// ValueError if there are not enough copies).
    pub fn checkout(&mut self, title: String, #[default(1)] quantity: u32) -> Result<()> {
        let copies = self.catalog.copies_mut(&title).ok_or_else(|| {
            DriverError::lookup(format!("Cannot checkout: Book '{title}' not found."))
        })?;
        if *copies < quantity {
            return Err(DriverError::value(format!(
                "Cannot checkout: Not enough copies of {title}."
            )));
        }
        *copies -= quantity;
        Ok(())
    }

    /// Checks copies of a book back in (LookupError if the title is unknown).
    pub fn checkin(&mut self, title: String, #[default(1)] quantity: u32) -> Result<()> {
        let copies = self.catalog.copies_mut(&title).ok_or_else(|| {
            DriverError::lookup(format!("Cannot checkin: Book '{title}' not found."))
        })?;
        *copies = copies.checked_add(quantity).ok_or_else(|| {
            DriverError::new(ErrorKind::OverflowError, "too many copies to count")
        })?;
        Ok(())
    }

    /// Adds a book to the catalog with the given number of copies (replacing
    /// the count of a title already there).
    pub fn add_book(&mut self, title: String, #[default(1)] quantity: u32) {
        match self.catalog.copies_mut(&title) {
            Some(copies) => *copies = quantity,
            None => self.catalog.0.push((title, quantity)),
        }
    }

    /// Permanently removes a book from the catalog (LookupError if unknown).
    pub fn remove_book(&mut self, title: String) -> Result<()> {
        let before = self.catalog.0.len();
        self.catalog.0.retain(|(t, _)| *t != title);
        if self.catalog.0.len() == before {
            return Err(DriverError::lookup(format!(
                "Cannot remove: Book '{title}' not found."
            )));
        }
        Ok(())
    }
}

export_plugin!(LibraryCatalog);

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> LibraryCatalog {
        LibraryCatalog::new(CatalogParameters {
            catalog: Catalog(vec![("The Hobbit".into(), 3), ("C Programming".into(), 2)]),
        })
    }

    #[test]
    fn checkout_and_checkin_move_copies() {
        let mut lib = library();
        lib.checkout("C Programming".into(), 2).unwrap();
        let err = lib.checkout("C Programming".into(), 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError);
        lib.checkin("C Programming".into(), 1).unwrap();
        assert_eq!(lib.get_catalog().0[1], ("C Programming".into(), 1));
    }

    #[test]
    fn unknown_titles_are_lookup_errors() {
        let mut lib = library();
        assert_eq!(
            lib.checkin("Dune".into(), 1).unwrap_err().kind(),
            ErrorKind::LookupError
        );
        assert_eq!(
            lib.remove_book("Dune".into()).unwrap_err().kind(),
            ErrorKind::LookupError
        );
    }

    #[test]
    fn catalog_keeps_insertion_order() {
        let mut lib = library();
        lib.add_book("Aardvarks".into(), 1);
        let titles: Vec<&str> = lib.catalog.0.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(titles, ["The Hobbit", "C Programming", "Aardvarks"]);
    }
}
