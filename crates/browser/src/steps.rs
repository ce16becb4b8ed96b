//! Browser steps, run on the loaded page before its DOM is read: upstream's operations
//! (`changewatch_core::model::BrowserAction`) done with real input events over CDP (mouse
//! clicks at an element's centre, typed text, key presses), so a page's own handlers see
//! what a user's would. Waits poll the page until the element or text turns up, within
//! upstream's per-step times and always within the check's own deadline, so a step that
//! cannot find its target fails as that step ("Could not find the target") and not as a
//! timeout of the whole check. After each step the page is given `settle` and then any
//! navigation the step started is waited for.

use std::time::{Duration, Instant};

use changewatch_core::fetch::{FetchError, parse_fetch_url, vet_target};
use changewatch_core::model::{
    BrowserAction, RunnableStep, check_step_value, parse_xy, wait_seconds,
};
use changewatch_core::ssrf::AddressPolicy;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, InsertTextParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    EventFrameStartedLoading, EventFrameStoppedLoading, NavigateParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::layout::Point;
use chromiumoxide::page::Page;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;
use tracing::debug;
use url::Url;

/// The page-side half: one function of (operation, selector, value).
const PAGE_JS: &str = include_str!("steps.js");

/// Upstream's waits: Playwright's action timeout (10 s), 30 s for a click and for text.
const ACTION_WAIT: Duration = Duration::from_secs(10);
const CLICK_WAIT: Duration = Duration::from_secs(30);
const TEXT_WAIT: Duration = Duration::from_secs(30);
/// Kept back from the check's deadline so a step's own failure is what gets reported.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(100);

/// Why a step failed, before it is numbered.
struct Failed {
    reason: String,
    not_found: bool,
}

impl Failed {
    fn because(reason: impl Into<String>) -> Self {
        Failed {
            reason: reason.into(),
            not_found: false,
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        Failed {
            reason: what.into(),
            not_found: true,
        }
    }
}

/// The page function's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Answer {
    state: String,
    x: f64,
    y: f64,
    checked: bool,
    message: String,
}

/// Runs one check's steps on `page`.
pub(crate) struct Steps<'a> {
    pub page: &'a Page,
    /// The watch's URL, for "Goto site".
    pub start_url: &'a Url,
    pub policy: &'a AddressPolicy,
    /// Given to the page after each step (upstream waits 1.5 s).
    pub settle: Duration,
    /// The check's deadline: no step waits past it.
    pub deadline: Instant,
}

impl Steps<'_> {
    /// Runs `steps` in order; the first that fails stops the run and is the error, numbered
    /// from 1 as the editor shows them.
    pub async fn run(&self, steps: &[RunnableStep]) -> Result<(), FetchError> {
        let loading = self.track_loading().await;
        for (n, step) in steps.iter().enumerate() {
            debug!(step = n + 1, operation = step.action.name(), "browser step");
            self.one(step).await.map_err(|f| FetchError::BrowserStep {
                step: n + 1,
                reason: f.reason,
                not_found: f.not_found,
            })?;
            self.settle_after(&loading).await;
        }
        Ok(())
    }

    async fn one(&self, step: &RunnableStep) -> Result<(), Failed> {
        let sel = step.selector.trim();
        let val = step.value.as_str();
        // A rendered template is checked now, as a literal one was when it was saved.
        check_step_value(step.action, val.trim()).map_err(Failed::because)?;
        match step.action {
            BrowserAction::GotoSite => self.goto(self.start_url.as_str()).await,
            BrowserAction::GotoUrl => self.goto(val.trim()).await,
            BrowserAction::ClickElement => {
                let at = self.wait_for("locate", sel, "", CLICK_WAIT).await?;
                self.click(at.x, at.y).await
            }
            BrowserAction::ClickElementIfExists => {
                // Half of what is left at most: a missing element is not a failure, so its
                // wait must leave the check time to finish.
                let wait = ACTION_WAIT.min(self.left() / 2);
                match self.wait_for("locate", sel, "", wait).await {
                    Ok(at) => self.click(at.x, at.y).await,
                    Err(f) if f.not_found => Ok(()),
                    Err(f) => Err(f),
                }
            }
            // Upstream clicks the first match when there is one and goes on when there is
            // none, with or without "if exists".
            BrowserAction::ClickElementContainingText
            | BrowserAction::ClickElementContainingTextIfExists => {
                match self.look("locate_text", "", val).await? {
                    Answer { state, x, y, .. } if state == "ok" => self.click(x, y).await,
                    _ => Ok(()),
                }
            }
            BrowserAction::ClickXY => {
                let (x, y) = parse_xy(val).ok_or_else(|| Failed::because("not an x,y position"))?;
                self.click(x, y).await
            }
            BrowserAction::EnterTextInField => {
                self.wait_for("locate", sel, "", ACTION_WAIT).await?;
                self.wait_for("focus", sel, val, ACTION_WAIT).await?;
                if !val.is_empty() {
                    self.cdp(InsertTextParams::new(val)).await?;
                }
                Ok(())
            }
            BrowserAction::ExecuteJs => self.script(val).await,
            BrowserAction::MakeAllChildElementsVisible => {
                self.look("reveal", sel, "").await.map(drop)
            }
            BrowserAction::RemoveElements => self.look("remove", sel, "").await.map(drop),
            BrowserAction::PressEnter => self.key("Enter", 13, Some("\r")).await,
            BrowserAction::PressPageUp => self.key("PageUp", 33, None).await,
            BrowserAction::PressPageDown => self.key("PageDown", 34, None).await,
            BrowserAction::SelectByLabel => self
                .wait_for("select", sel, val, ACTION_WAIT)
                .await
                .map(drop),
            BrowserAction::ScrollDown => self.look("scroll", "", "").await.map(drop),
            BrowserAction::CheckCheckbox => self.set_checked(sel, true).await,
            BrowserAction::UncheckCheckbox => self.set_checked(sel, false).await,
            BrowserAction::WaitForSeconds => {
                let secs = wait_seconds(val).unwrap_or(1.0);
                let left = self.left();
                tokio::time::sleep(Duration::from_secs_f64(secs).min(left)).await;
                Ok(())
            }
            BrowserAction::WaitForText => self.wait_for("text", "", val, TEXT_WAIT).await.map(drop),
            BrowserAction::WaitForTextInElement => self
                .wait_for("text_in", sel, val, TEXT_WAIT)
                .await
                .map(drop),
        }
    }

    /// Navigates within the step, vetting the target first (the request interception
    /// vets it again, with every redirect) so a refusal names the step's URL.
    async fn goto(&self, raw: &str) -> Result<(), Failed> {
        let url = parse_fetch_url(raw)
            .map_err(|_| Failed::because(format!("'{raw}' is not an http(s) URL")))?;
        if let Err(refusal) = vet_target(self.policy, &url).await {
            return Err(Failed::because(format!(
                "'{url}' is not fetched: {refusal}"
            )));
        }
        let navigated = tokio::time::timeout(
            self.left(),
            self.page.execute(NavigateParams::new(url.as_str())),
        )
        .await
        .map_err(|_| Failed::not_found(format!("'{url}' did not load in time")))?
        .map_err(|e| Failed::because(e.to_string()))?;
        if let Some(error) = navigated.result.error_text.clone() {
            return Err(Failed::because(format!("'{url}': {error}")));
        }
        let _ = tokio::time::timeout(self.left(), self.page.wait_for_navigation()).await;
        Ok(())
    }

    async fn click(&self, x: f64, y: f64) -> Result<(), Failed> {
        self.page
            .click(Point { x, y })
            .await
            .map(drop)
            .map_err(|e| Failed::because(e.to_string()))
    }

    async fn set_checked(&self, sel: &str, want: bool) -> Result<(), Failed> {
        let at = self.wait_for("locate", sel, "", ACTION_WAIT).await?;
        if at.checked == want {
            return Ok(());
        }
        self.click(at.x, at.y).await?;
        let now = self.look("checked", sel, "").await?;
        if now.checked == want {
            Ok(())
        } else {
            Err(Failed::because(
                "clicking the checkbox did not change its state",
            ))
        }
    }

    async fn key(&self, key: &str, code: i64, text: Option<&str>) -> Result<(), Failed> {
        for kind in [DispatchKeyEventType::KeyDown, DispatchKeyEventType::KeyUp] {
            let mut event = DispatchKeyEventParams::builder()
                .r#type(kind.clone())
                .key(key)
                .code(key)
                .windows_virtual_key_code(code)
                .native_virtual_key_code(code);
            if let (DispatchKeyEventType::KeyDown, Some(text)) = (&kind, text) {
                event = event.text(text).unmodified_text(text);
            }
            let event = event.build().map_err(Failed::because)?;
            self.cdp(event).await?;
        }
        Ok(())
    }

    /// The step's own script; an exception it throws is the step's error.
    async fn script(&self, js: &str) -> Result<(), Failed> {
        let params = EvaluateParams::builder()
            .expression(js)
            .await_promise(true)
            .return_by_value(true)
            .user_gesture(true)
            .build()
            .map_err(Failed::because)?;
        let reply = tokio::time::timeout(self.left(), self.page.execute(params))
            .await
            .map_err(|_| Failed::because("the script did not finish in time"))?
            .map_err(|e| Failed::because(e.to_string()))?;
        match &reply.result.exception_details {
            Some(details) => Err(Failed::because(
                details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_else(|| details.text.clone()),
            )),
            None => Ok(()),
        }
    }

    async fn cdp<C>(&self, command: C) -> Result<(), Failed>
    where
        C: chromiumoxide::types::Command,
    {
        self.page
            .execute(command)
            .await
            .map(drop)
            .map_err(|e| Failed::because(e.to_string()))
    }

    /// Asks the page once: an exception in the page is the step's error at once.
    async fn look(&self, op: &str, sel: &str, val: &str) -> Result<Answer, Failed> {
        let call = format!(
            "({PAGE_JS})({}, {}, {})",
            Value::from(op),
            Value::from(sel),
            Value::from(val)
        );
        let params = EvaluateParams::builder()
            .expression(call)
            .return_by_value(true)
            .build()
            .map_err(Failed::because)?;
        let reply = self
            .page
            .execute(params)
            .await
            .map_err(|e| Failed::because(e.to_string()))?;
        let answer: Answer = reply
            .result
            .result
            .value
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if answer.state == "error" {
            return Err(Failed::because(answer.message));
        }
        Ok(answer)
    }

    /// Asks the page until it answers "ok", within `wait` and the deadline. A look that
    /// fails at the protocol level (the page is between documents) is asked again.
    async fn wait_for(
        &self,
        op: &str,
        sel: &str,
        val: &str,
        wait: Duration,
    ) -> Result<Answer, Failed> {
        let until = Instant::now() + wait.min(self.left());
        loop {
            let last = match self.look(op, sel, val).await {
                Ok(answer) if answer.state == "ok" => return Ok(answer),
                Ok(answer) => answer.state,
                Err(f) if f.reason.contains("context") || f.reason.contains("navigat") => f.reason,
                Err(f) => return Err(f),
            };
            if Instant::now() + POLL >= until {
                let what = if sel.is_empty() { val } else { sel };
                return Err(Failed::not_found(format!("'{what}': {last}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Time left before the deadline, less the margin that lets a step report itself.
    fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(DEADLINE_MARGIN)
    }

    /// Whether the main frame is loading a document, kept current from the page's events.
    async fn track_loading(&self) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let main = self.page.mainframe().await.ok().flatten();
        let started = self.page.event_listener::<EventFrameStartedLoading>().await;
        let stopped = self.page.event_listener::<EventFrameStoppedLoading>().await;
        if let (Some(main), Ok(started), Ok(stopped)) = (main, started, stopped) {
            let is_main = move |frame: &str| frame == main.as_ref();
            let mut events = futures::stream::select(
                started.map(|e| (e.frame_id.as_ref().to_string(), true)),
                stopped.map(|e| (e.frame_id.as_ref().to_string(), false)),
            );
            // Ends with the page's event streams, when the page is closed.
            tokio::spawn(async move {
                while let Some((frame, loading)) = events.next().await {
                    if is_main(&frame) {
                        let _ = tx.send(loading);
                    }
                }
            });
        }
        rx
    }

    /// After a step: `settle`, then the end of any load the step started.
    async fn settle_after(&self, loading: &watch::Receiver<bool>) {
        tokio::time::sleep(self.settle.min(self.left())).await;
        let mut loading = loading.clone();
        let _ = tokio::time::timeout(self.left(), loading.wait_for(|busy| !*busy)).await;
    }
}
