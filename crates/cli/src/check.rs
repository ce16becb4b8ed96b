//! `changewatch check`: what a watch with these filters would store, without storing anything.
//! Users tune filters with it before creating the watch (the urlwatch habit).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use changewatch_core::{
    CheckError, Config, FetchRequest, Fetcher, PreviousState, ProcessorSettings, run_check,
};
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The page to check (http or https).
    pub url: String,
    /// CSS selector, XPath (`/…`, `xpath:`, `xpath1:`), JSONPath (`json:`) or jq (`jq:`, `jqraw:`);
    /// repeat to concatenate several.
    #[arg(long = "include-filter", value_name = "FILTER")]
    pub include_filters: Vec<String>,
    /// CSS selector or XPath of elements to remove before the include filters run.
    #[arg(long = "subtractive-selector", value_name = "SELECTOR")]
    pub subtractive_selectors: Vec<String>,
    /// Ignore lines containing this text (case-insensitive) or matching `/regex/flags`.
    #[arg(long = "ignore-text", value_name = "TEXT")]
    pub ignore_text: Vec<String>,
    /// Only treat the page as changed when a line contains this text or matches `/regex/`.
    #[arg(long = "trigger-text", value_name = "TEXT")]
    pub trigger_text: Vec<String>,
    /// Keep only what this `/regex/` (its groups) or plain text matches.
    #[arg(long = "extract-text", value_name = "REGEX")]
    pub extract_text: Vec<String>,
    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra request header `Name: value`; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    pub body: Option<String>,
    /// Seconds before giving up (default: DEFAULT_SETTINGS_REQUESTS_TIMEOUT or 45).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Accept replies with non-2xx status codes.
    #[arg(long)]
    pub ignore_status_codes: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    url: &'a str,
    ok: bool,
    status_code: Option<u16>,
    title: Option<&'a str>,
    content_type: Option<&'a str>,
    fetch_time: Option<f64>,
    md5: Option<&'a str>,
    triggered: Option<bool>,
    text: Option<&'a str>,
    error: Option<String>,
}

/// Exit codes: 0 checked, 1 the check failed (the error is printed), 2 bad arguments or config.
pub async fn run(args: CheckArgs) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let mut request = FetchRequest::get(&args.url);
    request.method = args.method.to_ascii_uppercase();
    request.body = args.body.clone();
    request.ignore_status_codes = args.ignore_status_codes;
    request.timeout = match args.timeout {
        Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
        Some(_) => return usage_error("--timeout must be a positive number of seconds"),
        None => config.request_timeout,
    };
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            return usage_error(&format!("--header {h:?} is not in the form 'Name: value'"));
        };
        request
            .headers
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    let settings = ProcessorSettings {
        include_filters: args.include_filters.clone(),
        subtractive_selectors: args.subtractive_selectors.clone(),
        ignore_text: args.ignore_text.clone(),
        trigger_text: args.trigger_text.clone(),
        extract_text: args.extract_text.clone(),
        jq_allow_risky: config.jq_allow_risky,
        ..ProcessorSettings::default()
    };
    let fetcher = match Fetcher::new(config.fetcher_config()) {
        Ok(f) => f,
        Err(e) => return usage_error(&format!("cannot build the HTTP client: {e}")),
    };
    let result = run_check(&fetcher, &request, settings, PreviousState::default()).await;
    let has_triggers = !args.trigger_text.is_empty();
    let report = match &result {
        Ok(r) => Report {
            url: &args.url,
            ok: true,
            status_code: Some(r.page.status),
            title: r.processed.title.as_deref(),
            content_type: r.page.content_type.as_deref(),
            fetch_time: Some(r.page.fetch_time),
            md5: Some(&r.processed.md5),
            triggered: has_triggers.then_some(!r.processed.triggered_text.is_empty()),
            text: Some(&r.processed.text),
            error: None,
        },
        Err(e) => Report {
            url: &args.url,
            ok: false,
            status_code: status_of(e),
            title: None,
            content_type: None,
            fetch_time: None,
            md5: None,
            triggered: None,
            text: None,
            error: Some(e.last_error()),
        },
    };
    let printed = if args.json {
        print_json(&report)
    } else {
        print_human(&report)
    };
    if let Err(e) = printed {
        // A closed pipe (`| head`) is not worth a panic; anything else is reported.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("changewatch: cannot write output: {e}");
        }
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn status_of(e: &CheckError) -> Option<u16> {
    match e {
        CheckError::Fetch(changewatch_core::fetch::FetchError::Status { status })
        | CheckError::Fetch(changewatch_core::fetch::FetchError::EmptyReply { status })
        | CheckError::NoText { status, .. } => Some(*status),
        _ => None,
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("changewatch: {msg}");
    ExitCode::from(2)
}

fn print_json(report: &Report<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other)?;
    writeln!(out)
}

fn print_human(r: &Report<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(err) = &r.error {
        writeln!(out, "url:        {}", r.url)?;
        if let Some(s) = r.status_code {
            writeln!(out, "status:     {s}")?;
        }
        writeln!(out, "error:      {err}")?;
        return Ok(());
    }
    writeln!(out, "url:        {}", r.url)?;
    writeln!(out, "status:     {}", r.status_code.unwrap_or_default())?;
    writeln!(out, "title:      {}", r.title.unwrap_or("-"))?;
    writeln!(out, "type:       {}", r.content_type.unwrap_or("-"))?;
    writeln!(out, "fetch time: {:.3} s", r.fetch_time.unwrap_or_default())?;
    writeln!(out, "md5:        {}", r.md5.unwrap_or("-"))?;
    if let Some(t) = r.triggered {
        writeln!(
            out,
            "triggered:  {}",
            if t {
                "yes"
            } else {
                "no (a watch would not report a change)"
            }
        )?;
    }
    writeln!(out, "---")?;
    writeln!(out, "{}", r.text.unwrap_or(""))
}
