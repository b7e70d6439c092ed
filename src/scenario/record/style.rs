//! The catalog's TOML layout for written scenarios (inline `expect` tables, one-line
//! arrays) and the file-name slug of a scenario name. Only the layout changes, never a value.

/// Restyles serialised TOML the way the catalog is written: a step's `expect` as an
/// inline table on one line, arrays on one line. Only the layout changes.
pub(super) fn catalog_style(text: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("serialised scenario does not parse: {e}"))?;
    one_line_arrays(doc.as_table_mut());
    if let Some(steps) = doc
        .get_mut("step")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    {
        for step in steps.iter_mut() {
            if let Some(toml_edit::Item::Table(expect)) = step.remove("expect") {
                let mut inline = expect.into_inline_table();
                inline.fmt();
                step.insert("expect", toml_edit::value(inline));
            }
        }
    }
    Ok(doc.to_string())
}

fn one_line_arrays(table: &mut toml_edit::Table) {
    for (_, item) in table.iter_mut() {
        match item {
            toml_edit::Item::Value(toml_edit::Value::Array(array)) => array.fmt(),
            toml_edit::Item::Table(t) => one_line_arrays(t),
            toml_edit::Item::ArrayOfTables(tables) => tables.iter_mut().for_each(one_line_arrays),
            _ => {}
        }
    }
}

/// A file-name slug: lowercase ASCII letters and digits, runs of anything else as one `_`,
/// at most 80 characters, `scenario` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.truncate(80);
    let out = out.trim_end_matches('_');
    if out.is_empty() {
        "scenario".to_string()
    } else {
        out.to_string()
    }
}
