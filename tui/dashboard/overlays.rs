//! The overlays' own states, apart from the main screen's (gitui's popups, bottom's widget
//! states): [`Overlays`] holds one per overlay, kept while it is closed so that what was typed
//! or scrolled is there when it opens again. [`ScoreForm`], [`LogView`] and
//! [`CoefficientsView`] answer their own keys with a [`KeyOutcome`], which the app applies.

use super::app::{ParamsForm, PredictForm, RunComparison, RunsView};
use super::sweep::SweepForm;
use crossterm::event::{KeyCode, KeyEvent};
use std::path::PathBuf;

/// Every overlay's state.
#[derive(Debug, Clone)]
pub struct Overlays {
    /// `e`: the hyperparameter form.
    pub params: ParamsForm,
    /// `p` with more than one feature: a field per feature.
    pub predict: PredictForm,
    /// `R`: the kept runs.
    pub runs: RunsView,
    /// `S` with no sweep: its grid.
    pub sweep: SweepForm,
    /// `B`: the CSV to score and the file to write.
    pub score: ScoreForm,
    /// `L`: a service's log.
    pub logs: LogView,
    /// `C`: the whole coefficient table.
    pub coefficients: CoefficientsView,
    /// Two runs side by side (or one alone), opened from `R`.
    pub comparison: Option<RunComparison>,
}

/// What a key did to an overlay, for the app to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// The overlay stays open, changed or not.
    Stay,
    Close,
    /// The overlay stays open and the status line says this.
    Status(String),
    /// `B`'s Enter: score `input` with stable, into `output`; the overlay closes.
    Score {
        input: PathBuf,
        output: PathBuf,
    },
}

/// `B`'s two paths and the field being edited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreForm {
    pub paths: [String; 2],
    pub field: usize,
}

impl ScoreForm {
    /// Typed, switched with the arrows or Tab; Enter scores unless `scoring` already.
    pub fn on_key(&mut self, key: KeyEvent, scoring: bool) -> KeyOutcome {
        let field = &mut self.paths[self.field];
        match key.code {
            KeyCode::Esc => return KeyOutcome::Close,
            KeyCode::Up | KeyCode::Down | KeyCode::Tab | KeyCode::BackTab => {
                self.field = 1 - self.field
            }
            KeyCode::Backspace => {
                field.pop();
            }
            KeyCode::Char(c) if !c.is_control() && field.len() < 4096 => field.push(c),
            KeyCode::Enter if scoring => {
                return KeyOutcome::Status("a scoring is already running".into());
            }
            KeyCode::Enter => {
                let [input, output] = self.paths.clone().map(|p| PathBuf::from(p.trim()));
                if input.as_os_str().is_empty() || output.as_os_str().is_empty() {
                    return KeyOutcome::Status(
                        "give the CSV to score and the file to write".into(),
                    );
                }
                return KeyOutcome::Score { input, output };
            }
            _ => {}
        }
        KeyOutcome::Stay
    }
}

/// A service's log as shown: how far up from its end, and the search typed after `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogView {
    pub scroll: usize,
    pub search: Option<String>,
    /// Keys go to the search while it is typed.
    pub searching: bool,
}

impl LogView {
    pub fn on_key(&mut self, key: KeyEvent) -> KeyOutcome {
        if self.searching {
            self.on_search_key(key);
            return KeyOutcome::Stay;
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => return KeyOutcome::Close,
            KeyCode::Up | KeyCode::Char('k') => self.scroll += 1,
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageUp => self.scroll += 10,
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Char('/') => {
                self.searching = true;
                self.search = Some(String::new());
            }
            _ => {}
        }
        KeyOutcome::Stay
    }

    fn on_search_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.searching = false,
            KeyCode::Esc => {
                self.searching = false;
                self.search = None;
            }
            KeyCode::Backspace => {
                if let Some(s) = self.search.as_mut() {
                    s.pop();
                }
            }
            KeyCode::Char(c) => self.search.get_or_insert_with(String::new).push(c),
            _ => {}
        }
    }

    /// Whether a line is shown: it holds the search, or there is none.
    pub fn shows(&self, line: &str) -> bool {
        self.search.as_deref().filter(|s| !s.is_empty()).is_none_or(|s| line.contains(s))
    }
}

/// The `C` view's first row shown, and its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoefficientsView {
    pub scroll: usize,
    /// Ordered by standardized magnitude, largest first, rather than by term.
    pub by_magnitude: bool,
}

/// What a key asks of the `C` view beyond its own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoefficientsKey {
    Handled,
    /// Step to the next (`true`) or previous fitted class of a K-class model.
    StepClass(bool),
    Close,
}

impl CoefficientsView {
    /// Scroll (a table of `rows`), s sorts by magnitude, ←→ or K step through the classes.
    pub fn on_key(&mut self, key: KeyEvent, rows: usize) -> CoefficientsKey {
        let last = rows.saturating_sub(1);
        let scroll = &mut self.scroll;
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => *scroll = (*scroll + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::PageDown => *scroll = (*scroll + 10).min(last),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
            KeyCode::Char('s') => self.by_magnitude = !self.by_magnitude,
            KeyCode::Char('K') | KeyCode::Right => return CoefficientsKey::StepClass(true),
            KeyCode::Left => return CoefficientsKey::StepClass(false),
            _ => return CoefficientsKey::Close,
        }
        CoefficientsKey::Handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_score_form_edits_its_field_and_asks_for_both_paths() {
        let mut form = ScoreForm { paths: ["in.csv".into(), String::new()], field: 0 };
        assert_eq!(form.on_key(key(KeyCode::Down), false), KeyOutcome::Stay);
        "out.csv".chars().for_each(|c| drop(form.on_key(key(KeyCode::Char(c)), false)));
        assert_eq!(form.paths[1], "out.csv");
        assert_eq!(
            form.on_key(key(KeyCode::Enter), true),
            KeyOutcome::Status("a scoring is already running".into())
        );
        let scored = form.on_key(key(KeyCode::Enter), false);
        assert_eq!(scored, KeyOutcome::Score { input: "in.csv".into(), output: "out.csv".into() });
        form.paths[0].clear();
        assert!(matches!(form.on_key(key(KeyCode::Enter), false), KeyOutcome::Status(_)));
    }

    #[test]
    fn the_log_view_takes_keys_into_its_search_until_enter_or_esc() {
        let mut view = LogView::default();
        view.on_key(key(KeyCode::Char('/')));
        "train".chars().for_each(|c| drop(view.on_key(key(KeyCode::Char(c)))));
        assert!(view.shows("train: epoch 3") && !view.shows("ingest: 10 rows"));
        assert_eq!(view.on_key(key(KeyCode::Char('q'))), KeyOutcome::Stay, "typed, not closed");
        view.on_key(key(KeyCode::Enter));
        assert_eq!(view.on_key(key(KeyCode::Up)), KeyOutcome::Stay);
        assert_eq!(view.scroll, 1);
        assert_eq!(view.on_key(key(KeyCode::Char('q'))), KeyOutcome::Close);
    }

    #[test]
    fn the_coefficients_view_scrolls_within_its_rows() {
        let mut view = CoefficientsView::default();
        assert_eq!(view.on_key(key(KeyCode::PageDown), 4), CoefficientsKey::Handled);
        assert_eq!(view.scroll, 3);
        assert_eq!(view.on_key(key(KeyCode::Left), 4), CoefficientsKey::StepClass(false));
        assert_eq!(view.on_key(key(KeyCode::Esc), 4), CoefficientsKey::Close);
    }
}
