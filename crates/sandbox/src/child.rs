//! The child's side: limits set on itself, then one request at a time from stdin.
//!
//! The limits are the point of the process: whatever a filter, rule or template does inside
//! it (recurse without end, allocate gigabytes, loop forever) ends this process, never the
//! server. Stack overflow and a failed allocation abort with a message on stderr, which the
//! parent reads to tell the user which budget was blown.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::time::Duration;

use changewatch_core::model::{has_template_markup, resolve_link};
use changewatch_core::pipeline;
use changewatch_notify::ChangeContext;
use changewatch_notify::render;

use crate::protocol::{MAX_FRAME, ProcessInput, RenderJob, Rendered, Request, Response};

/// Set by the parent on the children it spawns; a binary that sees it runs [`main`].
pub const CHILD_ENV: &str = "CHANGEWATCH_SANDBOX_CHILD";
/// Address-space limit in MiB, set by the parent.
pub(crate) const MEMORY_ENV: &str = "CHANGEWATCH_SANDBOX_MEMORY_MB";
/// Stack of the thread that does the work, in MiB, set by the parent.
pub(crate) const STACK_ENV: &str = "CHANGEWATCH_SANDBOX_STACK_MB";

/// Runs the child's loop when this process was started as a sandbox child, and exits;
/// returns at once otherwise. Call it first thing in `main` of every binary that builds a
/// [`crate::Sandbox`] with [`crate::Sandbox::child_process`] on its own executable, before
/// an async runtime starts threads the child does not need.
pub fn run_child_if_requested() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    std::process::exit(main());
}

fn env_mb(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> i32 {
    let memory_mb = env_mb(MEMORY_ENV, 1024);
    let stack_mb = env_mb(STACK_ENV, 64);
    let bytes = memory_mb.saturating_mul(1024 * 1024);
    // No core dumps of hostile work, and an address-space cap so an allocation bomb fails
    // here instead of pushing the machine into swap or the OOM killer.
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0) {
        eprintln!("sandbox: cannot disable core dumps: {e}");
    }
    if memory_mb > 0
        && let Err(e) = rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes)
    {
        eprintln!("sandbox: cannot set the memory limit: {e}");
        return 2;
    }
    let parent = std::os::unix::process::parent_id();
    // The work runs on its own thread so its stack size is ours to choose: deep enough for
    // legitimate nesting, finite so endless recursion ends in an overflow.
    let worker = std::thread::Builder::new()
        .name("sandbox-work".into())
        .stack_size(usize::try_from(stack_mb.saturating_mul(1024 * 1024)).unwrap_or(64 << 20))
        .spawn(serve_stdin);
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            eprintln!("sandbox: cannot start the work thread: {e}");
            return 2;
        }
    };
    // A parent that died (killed, crashed) cannot kill us any more: leave instead of
    // finishing hostile work for nobody. The parent's timeout covers the live-parent case.
    loop {
        if worker.is_finished() {
            return match worker.join() {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("sandbox: {e}");
                    1
                }
                Err(_) => 1,
            };
        }
        if std::os::unix::process::parent_id() != parent {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Answers requests until stdin closes.
fn serve_stdin() -> io::Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    while let Some(frame) = read_frame(&mut input)? {
        let request = crate::protocol::read_request(frame)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let is_render = matches!(request, Request::Render(_));
        // A panic in a dependency is that request's error, not the end of the child.
        let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(request)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                let message = format!("the page processor failed: {what}");
                if is_render {
                    Response::Rendered(Err(message))
                } else {
                    Response::Processed(Err(crate::protocol::WireCheckError::Other(format!(
                        "Exception: {message}"
                    ))))
                }
            });
        let bytes = crate::protocol::response_frame(response)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_frame(&mut output, &bytes)?;
        output.flush()?;
    }
    Ok(())
}

/// The work itself; also what the in-process mode runs.
pub(crate) fn handle(request: Request) -> Response {
    match request {
        Request::Process(input) => Response::Processed(process(*input)),
        Request::Render(job) => Response::Rendered(render_job(*job)),
    }
}

fn process(
    input: ProcessInput,
) -> Result<changewatch_core::Processed, crate::protocol::WireCheckError> {
    let (page, settings, previous) = input
        .into_parts()
        .map_err(crate::protocol::WireCheckError::Other)?;
    pipeline::process(&page, &settings, &previous).map_err(Into::into)
}

fn render_urls(
    urls: Vec<String>,
    ctx: &render::ChangeContext,
    format: changewatch_core::diff::DiffFormat,
) -> Vec<String> {
    urls.into_iter()
        .map(|u| {
            if u.contains("{{") || u.contains("{%") {
                render::render_url(&u, ctx, format).unwrap_or(u)
            } else {
                u
            }
        })
        .collect()
}

/// The watch's links as upstream's notifications show them: a templated URL rendered (the
/// parent leaves it as written: templates run here). The label falls back to the link, so
/// it follows when it was the link.
fn render_links(ctx: &mut ChangeContext) {
    let render = |t: &str| render::render_request_template(t);
    if has_template_markup(&ctx.watch_url) {
        let raw = std::mem::take(&mut ctx.watch_url);
        ctx.watch_url = resolve_link(&raw, &render);
        if ctx.watch_title == raw {
            ctx.watch_title = ctx.watch_url.clone();
        }
    }
    if let Some(open) = ctx
        .watch_open_url
        .as_mut()
        .filter(|o| has_template_markup(o))
    {
        *open = resolve_link(open, &render);
    }
}

pub(crate) fn render_job(mut job: RenderJob) -> Result<Rendered, String> {
    if let RenderJob::Change { ctx, .. }
    | RenderJob::Urls { ctx, .. }
    | RenderJob::Test { ctx, .. } = &mut job
    {
        render_links(ctx);
    }
    match job {
        RenderJob::Change {
            title,
            body,
            urls,
            ctx,
            format,
        } => {
            let message = render::render(&title, &body, &ctx, format).map_err(|e| e.to_string())?;
            Ok(Rendered {
                message: Some(message),
                urls: render_urls(urls, &ctx, format),
                ..Rendered::default()
            })
        }
        RenderJob::Urls { urls, ctx, format } => Ok(Rendered {
            urls: render_urls(urls, &ctx, format),
            ..Rendered::default()
        }),
        RenderJob::Validate { templates } => {
            for (field, src) in &templates {
                render::validate_template(src).map_err(|e| format!("{field}: {e}"))?;
            }
            Ok(Rendered::default())
        }
        RenderJob::Test {
            title,
            body,
            ctx,
            format,
        } => {
            for (field, src) in [("notification_title", &title), ("notification_body", &body)] {
                render::validate_template(src).map_err(|e| format!("{field}: {e}"))?;
            }
            let message =
                render::render_test(&title, &body, &ctx, format).map_err(|e| e.to_string())?;
            Ok(Rendered {
                message: Some(message),
                ..Rendered::default()
            })
        }
        RenderJob::Request { templates } => {
            let texts = templates
                .iter()
                .map(|(field, src)| {
                    render::render_request_template(src)
                        .map_err(|e| format!("{field} template: {e}"))
                })
                .collect::<Result<_, _>>()?;
            Ok(Rendered {
                texts,
                ..Rendered::default()
            })
        }
    }
}

/// `None` at a clean end of input (the parent closed the pipe between requests).
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut frame = vec![0u8; len];
    input.read_exact(&mut frame)?;
    Ok(Some(frame))
}

pub(crate) fn write_frame(output: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "reply too large"))?;
    output.write_all(&len.to_be_bytes())?;
    output.write_all(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use super::*;
    use changewatch_core::diff::DiffFormat;

    /// A notification shows the watch's link as upstream does: its template rendered, and
    /// the label with it when the label was the link.
    #[test]
    fn notifications_show_the_rendered_link() {
        let raw = "https://shop.example/{{ 'p' | upper }}".to_string();
        let job = RenderJob::Change {
            title: "{{ watch_title }}".into(),
            body: "{{ watch_url }}".into(),
            urls: vec!["json://hook.example/?from={{ watch_url }}".into()],
            ctx: Box::new(ChangeContext {
                watch_url: raw.clone(),
                watch_title: raw,
                ..ChangeContext::default()
            }),
            format: DiffFormat::Text,
        };
        let rendered = render_job(job).unwrap();
        let message = rendered.message.unwrap();
        assert_eq!(message.title, "https://shop.example/P");
        assert_eq!(message.body, "https://shop.example/P");
        assert_eq!(
            rendered.urls,
            ["json://hook.example/?from=https://shop.example/P"]
        );

        let texts = render_job(RenderJob::Request {
            templates: vec![
                ("url".into(), "/{{ 1 + 1 }}".into()),
                ("body".into(), "plain\n".into()),
            ],
        })
        .unwrap()
        .texts;
        assert_eq!(texts, ["/2", "plain"]);
        let err = render_job(RenderJob::Request {
            templates: vec![("header 'X'".into(), "{{ x | nope }}".into())],
        })
        .unwrap_err();
        assert!(err.starts_with("header 'X' template: "), "{err}");
    }
}
