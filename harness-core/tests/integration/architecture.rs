//! The import rule of `docs/ARCHITECTURE.md`, checked: a top-level module of harness-core names
//! only modules of lower layers. The layers are read from the fenced `layers` block of that page,
//! so the page is the rule and this test keeps the code to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `module → layer index`, from the block that starts with "```text layers".
fn layers(doc: &str) -> BTreeMap<String, usize> {
    let start = doc
        .find("```text layers")
        .expect("docs/ARCHITECTURE.md has a ```text layers block");
    let body = &doc[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[..body.find("```").expect("the layers block is closed")];
    let mut out = BTreeMap::new();
    for (i, line) in body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let line = line.split('#').next().unwrap_or("");
        for m in line.split_whitespace() {
            assert!(
                out.insert(m.to_owned(), i).is_none(),
                "`{m}` is listed twice"
            );
        }
    }
    out
}

/// Comments, strings and char literals blanked, so only code is searched.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The top-level modules a file names: `crate::x`, and `crate::{x, y::z}`.
fn named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut head = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => head = true,
                    c if head && !c.is_whitespace() => {
                        out.push(ident(&group[k..]));
                        head = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layers(&read(&root.join("../docs/ARCHITECTURE.md")));
    let src = root.join("src");
    let mut violations = Vec::new();
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "__private" {
            continue; // the crate root and the generated-code facade may name everything
        }
        let Some(&own) = layers.get(&name) else {
            unlisted.push(name);
            continue;
        };
        let mut list = Vec::new();
        if path.is_dir() {
            files(&path, &mut list);
        } else {
            list.push(path.clone());
        }
        for file in list {
            let src = read(&file);
            // Unit tests may reach anywhere: cut from the first `#[cfg(test)]` at column 0.
            let src = src.split("\n#[cfg(test)]").next().unwrap_or("");
            for m in named(&code_only(src)) {
                if m == name {
                    continue;
                }
                match layers.get(&m) {
                    Some(&l) if l < own => {}
                    Some(_) => violations.push(format!(
                        "{} names `crate::{m}`, which is not below `{name}`",
                        file.strip_prefix(root).unwrap_or(&file).display()
                    )),
                    None => violations.push(format!(
                        "{} names `crate::{m}`, which the layers block does not list",
                        file.strip_prefix(root).unwrap_or(&file).display()
                    )),
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "top-level modules missing from the layers block of docs/ARCHITECTURE.md: {unlisted:?}"
    );
    assert!(
        violations.is_empty(),
        "imports against the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let code = code_only(
        "use crate::{engine::Harness, observe::{CallEnd, Observer}};\n// crate::audit\nlet s = \"crate::x\"; crate::output::parse(s);",
    );
    assert_eq!(named(&code), ["engine", "observe", "output"]);
}
