//! Check results: printed as they come, then written to `conformance/REPORT.md` as one table
//! row per check (requirement IDs, spec clause, check, backend, result, failure reason).

use std::fmt::Write as _;

/// What a check proves: requirement ID(s), spec clause, and a short name.
pub type Id = (&'static str, &'static str, &'static str);

/// A check's result: `Err(reason)` on failure.
pub type Check<T = ()> = Result<T, String>;

/// One check's outcome.
pub struct Row {
    pub section: &'static str,
    pub ids: &'static str,
    pub clause: &'static str,
    pub name: &'static str,
    pub backend: &'static str,
    pub error: Option<String>,
}

/// All rows of a run, plus notes for the header.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    backends: Vec<&'static str>,
}

impl Report {
    pub fn record(&mut self, row: Row) {
        match &row.error {
            None => println!("PASS  [{}] {} — {} ({})", row.backend, row.name, row.ids, row.clause),
            Some(e) => println!("FAIL  [{}] {} — {} ({}): {e}", row.backend, row.name, row.ids, row.clause),
        }
        if !self.backends.contains(&row.backend) {
            self.backends.push(row.backend);
        }
        self.rows.push(row);
    }

    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        println!("note: {n}");
        self.notes.push(n);
    }

    /// `(passed, failed)`.
    pub fn totals(&self) -> (usize, usize) {
        let failed = self.rows.iter().filter(|r| r.error.is_some()).count();
        (self.rows.len() - failed, failed)
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let (passed, failed) = self.totals();
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "unknown date".into());
        let mut out = String::new();
        let _ = writeln!(out, "# tongzheng conformance report\n");
        let _ = writeln!(out, "- Generated: {date} (system clock), by `cargo test --test conformance`.");
        let _ = writeln!(out, "- Store backends run: {}.", self.backends.join(", "));
        let _ = writeln!(
            out,
            "- Relying party: the `openidconnect` crate (discovery, JWKS, code flow with PKCE, ID token \
             verification, UserInfo, refresh, client credentials, introspection, registration) plus plain \
             HTTP for the browser steps and the negative cases; the server runs in-process on 127.0.0.1:0."
        );
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out, "\n**{passed} passed, {failed} failed.**");
        // One table per section, in the order the sections first ran.
        let mut sections: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !sections.contains(&r.section) {
                sections.push(r.section);
            }
        }
        for section in sections {
            let _ = writeln!(out, "\n## {section}\n");
            let _ = writeln!(out, "| requirement | spec clause | check | backend | result | failure reason |");
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            self.table(&mut out, section);
        }
        out
    }

    fn table(&self, out: &mut String, section: &str) {
        for r in self.rows.iter().filter(|r| r.section == section) {
            let (result, reason) = match &r.error {
                None => ("PASS", String::new()),
                Some(e) => ("FAIL", cell(e)),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {result} | {reason} |",
                cell(r.ids),
                cell(r.clause),
                cell(r.name),
                r.backend
            );
        }
    }

    pub fn write(&self, path: &std::path::Path) {
        if let Err(e) = std::fs::write(path, self.markdown()) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
}

/// Text safe inside one Markdown table cell.
fn cell(s: &str) -> String {
    let one_line = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    if one_line.chars().count() > 400 {
        format!("{}…", one_line.chars().take(400).collect::<String>())
    } else {
        one_line
    }
}

/// The section of the report that rows go to unless a runner says otherwise.
pub const MAIN: &str = "Protocol, lifecycle and federation";
/// The section of the revocation checks (issue 9: tokens that should be dead stay dead).
pub const REVOCATION: &str = "Revocation";

/// Records the checks of one pass against one backend.
pub struct Runner<'a> {
    pub report: &'a mut Report,
    pub backend: &'static str,
    pub section: &'static str,
}

impl Runner<'_> {
    /// Records `result` under `id` and hands back its value for the checks that build on it.
    pub fn record<T>(&mut self, id: Id, result: Check<T>) -> Option<T> {
        let (ids, clause, name) = id;
        match result {
            Ok(v) => {
                self.report.record(Row {
                    section: self.section,
                    ids,
                    clause,
                    name,
                    backend: self.backend,
                    error: None,
                });
                Some(v)
            }
            Err(e) => {
                let row = Row { section: self.section, ids, clause, name, backend: self.backend, error: Some(e) };
                self.report.record(row);
                None
            }
        }
    }
}

/// `Ok` when `cond` holds, else `Err(why)`.
pub fn ensure(cond: bool, why: impl Into<String>) -> Check {
    if cond { Ok(()) } else { Err(why.into()) }
}
