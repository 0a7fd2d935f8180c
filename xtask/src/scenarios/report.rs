//! A scenario's table: rows with a verdict, the known misses applied, the
//! printing.

use super::{KNOWN, Scenario, Sizes};
use cargo_wsk::driver::relative;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// A row's verdict, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verdict {
    /// A measurement without a target.
    Info,
    Pass,
    /// A known miss or failure ([`KNOWN`]).
    Known,
    /// A target missed.
    Miss,
    /// Broken: wrong or lost bytes, a hang, a crash.
    Fail,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Pass => "pass",
            Verdict::Known => "known",
            Verdict::Miss => "MISS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of a scenario's table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The check this row is (matched by [`KNOWN`]), empty for a plain
    /// measurement.
    pub(crate) check: &'static str,
    pub(crate) what: String,
    pub(crate) value: String,
    pub(crate) target: String,
    pub(crate) verdict: Verdict,
    /// Why a verdict is `known`.
    pub(crate) note: String,
}

/// The rows of one driver's run through one scenario.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) driver: String,
    pub(crate) scenario: Scenario,
    pub(crate) title: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) elapsed: Duration,
    pub(crate) log: PathBuf,
    /// Values for the summary and `wine-bench`, by name.
    pub(crate) values: Vec<(&'static str, f64)>,
}

impl Report {
    pub(super) fn new(driver: &str, scenario: Scenario, sizes: &Sizes) -> Report {
        Report {
            driver: driver.to_string(),
            scenario,
            title: scenario.title(sizes),
            rows: Vec::new(),
            elapsed: Duration::ZERO,
            log: PathBuf::new(),
            values: Vec::new(),
        }
    }

    /// A measurement.
    pub(crate) fn info(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.rows.push(Row {
            check: "",
            what: what.into(),
            value: value.into(),
            target: String::new(),
            verdict: Verdict::Info,
            note: String::new(),
        });
    }

    /// A check: `ok` passes, else `bad` (a [`Verdict::Miss`] or
    /// [`Verdict::Fail`]).
    pub(crate) fn check(
        &mut self,
        check: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        ok: bool,
        bad: Verdict,
    ) {
        self.rows.push(Row {
            check,
            what: what.into(),
            value: value.into(),
            target: target.into(),
            verdict: if ok { Verdict::Pass } else { bad },
            note: String::new(),
        });
    }

    /// A failure that ends the scenario early.
    pub(crate) fn fail(&mut self, what: impl Into<String>, problem: impl Into<String>) {
        self.check("run", what, problem, "", false, Verdict::Fail);
    }

    pub(crate) fn value(&mut self, name: &'static str, v: f64) {
        self.values.push((name, v));
    }

    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Marks the misses and failures [`KNOWN`] lists (unless `strict`),
    /// and notes known entries whose checks passed.
    pub(super) fn apply_known(&mut self, strict: bool) {
        let (driver, scenario) = (self.driver.clone(), self.scenario);
        for k in KNOWN.iter().filter(|k| k.applies(&driver, scenario)) {
            let mut listed = false;
            for row in &mut self.rows {
                if !k.covers(row.check) {
                    continue;
                }
                listed = true;
                if row.verdict >= Verdict::Miss && !strict {
                    row.verdict = Verdict::Known;
                    row.note = k.why.to_string();
                }
            }
            let all_pass = self
                .rows
                .iter()
                .filter(|r| k.covers(r.check))
                .all(|r| r.verdict == Verdict::Pass);
            if listed && all_pass {
                self.info(
                    "NOTE",
                    format!(
                        "listed as a known miss ({}) but met in this run; once it is met every time, remove the entry from KNOWN in xtask/src/scenarios/mod.rs",
                        k.check
                    ),
                );
            }
        }
    }

    /// The worst verdict of its rows.
    pub(crate) fn verdict(&self) -> Verdict {
        self.rows
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Info)
            .max(Verdict::Pass)
    }

    pub(crate) fn print(&self) {
        println!(
            "\n=== {} · {}: {}  [{}] ({:.1} s; log {})",
            self.driver,
            self.scenario.name(),
            self.title,
            self.verdict().word(),
            self.elapsed.as_secs_f64(),
            relative(&self.log).display()
        );
        let w = self
            .rows
            .iter()
            .map(|r| r.what.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let v = self
            .rows
            .iter()
            .map(|r| r.value.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, 60);
        println!(
            "  {:<w$}  {:<v$}  {:<12}  verdict",
            "what", "value", "target"
        );
        for r in &self.rows {
            let mut line = format!(
                "  {:<w$}  {:<v$}  {:<12}  {}",
                r.what,
                r.value,
                r.target,
                r.verdict.word()
            );
            if !r.note.is_empty() {
                let _ = write!(line, " ({})", r.note);
            }
            println!("{}", line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_misses_are_marked_and_met_ones_noted() {
        let sizes = Sizes::default();
        let mut r = Report::new("raw-echo", Scenario::Many, &sizes);
        r.check("threads", "t", "513", "<= 32", false, Verdict::Miss);
        r.check("echoed", "e", "512/512", "all", true, Verdict::Fail);
        r.apply_known(false);
        assert_eq!(r.verdict(), Verdict::Known);
        let mut strict = Report::new("raw-echo", Scenario::Many, &sizes);
        strict.check("threads", "t", "513", "<= 32", false, Verdict::Miss);
        strict.apply_known(true);
        assert_eq!(strict.verdict(), Verdict::Miss);
        let mut met = Report::new("raw-echo", Scenario::Many, &sizes);
        met.check("threads", "t", "3", "<= 32", true, Verdict::Miss);
        met.apply_known(false);
        assert_eq!(met.verdict(), Verdict::Pass);
        assert!(met.rows.iter().any(|r| r.what == "NOTE"));
    }
}
