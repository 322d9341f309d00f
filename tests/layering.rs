//! The library's shape, checked from its source: data flows one way, so no top-level module
//! of `src/` may depend (through `crate::` or `super::` paths) on one that depends back on it,
//! nor on a module of a later stage; and no file or function grows past what one can read.
//! Test code (`#[cfg(test)]` items and the files they declare) is left out of every check.
//!
//! The reading is textual on purpose, so it needs no parser: comments, strings and character
//! literals are blanked first, then paths are read token by token (`use crate::{a::{b, c}, d}`
//! groups included).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The stages, earliest first. A module may use modules of its own layer or an earlier one;
/// modules of one layer must not form a cycle either.
const LAYERS: &[&[&str]] = &[
    &["sys", "channel", "av", "error", "labels", "manifest"],
    &["decode"],
    &["preprocess"],
    &["infer"],
    &["postprocess"],
    &["track"],
    &["sink", "output"],
    &["telemetry"],
    &["pipeline"],
    &["bench"],
];

const MAX_FILE_LINES: usize = 700;
const MAX_FN_LINES: usize = 80;

/// A source file with its comments, strings and character literals blanked (newlines kept, so
/// line numbers stay), and its test code blanked too.
struct Source {
    path: PathBuf,
    /// The module path below the crate root: `src/infer/ep/cpu.rs` is `[infer, ep, cpu]`.
    module: Vec<String>,
    code: String,
    /// Lines of the file that are not test code.
    code_lines: usize,
}

/// Blanks comments, string literals (plain, byte, raw) and character literals, keeping
/// newlines and every other character's position.
fn blank_non_code(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, i);
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some(end) = raw_string_end(b, i) {
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' && !ident_byte_before(b, i, b'b') {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j.min(b.len()));
            i = j + 1;
        } else if b[i] == b'"' {
            // A byte string: the `b` before it was an identifier byte; treat it the same way.
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j.min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{1F600}', '{'), or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                // Past the backslash and the escaped character (which may be a quote).
                let mut j = i + 3;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            } else if let Some(len) = char_literal_len(&b[i + 1..]) {
                blank(&mut out, i + 1, i + 1 + len);
                i += len + 2;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `b` at `i - 1` and no identifier character before it: `b"..."`.
fn ident_byte_before(b: &[u8], i: usize, c: u8) -> bool {
    i >= 1 && b[i - 1] == c && (i < 2 || !is_ident_byte(b[i - 2]))
}

/// The length of one (possibly multi-byte) character followed by a closing quote.
fn char_literal_len(rest: &[u8]) -> Option<usize> {
    let first = *rest.first()?;
    let len = match first {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    (rest.get(len) == Some(&b'\'')).then_some(len)
}

/// Where a raw string starting at `i` (`r"`, `r#"`, `br#"`...) ends, if one starts there.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident_byte(b[i - 1]) {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = j + 1;
    let end = b[body..].windows(close.len()).position(|w| w == close)?;
    Some(body + end + close.len())
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index just past the `}` that closes the `{` at `open`.
fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Blanks every item marked `#[cfg(test)]` (to its closing brace, or its `;`); returns the
/// names of the module files such items declare (`#[cfg(test)] mod tests;`) and the number of
/// lines the items span.
fn blank_test_items(code: &mut String) -> (Vec<String>, usize) {
    let mut test_files = Vec::new();
    let mut test_lines = 0;
    let mut bytes = std::mem::take(code).into_bytes();
    let mut from = 0;
    while let Some(p) = find(&bytes[from..], b"#[cfg(test)]").map(|p| p + from) {
        let after = p + b"#[cfg(test)]".len();
        let brace = bytes[after..].iter().position(|&c| c == b'{');
        let semi = bytes[after..].iter().position(|&c| c == b';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => after + s + 1,
            (None, Some(s)) => after + s + 1,
            (Some(b), _) => matching_brace(&bytes, after + b),
            (None, None) => bytes.len(),
        };
        let item = String::from_utf8_lossy(&bytes[after..end]).into_owned();
        let words: Vec<&str> = item
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ';'))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(k) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(k + 1).and_then(|n| n.strip_suffix(';')) {
                test_files.push(name.to_string());
            }
        }
        test_lines += bytes[p..end].iter().filter(|&&c| c == b'\n').count() + 1;
        for c in &mut bytes[p..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    *code = String::from_utf8(bytes).expect("blanking keeps UTF-8");
    (test_files, test_lines)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every library source file under `src/` (not the binary's `main.rs` and `cli/` when
/// `library_only`), without test code.
fn read_sources(library_only: bool) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs(&root, &mut files);
    files.sort();
    let mut sources = Vec::new();
    let mut test_files = BTreeSet::new();
    for path in files {
        let rel = path.strip_prefix(&root).unwrap();
        let mut module: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let binary = module.first().is_some_and(|m| m == "main" || m == "cli");
        if library_only && binary {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let mut code = blank_non_code(&text);
        let dir = match path.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => path.parent().unwrap().to_path_buf(),
            _ => path.with_extension(""),
        };
        let (names, test_lines) = blank_test_items(&mut code);
        for name in names {
            test_files.insert(dir.join(format!("{name}.rs")));
            test_files.insert(dir.join(name).join("mod.rs"));
        }
        let code_lines = text.lines().count().saturating_sub(test_lines);
        sources.push(Source {
            path,
            module,
            code,
            code_lines,
        });
    }
    sources.retain(|s| !test_files.contains(&s.path));
    sources
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Identifiers and the punctuation that matters for paths (`::`, `{`, `}`, `,`).
fn tokens(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident_byte(b[i]) {
            let start = i;
            while i < b.len() && is_ident_byte(b[i]) {
                i += 1;
            }
            out.push(code[start..i].to_string());
        } else if b[i..].starts_with(b"::") {
            out.push("::".into());
            i += 2;
        } else {
            if matches!(b[i], b'{' | b'}' | b',') {
                out.push((b[i] as char).to_string());
            } else if !b[i].is_ascii_whitespace() {
                out.push("·".into());
            }
            i += 1;
        }
    }
    out
}

/// The top-level modules a file at `module` names through `crate::` or `super::` paths.
fn references(module: &[String], code: &str) -> BTreeSet<String> {
    let t = tokens(code);
    let mut found = BTreeSet::new();
    for k in 0..t.len() {
        let preceded_by_path = k > 0 && t[k - 1] == "::";
        if preceded_by_path || (t[k] != "crate" && t[k] != "super") {
            continue;
        }
        // Walk `crate::` or `super::super::...` to the crate root, if it gets there.
        let mut depth = module.len();
        let mut j = k;
        if t[j] == "crate" {
            depth = 0;
            j += 1;
        } else {
            while t.get(j).is_some_and(|s| s == "super") && t.get(j + 1).is_some_and(|s| s == "::")
            {
                depth = depth.saturating_sub(1);
                j += 2;
            }
            j -= 1;
        }
        if depth > 0 || t.get(j).is_none_or(|s| s != "::") {
            continue;
        }
        first_segments(&t, j + 1, &mut found);
    }
    found
}

/// The first segment of the path at `t[at]`, or of every path in a `{...}` group there.
fn first_segments(t: &[String], at: usize, found: &mut BTreeSet<String>) {
    match t.get(at).map(String::as_str) {
        Some("{") => {
            let mut depth = 0;
            let mut expect_name = true;
            for tok in &t[at..] {
                match tok.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect_name = true,
                    name if depth == 1 && expect_name => {
                        if name != "self" && name != "·" {
                            found.insert(name.to_string());
                        }
                        expect_name = false;
                    }
                    _ => {}
                }
            }
        }
        Some(name) if name != "·" && name != "}" => {
            found.insert(name.to_string());
        }
        _ => {}
    }
}

/// Edges between top-level modules of the library: `a` → the modules `a` uses.
fn module_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let top: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .filter(|m| m != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        let Some(from) = s.module.first().filter(|m| *m != "lib") else {
            continue;
        };
        let uses = references(&s.module, &s.code);
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(uses.into_iter().filter(|m| m != from && top.contains(m)));
    }
    graph
}

/// A cycle in `graph`, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph(&read_sources(true));
    assert!(graph.len() > 5, "too few modules read: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle in src/: {}", cycle.join(" → "));
    }
}

#[test]
fn every_module_uses_only_its_own_or_earlier_stages() {
    let graph = module_graph(&read_sources(true));
    let mut wrong = Vec::new();
    for (from, uses) in &graph {
        let Some(lf) = layer_of(from) else {
            wrong.push(format!("{from} is in no layer of tests/layering.rs"));
            continue;
        };
        for to in uses {
            match layer_of(to) {
                Some(lt) if lt <= lf => {}
                Some(_) => wrong.push(format!("{from} uses {to}, a later stage")),
                None => wrong.push(format!("{to} is in no layer of tests/layering.rs")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_file_over_700_lines_of_non_test_code() {
    let sources = read_sources(false);
    assert!(sources.len() > 20, "too few files read");
    let long: Vec<String> = sources
        .iter()
        .filter(|s| s.code_lines > MAX_FILE_LINES)
        .map(|s| format!("{}: {} lines besides tests", s.path.display(), s.code_lines))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES}:\n{}",
        long.join("\n")
    );
}

/// Every `fn` with a body: its name and the lines from `fn` to its closing brace.
fn function_lengths(code: &str) -> Vec<(String, usize, usize)> {
    let t = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = find(&t[from..], b"fn ").map(|p| p + from) {
        from = p + 3;
        if p > 0 && is_ident_byte(t[p - 1]) {
            continue;
        }
        let name: String = code[p + 3..]
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '_')
            .collect();
        if name.is_empty() {
            continue; // `fn(` types
        }
        let (brace, semi) = (
            t[p..].iter().position(|&c| c == b'{'),
            t[p..].iter().position(|&c| c == b';'),
        );
        let Some(open) = brace.filter(|b| semi.is_none_or(|s| *b < s)) else {
            continue; // a declaration without a body
        };
        let end = matching_brace(t, p + open);
        let line = code[..p].matches('\n').count() + 1;
        let lines = code[p..end].matches('\n').count() + 1;
        out.push((name, line, lines));
    }
    out
}

#[test]
fn no_function_over_80_lines() {
    let mut long = Vec::new();
    for s in read_sources(false) {
        for (name, line, n) in function_lengths(&s.code) {
            if n > MAX_FN_LINES {
                long.push(format!("{}:{line}: fn {name}: {n} lines", s.path.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_FN_LINES}:\n{}", long.join("\n"));
}

// The checks' own machinery, on small examples, so a broken reader cannot pass silently.

fn graph_of(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in edges {
        g.entry(a.to_string()).or_default().insert(b.to_string());
        g.entry(b.to_string()).or_default();
    }
    g
}

#[test]
fn find_cycle_names_the_cycle() {
    let g = graph_of(&[
        ("error", "infer"),
        ("infer", "preprocess"),
        ("preprocess", "error"),
    ]);
    let cycle = find_cycle(&g).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    for m in ["error", "infer", "preprocess"] {
        assert!(cycle.iter().any(|c| c == m), "{cycle:?}");
    }
    let g = graph_of(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert_eq!(find_cycle(&g), None);
    let g = graph_of(&[("a", "b"), ("b", "a")]);
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "a"]);
}

#[test]
fn references_read_groups_super_and_skip_comments_and_strings() {
    let code = blank_non_code(
        r##"
use crate::{
    decode::{RgbConverter, source::{self, SourceKind}},
    error::Result, av,
};
use super::super::labels::Labels;
use super::Sibling;
// crate::pipeline in a comment
/* crate::bench */
const S: &str = "crate::track";
const C: char = '{';
const Q: [char; 2] = ['\'', '"'];
const B: u8 = b'"';
fn f<'a>(x: &'a str) -> crate::postprocess::BoxInFrame { todo() }
static R: &str = r#"crate::sink "quoted""#;
use crate::sys;
"##,
    );
    let module: Vec<String> = vec!["sink".into(), "csv".into()];
    let found = references(&module, &code);
    let want: BTreeSet<String> = ["decode", "error", "av", "labels", "postprocess", "sys"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
    // At the top level, `super::x` is the crate root's `x`.
    let top: Vec<String> = vec!["labels".into()];
    let found = references(&top, &blank_non_code("use super::error::Error;"));
    assert!(found.contains("error"), "{found:?}");
}

#[test]
fn test_items_are_left_out() {
    let mut code = blank_non_code(
        "fn a() { crate::x::y(); }\n#[cfg(test)]\nmod tests {\n    use crate::z;\n    fn t() { let s = \"}\"; }\n}\n#[cfg(test)]\nmod more;\n",
    );
    let (files, lines) = blank_test_items(&mut code);
    assert_eq!(files, ["more"]);
    assert_eq!(lines, 7);
    let found = references(&["m".to_string()], &code);
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["x"]);
    assert_eq!(function_lengths(&code), [("a".to_string(), 1, 1)]);
}
