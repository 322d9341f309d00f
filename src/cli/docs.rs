//! `docs/cli.md`, the command-line reference, rendered from the clap definitions ([`Cli`]) so
//! that it cannot drift from `--help`: every command with its about text, usage, arguments
//! and options (help, default, possible values) and examples. A test compares the file with
//! what this renders; `VIDINFER_BLESS=1 cargo test --release --bin vidinfer cli_md` rewrites it.
//!
//! Only the test uses it (`mod docs` is `cfg(test)`): the binary carries no copy of its docs.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, Command, CommandFactory as _};

use super::args::Cli;

/// The command that regenerates `docs/cli.md`, as the page and the test's failure say it.
pub const REGENERATE: &str = "VIDINFER_BLESS=1 cargo test --release --bin vidinfer cli_md";

/// The whole of `docs/cli.md`.
pub fn render() -> String {
    let mut root = Cli::command();
    // Builds every subcommand too: their bin names ("vidinfer detect") and global flags.
    root.build();
    let mut out = String::new();
    let _ = writeln!(out, "# Command-line reference\n");
    let _ = writeln!(
        out,
        "<!-- Generated from src/cli/args.rs by src/cli/docs.rs: do not edit by hand. -->\n"
    );
    let _ = writeln!(
        out,
        "Every command and flag of `vidinfer`, generated from the same clap definitions as \
         `vidinfer --help` (`src/cli/args.rs`), so the two say the same. After changing a flag, \
         regenerate this page with\n\n```sh\n{REGENERATE}\n```\n\n(`cargo test` fails while it \
         is out of date). What the flags are for, by topic: [the docs index](README.md).\n"
    );
    let names: Vec<String> = root
        .get_subcommands()
        .filter(|c| documented(c))
        .map(|c| format!("[`{0}`](#vidinfer-{0})", c.get_name()))
        .collect();
    let _ = writeln!(out, "Commands: {}.\n", names.join(", "));
    command(&mut out, &mut root, true);
    let subs: Vec<String> = root
        .get_subcommands()
        .filter(|c| documented(c))
        .map(|c| c.get_name().to_string())
        .collect();
    for name in subs {
        if let Some(sub) = root.find_subcommand_mut(&name) {
            command(&mut out, sub, false);
        }
    }
    // One newline at the end, whatever the last section ends with.
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

/// The subcommands with a section: not hidden, and not clap's own `help` (which `-h` and
/// `--help` say everywhere).
fn documented(c: &Command) -> bool {
    !c.is_hide_set() && c.get_name() != "help"
}

/// One command's section: heading, about, usage, positionals, options, examples.
fn command(out: &mut String, cmd: &mut Command, root: bool) {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let _ = writeln!(out, "## {name}\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{}\n", escape(&about.to_string()));
    }
    let usage = cmd.render_usage().to_string();
    let _ = writeln!(out, "```text\n{}\n```\n", usage.trim_end());
    // Global flags (-v, -q) are listed once, under the root; -h/--help is everywhere.
    let shown = |a: &&Arg| !a.is_hide_set() && a.get_id() != "help" && (root || !a.is_global_set());
    let positionals: Vec<&Arg> = cmd.get_positionals().filter(shown).collect();
    if !positionals.is_empty() {
        let _ = writeln!(out, "Arguments:\n");
        for a in positionals {
            arg(out, a);
        }
        out.push('\n');
    }
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional())
        .filter(shown)
        .collect();
    if !options.is_empty() {
        let _ = writeln!(out, "Options:\n");
        for a in options {
            arg(out, a);
        }
        out.push('\n');
    }
    if root {
        let _ = writeln!(
            out,
            "`-v`, `-q` and `-h`/`--help` work with every command; `-h` is a short summary, \
             `--help` the long one.\n"
        );
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        let _ = writeln!(out, "```text\n{}\n```\n", after.to_string().trim_end());
    }
}

/// One argument as a list item: its spelling, then its help, default and values.
fn arg(out: &mut String, a: &Arg) {
    let takes_value = a.get_action().takes_values();
    let value = value_names(a);
    let mut spelled = Vec::new();
    if let Some(s) = a.get_short() {
        spelled.push(format!("`-{s}`"));
    }
    match (a.get_long(), a.is_positional()) {
        (Some(l), _) if takes_value => spelled.push(format!("`--{l} {value}`")),
        (Some(l), _) => spelled.push(format!("`--{l}`")),
        (None, true) => spelled.push(format!("`{value}`")),
        (None, false) => {}
    }
    let mut notes = Vec::new();
    if a.is_positional() && a.is_required_set() {
        notes.push("required".to_string());
    }
    if a.get_value_delimiter().is_some() {
        notes.push("a comma-separated list".to_string());
    }
    let repeats = matches!(a.get_action(), ArgAction::Append | ArgAction::Count);
    if repeats && !a.is_positional() && a.get_value_delimiter().is_none() {
        notes.push("repeatable".to_string());
    }
    if takes_value && !a.is_hide_default_value_set() && !a.get_default_values().is_empty() {
        let d: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        notes.push(format!("default `{}`", d.join(",")));
    }
    let help = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| escape(h.to_string().trim()))
        .unwrap_or_default();
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let _ = writeln!(out, "- {}{notes}: {help}", spelled.join(", "));
    values(out, a, takes_value);
}

/// `<NAME>` for each value an argument takes, with `...` when it takes several.
fn value_names(a: &Arg) -> String {
    let names: Vec<String> = match a.get_value_names() {
        Some(n) => n.iter().map(|s| s.to_string()).collect(),
        None => vec![a.get_id().to_string().to_uppercase()],
    };
    let many = a
        .get_num_args()
        .is_some_and(|r| r.max_values() > 1 && names.len() == 1)
        && a.is_positional();
    let joined: Vec<String> = names.iter().map(|n| format!("<{n}>")).collect();
    format!("{}{}", joined.join(" "), if many { "..." } else { "" })
}

/// The values an argument accepts, when clap knows them: each with its help as a sub-list,
/// or on one line when none has any.
fn values(out: &mut String, a: &Arg, takes_value: bool) {
    if !takes_value || a.is_hide_possible_values_set() {
        return;
    }
    let values: Vec<_> = a
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if values.is_empty() {
        return;
    }
    if values.iter().all(|v| v.get_help().is_none()) {
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        let _ = writeln!(out, "  Values: {}.", names.join(", "));
        return;
    }
    for v in values {
        match v.get_help() {
            Some(h) => {
                let h = escape(h.to_string().trim());
                let _ = writeln!(out, "  - `{}`: {h}", v.get_name());
            }
            None => {
                let _ = writeln!(out, "  - `{}`", v.get_name());
            }
        }
    }
}

/// Help text as Markdown: what Markdown would read as markup (`*`, `_`, `<`, `>`, `\`) is
/// escaped outside `code spans`, which stay as they are. Line breaks become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '\n' if !in_code => out.push(' '),
            '*' | '_' | '<' | '>' | '\\' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn cli_md_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
        let rendered = render();
        if std::env::var_os("VIDINFER_BLESS").is_some() {
            std::fs::write(&path, &rendered).expect("writing docs/cli.md");
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != rendered {
            let line = on_disk
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(on_disk.lines().count().min(rendered.lines().count()));
            panic!(
                "docs/cli.md is not what the clap definitions render (first difference at line \
                 {}); run `{REGENERATE}` to regenerate it",
                line + 1
            );
        }
    }

    #[test]
    fn cli_md_covers_every_command_and_flag() {
        let md = render();
        let mut root = Cli::command();
        root.build();
        for sub in root.get_subcommands().filter(|c| documented(c)) {
            assert!(md.contains(&format!("\n## vidinfer {}\n", sub.get_name())));
            for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(l) = a.get_long() {
                    assert!(md.contains(&format!("`--{l}")), "--{l} missing");
                }
            }
        }
        // Defaults and values as clap has them; markup in help texts escaped.
        assert!(md.contains("- `--conf <CONF>` (default `0.5`): Keep detections"));
        assert!(md.contains("  - `fused`: YUV 4:2:0 straight to the tensor in one pass ("));
        assert!(md.contains("(`<id> <name>` per line)"), "code spans kept");
        assert_eq!(escape("a *b* `c*d` <e>"), r"a \*b\* `c*d` \<e\>");
    }
}
