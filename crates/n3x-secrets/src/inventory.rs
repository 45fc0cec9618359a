//! In-place edits of `n3x.toml` with `toml_edit`: only the touched values change; comments,
//! blank lines, key order and formatting elsewhere stay byte for byte.

use toml_edit::{Array, DocumentMut, Item, Table, Value, value};

use crate::Error;

/// An editable inventory.
#[derive(Debug)]
pub struct InventoryEdit {
    doc: DocumentMut,
}

/// What an edit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Added,
    /// The old value.
    Replaced(String),
}

impl InventoryEdit {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let doc = text.parse::<DocumentMut>().map_err(|e| Error::Toml { message: e.message().to_string() })?;
        Ok(InventoryEdit { doc })
    }

    /// Appends `recipient` to `[secrets].admins` (creating the table or key if needed).
    pub fn add_admin(&mut self, recipient: &str) -> Result<Change, Error> {
        let root = self.doc.as_table_mut();
        if !root.contains_key("secrets") {
            let mut t = Table::new();
            t.decor_mut().set_prefix("\n");
            root.insert("secrets", Item::Table(t));
        }
        let secrets = root
            .get_mut("secrets")
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| Error::InventoryShape { what: "`secrets` is not a table".into() })?;
        if !secrets.contains_key("admins") {
            secrets.insert("admins", value(Array::new()));
        }
        let admins = secrets
            .get_mut("admins")
            .and_then(Item::as_array_mut)
            .ok_or_else(|| Error::InventoryShape { what: "`secrets.admins` is not an array".into() })?;
        if admins.iter().any(|v| v.as_str() == Some(recipient)) {
            return Ok(Change::Unchanged);
        }
        admins.push(recipient);
        Ok(Change::Added)
    }

    /// Sets `hosts.<host>.age`, keeping the decoration (e.g. a trailing comment) of an old value.
    pub fn set_host_age(&mut self, host: &str, recipient: &str) -> Result<Change, Error> {
        let known: Vec<String> = self
            .doc
            .get("hosts")
            .and_then(Item::as_table_like)
            .map(|h| h.iter().map(|(k, _)| k.to_owned()).collect())
            .unwrap_or_default();
        let hosts = self.doc.as_table_mut().get_mut("hosts").and_then(Item::as_table_like_mut);
        let Some(entry) = hosts.and_then(|h| h.get_mut(host)).and_then(Item::as_table_like_mut) else {
            return Err(Error::UnknownHost { host: host.to_owned(), inventory: "n3x.toml".into(), known });
        };
        match entry.get_mut("age") {
            Some(Item::Value(Value::String(old))) if old.value() == recipient => Ok(Change::Unchanged),
            Some(Item::Value(old)) => {
                let before = old.as_str().unwrap_or_default().to_string();
                let decor = old.decor().clone();
                let mut new = Value::from(recipient);
                *new.decor_mut() = decor;
                *old = new;
                Ok(Change::Replaced(before))
            }
            Some(_) => Err(Error::InventoryShape { what: format!("`hosts.{host}.age` is not a string") }),
            None => {
                entry.insert("age", value(recipient));
                Ok(Change::Added)
            }
        }
    }
}

impl std::fmt::Display for InventoryEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.doc)
    }
}
