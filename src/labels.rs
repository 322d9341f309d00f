//! Class labels: the `coco_labels.txt` format (`<id> <name>` per line, ids may have gaps).

use std::{collections::BTreeMap, path::Path};

use crate::error::{Error, LabelsError, Result};

#[derive(Debug, Clone, Default)]
pub struct Labels {
    by_id: BTreeMap<u32, String>,
}

impl Labels {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
        Self::parse(&text).map_err(|source| Error::Labels {
            path: path.into(),
            source,
        })
    }

    /// Parses `<id> <name>` lines; blank lines are skipped, a UTF-8 byte-order mark and CRLF
    /// line ends are accepted. A line without an id is an error.
    pub fn parse(text: &str) -> std::result::Result<Self, LabelsError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut by_id = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (id, name) = line
                .split_once(char::is_whitespace)
                .ok_or(LabelsError::NoName { line: n + 1 })?;
            let id: u32 = id.parse().map_err(|_| LabelsError::BadId {
                line: n + 1,
                id: id.to_string(),
            })?;
            by_id.insert(id, name.trim().to_string());
        }
        if by_id.is_empty() {
            return Err(LabelsError::Empty);
        }
        Ok(Labels { by_id })
    }

    /// Labels from a model's own class names (id, name); `None` if there are none.
    pub fn from_names(names: &[(u32, String)]) -> Option<Self> {
        let by_id: BTreeMap<u32, String> = names.iter().cloned().collect();
        (!by_id.is_empty()).then_some(Labels { by_id })
    }

    /// An error unless these labels name exactly the ids `0..classes` of a model with
    /// `classes` classes (Ultralytics' layouts: a labels file for another class list would put
    /// wrong names on every detection).
    pub fn check_count(&self, classes: usize, path: &Path) -> Result<()> {
        let ids_fit = self.by_id.keys().all(|&id| (id as usize) < classes);
        if self.by_id.len() == classes && ids_fit {
            return Ok(());
        }
        Err(Error::LabelsClassCount {
            path: path.into(),
            names: self.by_id.len(),
            classes,
        })
    }

    /// The name of a class id, or `class_<id>` for ids the file does not list.
    pub fn name(&self, id: u32) -> std::borrow::Cow<'_, str> {
        match self.by_id.get(&id) {
            Some(s) => s.as_str().into(),
            None => format!("class_{id}").into(),
        }
    }

    /// The class id named `name`, as [`Labels::name`] names it: a listed name, or
    /// `class_<id>` for an id the file does not list.
    pub fn id_of(&self, name: &str) -> Option<u32> {
        if let Some((&id, _)) = self.by_id.iter().find(|(_, n)| n.as_str() == name) {
            return Some(id);
        }
        let id: u32 = name.strip_prefix("class_")?.parse().ok()?;
        (!self.by_id.contains_key(&id)).then_some(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gapped_ids_and_multiword_names() {
        let l = Labels::parse("0  person\n1  bicycle\n\n12  stop sign\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.name(0), "person");
        assert_eq!(l.name(12), "stop sign");
        assert_eq!(l.name(11), "class_11");
        assert_eq!(l.id_of("stop sign"), Some(12));
        assert_eq!(l.id_of("class_11"), Some(11));
        assert_eq!(l.id_of("class_0"), None, "listed as person");
        assert_eq!((l.id_of("Person"), l.id_of("car")), (None, None));
    }

    #[test]
    fn accepts_a_byte_order_mark_and_crlf() {
        let l = Labels::parse("\u{feff}0 person\r\n1 bicycle\r\n").unwrap();
        assert_eq!(
            (l.len(), l.name(0), l.name(1)),
            (2, "person".into(), "bicycle".into())
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(Labels::parse("person\n").is_err());
        assert!(Labels::parse("x person\n").is_err());
        assert!(Labels::parse("\n\n").is_err());
    }
}
