//! Figures and how they are printed.

use serde::Serialize;

/// One measured figure, next to the baseline it is judged against.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Figure {
    /// What was measured.
    pub(crate) name: String,
    /// The figure.
    pub(crate) value: f64,
    /// Its unit (`events/s`, `ms`).
    pub(crate) unit: &'static str,
    /// The raw limit it is compared with, measured in the same run, if any.
    pub(crate) baseline: Option<Baseline>,
    /// Anything a reader needs to interpret it.
    pub(crate) note: String,
}

/// A baseline figure.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Baseline {
    pub(crate) name: String,
    pub(crate) value: f64,
    /// The figure divided by the baseline.
    pub(crate) ratio: f64,
}

impl Figure {
    pub(crate) fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            baseline: None,
            note: String::new(),
        }
    }

    pub(crate) fn against(mut self, name: impl Into<String>, value: f64) -> Self {
        let ratio = if value > 0.0 {
            self.value / value
        } else {
            f64::NAN
        };
        self.baseline = Some(Baseline {
            name: name.into(),
            value,
            ratio,
        });
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Prints the figures as a Markdown table.
pub(crate) fn print_table(figures: &[Figure]) {
    println!("| figure | value | baseline (same run) | ratio | note |");
    println!("|---|---:|---|---:|---|");
    for f in figures {
        let (baseline, ratio) = match &f.baseline {
            Some(b) => (
                format!("{}: {}", b.name, human(b.value, f.unit)),
                format!("{:.2}", b.ratio),
            ),
            None => (String::new(), String::new()),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            f.name,
            human(f.value, f.unit),
            baseline,
            ratio,
            f.note
        );
    }
}

fn human(value: f64, unit: &str) -> String {
    if unit == "ms" {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} {unit}")
    }
}
