//! Browser steps: the operations upstream's Browser Steps editor offers, by the names its
//! exports and API clients carry, and what each needs to be runnable. The browser fetcher
//! runs them; the API refuses a step it could not run, so a saved step is never ignored.

use super::{BrowserStep, has_template_markup};

/// One browser-step operation. Names are matched as upstream matches them (lower case, runs
/// of anything but letters and digits as one `_`), so "Click element" and "click-element"
/// are the same step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserAction {
    /// Back to the watch's own URL.
    GotoSite,
    /// Navigate to the step's value (vetted by the address guard as every request is).
    GotoUrl,
    ClickElement,
    /// Click when the element turns up within the step's wait; nothing otherwise.
    ClickElementIfExists,
    /// Click the innermost element whose text contains the value (case-insensitive).
    ClickElementContainingText,
    ClickElementContainingTextIfExists,
    /// Click at the value's `x,y` in the viewport.
    ClickXY,
    EnterTextInField,
    ExecuteJs,
    MakeAllChildElementsVisible,
    PressEnter,
    PressPageUp,
    PressPageDown,
    /// Choose the option of a `<select>` whose label is the value (upstream's "Select by
    /// label" and "<select> by option text").
    SelectByLabel,
    ScrollDown,
    CheckCheckbox,
    UncheckCheckbox,
    WaitForSeconds,
    WaitForText,
    WaitForTextInElement,
    RemoveElements,
}

/// Each operation with upstream's display name (the name the editor shows and saves) and
/// whether it needs a selector and a value, as upstream's editor enables the two fields.
const ACTIONS: &[(BrowserAction, &str, bool, bool)] = &[
    (BrowserAction::GotoSite, "Goto site", false, false),
    (BrowserAction::GotoUrl, "Goto URL", false, true),
    (BrowserAction::ClickElement, "Click element", true, false),
    (
        BrowserAction::ClickElementIfExists,
        "Click element if exists",
        true,
        false,
    ),
    (
        BrowserAction::ClickElementContainingText,
        "Click element containing text",
        false,
        true,
    ),
    (
        BrowserAction::ClickElementContainingTextIfExists,
        "Click element containing text if exists",
        false,
        true,
    ),
    (BrowserAction::ClickXY, "Click X,Y", false, true),
    (
        BrowserAction::EnterTextInField,
        "Enter text in field",
        true,
        true,
    ),
    (BrowserAction::ExecuteJs, "Execute JS", false, true),
    (
        BrowserAction::MakeAllChildElementsVisible,
        "Make all child elements visible",
        true,
        false,
    ),
    (BrowserAction::PressEnter, "Press Enter", false, false),
    (BrowserAction::PressPageUp, "Press Page Up", false, false),
    (
        BrowserAction::PressPageDown,
        "Press Page Down",
        false,
        false,
    ),
    (BrowserAction::SelectByLabel, "Select by label", true, true),
    (
        BrowserAction::SelectByLabel,
        "<select> by option text",
        true,
        true,
    ),
    (BrowserAction::ScrollDown, "Scroll down", false, false),
    (BrowserAction::CheckCheckbox, "Check checkbox", true, false),
    (
        BrowserAction::UncheckCheckbox,
        "Uncheck checkbox",
        true,
        false,
    ),
    (
        BrowserAction::WaitForSeconds,
        "Wait for seconds",
        false,
        true,
    ),
    (BrowserAction::WaitForText, "Wait for text", false, true),
    (
        BrowserAction::WaitForTextInElement,
        "Wait for text in element",
        true,
        true,
    ),
    (
        BrowserAction::RemoveElements,
        "Remove elements",
        true,
        false,
    ),
];

/// The editor's placeholder for a row with nothing chosen; such rows are dropped at save.
pub const BROWSER_STEP_PLACEHOLDER: &str = "Choose one";

/// The editor's operations, in its order: (name, needs a selector, needs a value).
pub fn browser_step_operations() -> impl Iterator<Item = (&'static str, bool, bool)> {
    ACTIONS.iter().map(|(_, name, s, v)| (*name, *s, *v))
}

fn normalized(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            gap = false;
        } else if !gap {
            out.push('_');
            gap = true;
        }
    }
    out
}

impl BrowserAction {
    /// The operation a step's name means, matched as upstream matches it.
    pub fn parse(name: &str) -> Option<BrowserAction> {
        let wanted = normalized(name);
        ACTIONS
            .iter()
            .find(|(_, n, _, _)| normalized(n) == wanted)
            .map(|(a, _, _, _)| *a)
    }

    /// Upstream's display name.
    pub fn name(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(a, _, _, _)| *a == self)
            .map_or("", |(_, n, _, _)| n)
    }

    fn needs(self) -> (bool, bool) {
        ACTIONS
            .iter()
            .find(|(a, _, _, _)| *a == self)
            .map_or((false, false), |(_, _, s, v)| (*s, *v))
    }
}

/// A step ready to run: its operation and its selector and value (templates rendered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnableStep {
    pub action: BrowserAction,
    pub selector: String,
    pub value: String,
}

impl BrowserStep {
    /// The step's operation, when it names one this system runs.
    pub fn action(&self) -> Option<BrowserAction> {
        self.operation.as_deref().and_then(BrowserAction::parse)
    }
}

/// Why a step cannot be saved: an operation nobody runs, a missing selector or value, or a
/// value that cannot mean what the operation needs (checked only when it is not a template,
/// which is rendered at each check).
pub fn check_browser_step(step: &BrowserStep) -> Result<(), String> {
    let op = step.operation.as_deref().unwrap_or("");
    let action = BrowserAction::parse(op).ok_or_else(|| {
        let known: Vec<&str> = ACTIONS.iter().map(|(_, n, _, _)| *n).collect();
        format!("unknown operation '{op}' (one of: {})", known.join(", "))
    })?;
    let selector = step.selector.as_deref().unwrap_or("").trim();
    let value = step.optional_value.as_deref().unwrap_or("").trim();
    let (needs_selector, needs_value) = action.needs();
    if needs_selector && selector.is_empty() {
        return Err(format!("'{}' needs a selector", action.name()));
    }
    // An empty wait is upstream's one second; empty text clears the field.
    let empty_is_meaningful = matches!(
        action,
        BrowserAction::WaitForSeconds | BrowserAction::EnterTextInField
    );
    if needs_value && value.is_empty() && !empty_is_meaningful {
        return Err(format!("'{}' needs a value", action.name()));
    }
    if has_template_markup(value) {
        return Ok(());
    }
    check_step_value(action, value).map_err(|e| format!("'{}': {e}", action.name()))
}

/// The checks on a step's value that also apply once its template is rendered.
pub fn check_step_value(action: BrowserAction, value: &str) -> Result<(), String> {
    match action {
        BrowserAction::ClickXY if parse_xy(value).is_none() => Err(format!(
            "the value '{value}' is not an x,y position such as '100, 90'"
        )),
        BrowserAction::WaitForSeconds if !value.is_empty() && wait_seconds(value).is_none() => Err(
            format!("the value '{value}' is not a number of seconds between 0 and 3600"),
        ),
        _ => Ok(()),
    }
}

/// `Click X,Y`'s value: two whole numbers with a comma between (upstream's format).
pub fn parse_xy(value: &str) -> Option<(f64, f64)> {
    let (x, y) = value.trim().split_once(',')?;
    let num = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<f64>().ok())
            .flatten()
    };
    Some((num(x)?, num(y)?))
}

/// `Wait for seconds`' value; empty means upstream's one second.
pub fn wait_seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    if value.is_empty() {
        return Some(1.0);
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(op: &str, selector: &str, value: &str) -> BrowserStep {
        BrowserStep {
            operation: Some(op.into()),
            selector: Some(selector.into()),
            optional_value: Some(value.into()),
        }
    }

    #[test]
    fn names_match_as_upstream_normalizes_them() {
        assert_eq!(
            BrowserAction::parse("Click element"),
            Some(BrowserAction::ClickElement)
        );
        assert_eq!(
            BrowserAction::parse("click-ELEMENT"),
            Some(BrowserAction::ClickElement)
        );
        assert_eq!(
            BrowserAction::parse("<select> by option text"),
            Some(BrowserAction::SelectByLabel)
        );
        assert_eq!(
            BrowserAction::parse("Click X,Y"),
            Some(BrowserAction::ClickXY)
        );
        assert_eq!(BrowserAction::parse("Fly to the moon"), None);
        assert_eq!(BrowserAction::parse(""), None);
        for (name, _, _) in browser_step_operations() {
            let action = BrowserAction::parse(name).map(BrowserAction::name);
            assert!(action.is_some(), "{name}");
        }
    }

    #[test]
    fn saving_refuses_what_cannot_run() {
        assert!(check_browser_step(&step("Click element", "#go", "")).is_ok());
        let e = check_browser_step(&step("Teleport", "", "")).unwrap_err();
        assert!(e.contains("unknown operation 'Teleport'"), "{e}");
        let e = check_browser_step(&step("Click element", " ", "")).unwrap_err();
        assert!(e.contains("needs a selector"), "{e}");
        assert!(
            check_browser_step(&step("Enter text in field", "#q", "")).is_ok(),
            "empty text clears the field"
        );
        let e = check_browser_step(&step("Wait for text", "", " ")).unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
        let e = check_browser_step(&step("Click X,Y", "", "left")).unwrap_err();
        assert!(e.contains("x,y position"), "{e}");
        assert!(check_browser_step(&step("Click X,Y", "", " 100 , 90")).is_ok());
        assert!(check_browser_step(&step("Wait for seconds", "", "")).is_ok());
        assert!(check_browser_step(&step("Wait for seconds", "", "2.5")).is_ok());
        assert!(check_browser_step(&step("Wait for seconds", "", "soon")).is_err());
        assert!(check_browser_step(&step("Wait for seconds", "", "1e9")).is_err());
        // A template is judged once rendered, at the check.
        assert!(check_browser_step(&step("Click X,Y", "", "{{ 1 }},2")).is_ok());
    }

    #[test]
    fn positions_and_waits_parse_as_upstream_reads_them() {
        assert_eq!(parse_xy("100,90"), Some((100.0, 90.0)));
        assert_eq!(parse_xy(" 100 , 90 "), Some((100.0, 90.0)));
        assert_eq!(parse_xy("-1,2"), None);
        assert_eq!(parse_xy("1.5,2"), None);
        assert_eq!(parse_xy("1,2,3"), None);
        assert_eq!(wait_seconds(""), Some(1.0));
        assert_eq!(wait_seconds("0.25"), Some(0.25));
        assert_eq!(wait_seconds("NaN"), None);
        assert_eq!(wait_seconds("-1"), None);
    }
}
